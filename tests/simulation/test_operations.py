"""Seed 004 end to end in the simulation: ops on call runs each alert's failure-mode runbook from
the checklist's buttons, one step fails and escalates, the alert resolves after the recovery, and
the postmortem lists every step; responders are away on the weekend and escalations still fire.

One short run (Friday and Saturday, no faults) serves every test here."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slackbot.config import load_playbooks
from slackbot.simulation import SimulationConfig, SimulationResult, simulate
from slackbot.simulation.report import report_markdown
from slackbot.simulation.runbook_checks import check_failed_step_pages
from tests.conftest import RUNBOOKS

FRIDAY = datetime(2026, 11, 27, tzinfo=UTC)
ENGINEERING_KEY = "24f5f7da78cec43a45769a14f28afef6"  # routing.yml: operations' escalation service


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    workdir: Path = tmp_path_factory.mktemp("operations")
    return simulate(SimulationConfig(days=2, seed=7, responders=True, faults=False, start=FRIDAY, workdir=workdir))


def checks(result: SimulationResult) -> dict[str, tuple[int, list[str]]]:
    return {c.key: (c.checked, c.violations) for c in result.checks}


def test_ops_runs_each_alert_runbook_to_its_postmortem(result: SimulationResult) -> None:
    found = checks(result)
    for key in ("runbook_steps", "runbook_audit", "failed_step_escalation", "postmortem_steps"):
        checked, violations = found[key]
        assert violations == [] and checked > 0, key
    operator = result.run.people.operator
    assert operator is not None and result.run.alerts is not None
    clicks = operator.clicks
    # one step failed as written, then was retried and done by the same person
    (failed,) = [c for c in clicks if c.result == "failed"]
    retried = [c for c in clicks if (c.incident, c.runbook, c.index) == (failed.incident, failed.runbook, failed.index)]
    assert [c.result for c in retried] == ["failed", "done"] and failed.user == "U0SAM"
    # the alert resolved after the recovery, and ops verified once Alertmanager said so
    resolved = {a.alertname: a.at for a in result.run.alerts.sent if a.status == "resolved"}
    for job in operator.jobs.values():
        if not job.resolved:
            continue
        mine = [c for c in clicks if c.incident == job.key and c.runbook == job.failure_class]
        recover = max(c.at for c in mine if "Recover:" in c.read)
        verify = min(c.at for c in mine if "Verify:" in c.read)
        assert recover < resolved[job.alertname] < verify, job.key
        assert job.postmortem is not None and "## Runbook executions" in job.postmortem
    assert sum(job.resolved for job in operator.jobs.values()) >= 1
    outcomes = result.figures["outcomes"]["operations"]
    assert outcomes["steps_failed"] == 1 and outcomes["steps_clicked"] == len(clicks)


def test_a_failed_step_that_pages_nobody_fails_the_check(result: SimulationResult) -> None:
    """The planted break: engineering's page for the failed step never arrived."""
    run = copy.copy(result.run)
    run.snapshot = copy.copy(run.snapshot)
    run.snapshot.messages = [m for m in run.snapshot.messages if "runbook_step_failed" not in m.text]
    run.snapshot.pagerduty = [e for e in run.snapshot.pagerduty if e.get("routing_key") != ENGINEERING_KEY]
    check = check_failed_step_pages(run, list(load_playbooks(RUNBOOKS)))
    assert check.checked == 2 and len(check.violations) == 2
    assert "<@U0TESS> (escalation) got no page" in check.violations[0]
    assert "PagerDuty service …8afef6 (escalation) got no trigger" in check.violations[1]


def test_responders_wait_for_monday_while_escalations_fire(result: SimulationResult) -> None:
    waited = result.figures["outcomes"]["waited_for_monday"]
    assert waited  # Saturday's CI failures were left for Monday
    saturday = [d for d in result.run.people.done if d.at.weekday() == 5]
    assert saturday and {d.user for d in saturday} == {"U0SAM"}  # only ops on call, paged by its alerts
    checked, violations = checks(result)["timed_rule"]
    assert violations == [] and checked > 0
    assert "Incidents that waited for Monday" in report_markdown(result, result.figures)
