"""A runbook set cut down to one of its playbooks: what a team that adopts only that playbook has.

The simulation, its tests and ``bench/simulation.py`` run each shipped playbook alone this way (the
issue's "each shipped playbook set"), besides the shipped set with all of them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_LISTED = re.compile(r"playbooks:\n((?:  - .*\n)+)")


def playbook_names(runbooks: Path) -> list[str]:
    """The playbooks ``workspace.yml`` lists, in order."""
    listed = _LISTED.search((runbooks / "workspace.yml").read_text())
    if listed is None:
        raise ValueError(f"{runbooks / 'workspace.yml'} lists no playbooks")
    return [line.split("-", 1)[1].split("#")[0].strip() for line in listed.group(1).splitlines()]


def single_playbook_set(runbooks: Path, playbook: str, into: Path) -> Path:
    """``into``: the playbook's directory, the shared templates and examples, and ``workspace.yml``
    listing only that playbook, as its default (everything else in the workspace as shipped)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in (playbook, "templates", "examples"):
        if (runbooks / name).exists():
            shutil.copytree(runbooks / name, into / name)
    workspace = _LISTED.sub(f"playbooks:\n  - {playbook}\n", (runbooks / "workspace.yml").read_text())
    workspace = re.sub(r"default_playbook: .*", f"default_playbook: {playbook}", workspace)
    (into / "workspace.yml").write_text(workspace)
    return into
