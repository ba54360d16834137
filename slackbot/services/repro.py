"""Filling the runbook's command templates (policy.yml ``commands``) for one incident.

The card, the bead body and the published runbook all show the same exact commands; filling them
in one place keeps ``gh run download …`` and the single-scenario repro identical everywhere.
"""

from __future__ import annotations

from slackbot.db.models import Incident, Run


def command_values(incident: Incident, run: Run | None) -> dict[str, str]:
    when = (run.finished_at or run.received_at) if run else incident.first_seen
    return {
        "runId": run.run_id if run else "<run-id>",
        "date": when.strftime("%Y-%m-%d"),
        "scenarioId": incident.scenario_id or incident.test_identity,
        "invariantId": incident.invariant_id or "",
        "testFile": incident.test_file or "",
        "repository": incident.repository,
    }


def fill_command(template: str, incident: Incident, run: Run | None) -> str:
    """``{runId}``-style placeholders only; other braces (shell, jq) are left alone."""
    out = template
    for key, value in command_values(incident, run).items():
        out = out.replace("{" + key + "}", value)
    return out
