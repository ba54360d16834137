"""Per-class patterns and signals are playbook data: a bad one is a file:line error at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from slackbot.config import load_playbooks
from slackbot.config.loader import RunbookError
from tests.config.test_playbooks import copy_runbooks, line_of


def test_a_pattern_that_is_not_a_regular_expression_and_an_unknown_signal_are_named_with_file_and_line(
    tmp_path: Path,
) -> None:
    root = copy_runbooks(tmp_path)
    routing = root / "integration-triage" / "routing.yml"
    text = routing.read_text(encoding="utf-8")
    text = text.replace("    signals: [infra]\n", "    signals: [infra, weather]\n", 1)
    text = text.replace(
        "    signals: [drift]\n    patterns:\n", "    signals: [drift]\n    patterns:\n      - '(unclosed'\n", 1
    )
    routing.write_text(text, encoding="utf-8")
    with pytest.raises(RunbookError) as caught:
        load_playbooks(root)
    said = [str(p) for p in caught.value.problems]
    signal_line = line_of(routing, "signals: [infra, weather]")
    patterns_line = line_of(routing, "- '(unclosed'") - 1  # the list that holds it
    assert (
        f"integration-triage/routing.yml:{signal_line}: classes.infra_ci.signals[1]: "
        "Input should be 'flake', 'regression', 'infra', 'harness' or 'drift'"
    ) in said
    assert (
        f"integration-triage/routing.yml:{patterns_line}: classes.data_schema_drift.patterns: pattern '(unclosed' "
        "is not a regular expression: missing ), unterminated subpattern at position 0"
    ) in said
