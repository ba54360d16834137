"""The mutation list must keep up with the code: a speed-up that rewrites a patched line leaves its
mutant applying to nothing, and ``make mutation`` would then report an error instead of a kill."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slackbot.simulation.mutants import MUTANTS, PACKAGE, MutantError, apply


def test_every_listed_mutant_still_patches_exactly_the_code_it_names(tmp_path: Path) -> None:
    for mutant in MUTANTS:
        root = tmp_path / mutant.name
        for relative, _old, _new in mutant.edits:
            target = root / "slackbot" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copyfile(PACKAGE / relative, target)
        apply(mutant, root)  # raises MutantError naming the mutant and the file when a text moved
        for relative, _old, new in mutant.edits:
            assert new in (root / "slackbot" / relative).read_text(), mutant.name


def test_a_mutant_whose_text_moved_is_refused_by_name(tmp_path: Path) -> None:
    mutant = MUTANTS[0]
    relative = mutant.edits[0][0]
    target = tmp_path / "slackbot" / relative
    target.parent.mkdir(parents=True)
    target.write_text("# the line this mutant patches was rewritten\n")
    with pytest.raises(MutantError, match=mutant.name):
        apply(mutant, tmp_path)
