"""``triagebot check`` on a lease: a wrong role or a lease with no flake class to grant it is a
``file:line`` problem, not a surprise when a flake is classified."""

from __future__ import annotations

from pathlib import Path

from tests.config.test_playbooks import copy_runbooks, line_of, problems


def test_a_lease_naming_an_unknown_role_is_reported_at_its_line(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    policy = root / "integration-triage" / "policy.yml"
    policy.write_text(
        policy.read_text(encoding="utf-8").replace("escalate_to: [escalation]", "escalate_to: [class_lead]"),
        encoding="utf-8",
    )
    (problem,) = problems(root)
    assert (problem.file, problem.field) == ("integration-triage/policy.yml", "flake.lease.escalate_to[0]")
    assert problem.line == line_of(policy, "escalate_to: [class_lead]")
    assert "'owner'" in problem.message and "'escalation'" in problem.message  # the roles it may name


def test_a_lease_without_a_flake_class_is_reported(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    routing = root / "integration-triage" / "routing.yml"
    routing.write_text(routing.read_text(encoding="utf-8").replace("signals: [flake]", "signals: []"), encoding="utf-8")
    (problem,) = problems(root)
    assert (problem.file, problem.field) == ("integration-triage/policy.yml", "flake.lease")
    assert problem.line == line_of(root / "integration-triage" / "policy.yml", "  lease:")
    assert "signals: [flake]" in problem.message
