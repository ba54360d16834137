"""Playbooks as data: several teams' playbooks in one runbooks directory, the words each one
accepts, who each role means, which playbook a failure goes to, and what `triagebot check` says
about a broken one (``file:line: field: message``, the file named from the runbooks directory)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from slackbot.config import ChoiceError, FailureContext, RunbookError, check_playbooks, load_playbooks
from slackbot.config.loader import ConfigProblem
from slackbot.slack.replies import usage_lines
from slackbot.template_check import check_directory, check_templates

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"
LEGACY = Path(__file__).resolve().parent / "legacy_runbooks"

# A made-up team's playbook, written only as data: three classes, two severities, its own
# milestones, no taxonomy and no timed rule.
FIFTH_ROUTING = """\
version: 1
updated: 2026-12-01
classes:
  quota_exceeded:
    label: Quota exceeded
    aliases: [quota, over budget]
    description: The cloud account ran out of quota.
    owner: {handle: "@platform", usergroup: S0PLATFORM, oncall_user: U0VIC}
    required_action: Raise the quota or shed load
  bad_deploy:
    label: Bad deploy
    description: A release broke the service.
    owner: {handle: "@release", user: U0WEN}
    secondary_owner: {handle: "@platform", usergroup: S0PLATFORM}
  unknown:
    label: Unknown
    description: Nobody knows yet.
    owner: {handle: "@platform", usergroup: S0PLATFORM}
suites:
  nightly-load:
    channel: C0LOAD
unrouted: {handle: "@platform", usergroup: S0PLATFORM, user: U0VIC}
match:
  - repository: acme/loadtest
"""
FIFTH_POLICY = """\
version: 1
updated: 2026-12-01
title: Load test failures
id_contract: none
severities:
  P1: {definition: Customers notice., pages: [owner], aliases: [urgent]}
  P2: {definition: Nobody notices yet.}
default_severity: P2
milestones:
  - {key: mitigated, label: Mitigated}
  - key: closed
    label: Closed
    resolves: true
    asks: [{key: root_cause, label: Root cause}, {key: ticket, label: Ticket, optional: true}]
