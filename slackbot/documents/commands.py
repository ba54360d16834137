"""Filling the playbook's command templates (``policy.commands``, a class's or a prefix's ``repro``)
for one incident.

The card, the record and the published runbook all show the same exact commands; filling them in
one place keeps ``gh run download …`` and the repro command identical everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from slackbot.config import Playbook
from slackbot.db.models import Incident, Run

# How the published runbook shows each placeholder, as seed 001 writes them.
PLACEHOLDER_TEXT = {
    "runId": "<run-id>",
    "date": "<YYYY-MM-DD>",
    "scenarioId": "<scenarioId>",
    "invariantId": "<invariantId>",
    "testFile": "<testFile>",
    "testName": "<testName>",
    "testCase": "<test case>",
    "repository": "<owner>/<repo>",
    "branch": "<branch>",
    "sha": "<sha>",
    "suite": "<suite>",
    "command": "<failing command>",
}


def command_values(incident: Incident, run: Run | None, command: str | None = None) -> dict[str, str]:
    when = (run.finished_at or run.received_at) if run else incident.first_seen
    return {
        "runId": run.run_id if run else "<run-id>",
        "date": when.strftime("%Y-%m-%d"),
        "scenarioId": incident.scenario_id or incident.test_identity,
        "invariantId": incident.invariant_id or "",
        "testFile": incident.test_file or "",
        "testName": incident.test_identity,
        # The test's own name: after the last "::" of its identity, without parameters or arguments.
        "testCase": re.split(r"[\[(]", incident.test_identity.rsplit("::", 1)[-1], maxsplit=1)[0].strip(),
        "repository": incident.repository,
        "branch": (run.branch if run else None) or "",
        "sha": (run.sha if run else None) or "",
        "suite": incident.suite,
        "command": command or "",
    }


def fill(template: str, values: Mapping[str, str] | None = None) -> str:
    """``{runId}``-style placeholders only; other braces (shell, jq) are left alone."""
    out = template
    for key, value in (values or PLACEHOLDER_TEXT).items():
        out = out.replace("{" + key + "}", value)
    return out


def fill_command(template: str, incident: Incident, run: Run | None, command: str | None = None) -> str:
    return fill(template, command_values(incident, run, command))


def repro_for(playbook: Playbook, incident: Incident) -> str | None:
    """The playbook's most specific repro template for the incident, unfilled."""
    return playbook.repro_command(incident.owning_class, incident.scenario_id, incident.invariant_id)
