"""The playbook's ``validation`` block is data: ``triagebot check`` names the file, line and field
of a mistake in it, and says how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slackbot.config import Playbooks
from tests.config.test_runbooks import broken, edit, only, problems  # noqa: F401  (fixture)

BLOCK = "validation:\n  after: fix_merged\n  reaches: validation_complete\n  green_runs: 3\n"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (BLOCK.replace("after: fix_merged", "after: merged_fix"), "after: milestone merged_fix is not declared"),
        (
            BLOCK.replace("after: fix_merged", "after: validation_complete").replace(
                "reaches: validation_complete", "reaches: fix_merged"
            ),
            "reaches: fix_merged must come after validation_complete in milestones",
        ),
        (BLOCK.replace("reaches: validation_complete", "reaches: resolved"), "resolving needs a person's root cause"),
        (
            BLOCK.replace("after: fix_merged", "after: triage_complete").replace(
                "reaches: validation_complete", "reaches: mitigation_active"
            ),
            "milestone mitigation_active asks for no field to keep the runs' links in",
        ),
    ],
)
def test_a_wrong_validation_block_is_reported_at_its_line(broken: Path, new: str, message: str) -> None:  # noqa: F811
    line = edit(broken, "policy.yml", BLOCK, new)
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("policy.yml", line, "validation")
    assert message in problem.message


def test_zero_green_runs_is_refused_at_its_line(broken: Path) -> None:  # noqa: F811
    line = edit(broken, "policy.yml", "  green_runs: 3", "  green_runs: 0")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("policy.yml", line, "validation.green_runs")


def test_each_shipped_playbook_declares_what_its_seed_asks(playbooks: Playbooks) -> None:
    declared = {p.name: (v.after, v.reaches, v.green_runs) if (v := p.policy.validation) else None for p in playbooks}
    assert declared == {
        "integration-triage": ("fix_merged", "validation_complete", 3),
        "contract-drift": ("remediation_pr", "validators_green", 1),
        "library-incidents": ("fix_merged", "validation_complete", 2),
        "operations": None,  # alerts: no test runs to count
    }