"""


def copy_runbooks(tmp_path: Path) -> Path:
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target)
    return target


def add_playbook(root: Path, name: str, routing: str, policy: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "routing.yml").write_text(routing, encoding="utf-8")
    (folder / "policy.yml").write_text(policy, encoding="utf-8")
    workspace = root / "workspace.yml"
    text = workspace.read_text(encoding="utf-8")
    workspace.write_text(text.replace("playbooks:\n", f"playbooks:\n  - {name}\n", 1), encoding="utf-8")
    return folder


def line_of(path: Path, needle: str) -> int:
    text = path.read_text(encoding="utf-8")
    assert needle in text, needle
    return text.count("\n", 0, text.index(needle)) + 1


def problems(root: Path) -> list[ConfigProblem]:
    with pytest.raises(RunbookError) as caught:
        load_playbooks(root)
    assert caught.value.problems == check_playbooks(root)
    return caught.value.problems


# -- a fifth team, data only -----------------------------------------------------------------------


def test_a_playbook_written_only_as_data_loads_and_speaks_its_own_words(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    add_playbook(root, "load-tests", FIFTH_ROUTING, FIFTH_POLICY)
    assert check_directory(root) == []  # templates render for it too (it uses the shared ones)
    playbooks = load_playbooks(root)
    fifth = playbooks.named("load-tests")
    assert fifth is not None and fifth.title == "Load test failures"
    assert fifth.parse_class("OVER BUDGET") == "quota_exceeded"
    assert fifth.parse_class("bad deploy") == "bad_deploy"
    assert fifth.parse_severity("urgent") == "P1" and fifth.parse_severity("p2") == "P2"
    assert fifth.parse_milestone("closed").resolves
    assert fifth.policy.classify_within is None and fifth.policy.escalation is None
    assert fifth.missing_ids_class is None and not fifth.contract_violation(None, None)
    # Its failures go to it by its match rule, and its suite goes to its own channel.
    context = FailureContext(source="report", repository="acme/loadtest", suite="nightly-load")
    assert playbooks.select(context) is fifth
    assert fifth.channel_for_suite("nightly-load") == "C0LOAD"
    assert fifth.channel_for_suite("other") == playbooks.workspace.default_channel
    with pytest.raises(ChoiceError, match=r"unknown class 'flake'; use one of: Quota exceeded \(quota_exceeded\)"):
        fifth.parse_class("flake")


def test_roles_fall_back_along_the_chain_the_playbook_leaves_open(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    add_playbook(root, "load-tests", FIFTH_ROUTING, FIFTH_POLICY)
    fifth = load_playbooks(root).named("load-tests")
    assert fifth is not None
    owner = fifth.target("owner", "bad_deploy")
    assert owner is not None and (owner.role, owner.failure_class, owner.dm_user) == ("owner", "bad_deploy", "U0WEN")
    # No escalation target and no release maintainer: the one who owns unrouted incidents.
    escalation = fifth.target("escalation", "bad_deploy")
    assert escalation is not None and (escalation.role, escalation.target.usergroup) == ("owner", "S0PLATFORM")
    fallback = fifth.target("fallback", "bad_deploy")
    assert fallback is not None and fallback.role == "secondary_owner"
    assert fifth.target("secondary_owner", "quota_exceeded") is None
    unclassified = fifth.target("owner", None)
    assert unclassified is not None and unclassified.target.user == "U0VIC"


# -- the shipped set -------------------------------------------------------------------------------


def test_routing_picks_the_playbook_by_match_suite_trigger_and_alert() -> None:
    playbooks = load_playbooks(RUNBOOKS)
    names = [p.name for p in playbooks]
    assert names[0] == "integration-triage" and playbooks.default.name == "integration-triage"
    assert playbooks.select(FailureContext(source="report", suite="nightly")).name == "integration-triage"
    assert playbooks.select(FailureContext(source="report", suite="whatever")).name == "integration-triage"
    if "contract-drift" in names:
        drift = FailureContext(source="report", suite="contract-drift")
        assert playbooks.select(drift).name == "contract-drift"
        command = FailureContext(source="junit", command="python3 scripts/validate-legacy-alias-parity.py")
        assert playbooks.select(command).name == "contract-drift"
    if "library-incidents" in names:
        assert playbooks.select(FailureContext(source="junit", suite="library-ci")).name == "library-incidents"
    if "operations" in names:
        alert = FailureContext(source="alertmanager", alertname="SettlementFailed", suite="alerts")
        assert playbooks.select(alert).name == "operations"


def test_match_rules_weigh_each_failure_in_workspace_order(tmp_path: Path) -> None:
    """A rule's fields all have to match; the first playbook (in workspace order) with a fitting
    rule wins, whether the rule takes the whole run or looks at the failure's test or command."""
    root = copy_runbooks(tmp_path)
    rules = FIFTH_ROUTING.replace(
        "  - repository: acme/loadtest\n",
        "  - repository: acme/loadtest\n"
        '  - test: "load/*"\n'
        '  - command: "k6 run *"\n'
        '  - {test: "soak*", command: "make soak*"}\n',
    )
    add_playbook(root, "load-tests", rules, FIFTH_POLICY)  # listed first
    playbooks = load_playbooks(root)

    def picked(repository: str, **failure: str) -> list[str]:
        run = FailureContext(source="report", repository=repository, suite="nightly")
        one = playbooks.select(FailureContext(**{**run.__dict__, **failure})).name
        many = playbooks.router(run).pick(failure.get("test_file"), failure.get("test_name"), failure.get("command"))
        return [one, many.name]

    drift = "python3 scripts/validate-legacy-alias-parity.py"
    assert picked("acme/loadtest", command=drift) == ["load-tests"] * 2
    assert picked("acme/dispatch", test_file="load/spike.js") == ["load-tests"] * 2
    assert picked("acme/dispatch", test_name="load/ramp") == ["load-tests"] * 2
    assert picked("acme/dispatch", command="k6 run smoke.js") == ["load-tests"] * 2
    assert picked("acme/dispatch", test_name="soak 1h", command="make soak-long") == ["load-tests"] * 2
    assert picked("acme/dispatch", test_name="soak 1h", command="make test") == ["integration-triage"] * 2
    assert picked("acme/dispatch", test_name="soak 1h") == ["integration-triage"] * 2
    assert picked("acme/dispatch", command=drift) == ["contract-drift"] * 2
    # contract-drift's command rule comes before library-incidents' rule for the whole repository
    assert picked("acme/cbdd", command=drift) == ["contract-drift"] * 2
    assert picked("acme/cbdd", test_name="Pager.Split") == ["library-incidents"] * 2
    assert picked("acme/cbdd", test_file="load/x.js") == ["load-tests"] * 2


def test_every_shipped_template_renders_for_every_playbook() -> None:
    assert check_templates(load_playbooks(RUNBOOKS), usage_lines()) == []


# -- broken playbooks ------------------------------------------------------------------------------


