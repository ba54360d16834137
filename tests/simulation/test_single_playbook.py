"""A team that adopts one shipped playbook alone: the simulation must run on a set holding only it
and pass with the promises that set was meant to test, naming the others and why. Whether a promise
applies comes from the plan (the YAML, the CI and alert schedules), never from what the bot did.

Two short runs (two simulated days each, faults on) serve every test here."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from slackbot.simulation import SimulationConfig, SimulationResult, simulate
from slackbot.simulation.invariants import check_all
from slackbot.simulation.playbook_sets import single_playbook_set
from slackbot.simulation.report import report_markdown
from tests.conftest import RUNBOOKS


def run_alone(playbook: str, factory: pytest.TempPathFactory) -> SimulationResult:
    runbooks = single_playbook_set(RUNBOOKS, playbook, factory.mktemp(f"set-{playbook}"))
    return simulate(SimulationConfig(days=2, seed=7, runbooks_dir=runbooks, workdir=factory.mktemp(playbook)))


@pytest.fixture(scope="module")
def contract_drift(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return run_alone("contract-drift", tmp_path_factory)


@pytest.fixture(scope="module")
def operations(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return run_alone("operations", tmp_path_factory)


def verdicts(result: SimulationResult) -> dict[str, tuple[int, list[str]]]:
    return {c.key: (c.checked, c.violations) for c in result.checks}


def test_contract_drift_alone_keeps_the_promises_it_was_meant_to_test(contract_drift: SimulationResult) -> None:
    found = verdicts(contract_drift)
    assert contract_drift.passed, {k: v for k, (_, v) in found.items() if v}
    for key in ("occurrences", "cards_from_traffic", "milestones_from_policy", "entry_points", "one_bead"):
        assert found[key][0] > 0, key
    # no timed rule, no alert rule, no SEV-1, no class for a run failing across prefixes: left out
    skipped = contract_drift.figures["simulated"]["not_applicable"]
    assert {"timed_rule", "alert_pages", "severity_pages", "run_escalations", "escalations"} <= set(skipped)
    assert not set(skipped) & set(found)
    assert (
        "did not apply: alert_pages: no Alertmanager alert was scheduled to fire (no playbook has alert rules); "
        in (report_markdown(contract_drift, contract_drift.figures))
    )
    # without a nightly suite the faults meet the set's own runs (the first of each day) all the same
    faults = contract_drift.figures["faults"]
    assert {"slack_429", "slack_5xx", "bd_outage", "pagerduty_outage"} <= {f["kind"] for f in faults["injected"]}
    assert faults["slack_429_posts"] > 0


def test_operations_alone_tests_its_alerts_and_leaves_out_what_needs_ci(operations: SimulationResult) -> None:
    found = verdicts(operations)
    assert operations.passed, {k: v for k, (_, v) in found.items() if v}
    assert found["alert_pages"][0] > 0 and found["cards_from_traffic"][0] > 0
    skipped = operations.figures["simulated"]["not_applicable"]
    assert {"occurrences", "entry_points", "milestones_from_policy", "run_escalations", "severity_pages"} <= set(
        skipped
    )
    assert skipped["occurrences"] == "no CI run was scheduled (every failure is an Alertmanager alert)"
    assert "Promises that did not apply: " in report_markdown(operations, operations.figures)


def test_a_bot_that_pages_nobody_does_not_make_the_paging_promise_disappear(operations: SimulationResult) -> None:
    """The alerts were scheduled, so their pages are owed: with every page gone from Slack the
    alert check stays in the list and fails, it is not left out as "did not apply"."""
    snapshot = operations.run.snapshot
    quiet = [m for m in snapshot.messages if not m.channel.startswith("D")]
    run = dataclasses.replace(operations.run, snapshot=dataclasses.replace(snapshot, messages=quiet))
    alert = next(c for c in check_all(run) if c.key == "alert_pages")
    assert not alert.passed and alert.checked > 0
    assert all("should have been paged once" in v for v in alert.violations)


def test_a_promise_planned_and_examined_in_nothing_still_fails(contract_drift: SimulationResult) -> None:
    """contract-drift's CI was scheduled: were its traffic lost, the occurrence promise would fail,
    not vanish."""
    traffic = copy.copy(contract_drift.run.traffic)
    traffic.sent = []
    run = dataclasses.replace(contract_drift.run, traffic=traffic)
    occurrences = next(c for c in check_all(run) if c.key == "occurrences")
    assert occurrences.checked == 0 and not occurrences.passed


def test_library_incidents_alone_has_its_write_ahead_log_corruption_marked_and_paged(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Seed 003's playbook as the workspace's default: the passer-by who marks the WAL corruption
    SEV-1 is whoever owns its unclassified incidents (Olive), not the release maintainer, whom the
    workspace leaves out of the responders (the bot refused him, and nobody was ever paged)."""
    result = run_alone("library-incidents", tmp_path_factory)
    found = verdicts(result)
    assert result.passed, {k: v for k, (_, v) in found.items() if v}
    marked = [(d.user, d.what, d.answer) for d in result.run.people.done]
    assert [(user, what) for user, what, _ in marked] == [("U0OLIVE", "marked it SEV-1 (/triage severity)")]
    assert " is now " in marked[0][2]
    assert found["severity_pages"][0] == 2  # the release maintainer and the owner, as policy.yml names them