def test_a_suite_routed_to_two_playbooks_names_both(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    folder = add_playbook(root, "load-tests", FIFTH_ROUTING.replace("nightly-load:", "nightly:"), FIFTH_POLICY)
    found = [p for p in problems(root) if p.field == "suites.nightly"]
    assert len(found) == 1
    problem = found[0]
    assert problem.file in ("load-tests/routing.yml", "integration-triage/routing.yml")
    assert "already routed to the" in problem.message
    if problem.file == "load-tests/routing.yml":
        assert problem.line == line_of(folder / "routing.yml", "  nightly:")


def test_a_duplicate_alias_and_a_milestone_named_twice(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    routing = FIFTH_ROUTING.replace("aliases: [quota, over budget]", "aliases: [quota, bad deploy]")
    policy = FIFTH_POLICY.replace("  - {key: mitigated, label: Mitigated}", "  - {key: closed, label: Mitigated}")
    folder = add_playbook(root, "load-tests", routing, policy)
    found = {(p.file, p.field): p for p in problems(root)}
    alias = found[("load-tests/routing.yml", "classes")]
    assert "can both be typed as 'baddeploy'" in alias.message
    assert alias.line == line_of(folder / "routing.yml", "classes:")
    twice = found[("load-tests/policy.yml", "milestones")]
    assert "milestone closed is named twice" in twice.message


def test_a_severity_or_class_referenced_but_not_declared(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    routing = FIFTH_ROUTING.replace(
        "required_action: Raise the quota", "default_severity: P0\n    required_action: Raise"
    )
    policy = FIFTH_POLICY.replace("default_severity: P2", "default_severity: P3")
    folder = add_playbook(root, "load-tests", routing, policy)
    (policy_problem,) = [p for p in problems(root) if p.file == "load-tests/policy.yml"]
    assert "default_severity P3 is not declared in severities (P1, P2)" in policy_problem.message
    # The routing problem is only reported once the policy is valid: fix it and look again.
    (folder / "policy.yml").write_text(FIFTH_POLICY, encoding="utf-8")
    (routing_problem,) = problems(root)
    assert routing_problem.file == "load-tests/routing.yml"
    assert routing_problem.field == "classes.quota_exceeded.default_severity"
    assert routing_problem.line == line_of(folder / "routing.yml", "default_severity: P0")
    assert "severity P0 is not declared in policy.yml severities (P1, P2)" in routing_problem.message


def test_a_workspace_that_lists_a_missing_playbook_or_a_playbook_with_workspace_keys(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    workspace = root / "workspace.yml"
    workspace.write_text(
        workspace.read_text(encoding="utf-8").replace("playbooks:\n", "playbooks:\n  - nowhere\n", 1), encoding="utf-8"
    )
    (missing,) = problems(root)
    assert (missing.file, missing.field) == ("workspace.yml", "playbooks[0]")
    assert missing.line == line_of(workspace, "  - nowhere")
    assert "no nowhere/routing.yml" in missing.message

    root = copy_runbooks(tmp_path / "second")
    add_playbook(root, "load-tests", FIFTH_ROUTING + "ops_channel: C0OPS\n", FIFTH_POLICY)
    (moved,) = problems(root)
    assert (moved.file, moved.field) == ("load-tests/routing.yml", "ops_channel")
    assert "belongs in workspace.yml" in moved.message


def test_an_id_contract_needs_a_class_for_failures_without_ids(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    add_playbook(root, "load-tests", FIFTH_ROUTING, FIFTH_POLICY.replace("id_contract: none", "id_contract: scenario"))
    (problem,) = problems(root)
    assert (problem.file, problem.field) == ("load-tests/routing.yml", "classes")
    assert "no class sets takes_missing_ids" in problem.message


def test_a_template_with_an_undefined_variable_is_reported_at_its_line(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    folder = add_playbook(root, "load-tests", FIFTH_ROUTING, FIFTH_POLICY)
    (folder / "templates" / "slack").mkdir(parents=True)
    (folder / "templates" / "slack" / "acknowledged.j2").write_text(
        "👀 {{ actor }} took it.\nTicket: {{ ticket_url }}\n", encoding="utf-8"
    )
    (folder / "templates" / "bead.md.j2").write_text("no front matter here: {{ incident_key }}\n", encoding="utf-8")
    found = check_directory(root)
    undefined = [p for p in found if "ticket_url" in p.message]
    assert [(p.file, p.line) for p in undefined] == [("load-tests/templates/slack/acknowledged.j2", 2)]
    assert "undefined variable in the load-tests playbook" in undefined[0].message
    # A record template without its front matter still files (the title it always had), so only
    # the undefined variable is a problem.
    assert len(found) == 1, [str(p) for p in found]


# -- a directory from before playbooks -------------------------------------------------------------


def test_a_runbooks_directory_from_before_playbooks_is_the_integration_triage_playbook() -> None:
    assert check_directory(LEGACY) == []
    playbooks = load_playbooks(LEGACY)
    (only,) = list(playbooks)
    assert only.name == "integration-triage"
    # The behaviour seed 001's class keys had in code is now data on those classes.
    assert only.missing_ids_class == "harness_diagnostics" == only.run_escalation_class
    flake = only.classes["flake_concurrency"]
    assert (flake.files_bead, flake.bead_before_resolve, flake.reopens_within) == (True, True, timedelta(days=7))
    assert only.policy.commands.repro and "{scenarioId}" in only.policy.commands.repro
    assert only.policy.commands.suites["smoke"][-1] == "pnpm test:integration:smoke"
    assert [m.key for m in only.milestones][-1] == "resolved"
    assert playbooks.workspace.ops_channel == "C0OPS" and playbooks.workspace.responders
    assert only.parse_class("flake") == "flake_concurrency" and only.parse_severity("1") == "SEV-1"
    assert len(only.policy.alerts) == 6 and all(a.severity and a.failure_class for a in only.policy.alerts)
