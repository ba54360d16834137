"""The published triage runbook: ``docs/integration-triage-runbook.md`` rendered from ``runbooks/``.

The responder at 3 a.m. reads the document; the bot reads the YAML. Both come from the same
files, so a routing change, a new prefix or a new command template shows up in both or in
neither: ``tests/docs`` fails when the committed document differs from a fresh rendering
(``make runbook`` regenerates it). The prose that is not data (glossary, decision tree,
permissions notes) lives in ``runbooks/templates/runbook.md.j2`` next to the data it explains.

Rendering is deterministic: no "generated at" stamp, only the ``updated`` dates of the YAML
files, so rendering twice gives byte-identical output and the drift check is exact.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from slackbot.config import Runbook, load_runbook
from slackbot.config.models import FailureClass, Severity

TEMPLATE = "runbook.md.j2"
OUTPUT = Path("docs") / "integration-triage-runbook.md"

# Placeholders of policy.yml's command templates, shown as seed 001 writes them.
PLACEHOLDERS = {
    "runId": "<run-id>",
    "date": "<YYYY-MM-DD>",
    "scenarioId": "<scenarioId>",
    "invariantId": "<invariantId>",
    "testFile": "<testFile>",
    "repository": "<owner>/<repo>",
}

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def human_duration(value: timedelta, adjective: bool = False) -> str:
    """``20 minutes``, ``1 hour``, ``7 days`` (or ``20-minute`` as in "the 20-minute rule"): how a
    person says the policy's durations."""
    seconds = int(value.total_seconds())
    for name, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            if adjective:
                return f"{count}-{name}"
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{int(value.total_seconds() * 1000)}-ms" if adjective else f"{int(value.total_seconds() * 1000)} ms"


ROLES = {
    "owner": "the owner",
    "escalation": "the escalation target",
    "fallback": "the fallback",
    "release_maintainer": "the release maintainer",
}


def role(name: str) -> str:
    """Policy roles (``release_maintainer``) as words; routing.yml says who each one is."""
    return ROLES.get(name, name.replace("_", " "))


def fill(template: str, values: dict[str, str] | None = None) -> str:
    """Fill ``{runId}``-style placeholders only; shell and jq braces stay as they are."""
    out = template
    for key, value in (values or PLACEHOLDERS).items():
        out = out.replace("{" + key + "}", value)
    return out


def cell(text: object) -> str:
    """One Markdown table cell: a ``|`` would split the cell and a newline would end the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _usage_lines() -> list[str]:
    """The bot's own ``/triage`` help, so the document lists exactly the commands the bot has."""
    from slackbot.slack.replies import USAGE

    return [line.removeprefix("• ").strip() for line in USAGE.splitlines() if line.startswith("• ")]


def _example(runbooks_dir: Path) -> dict[str, Any] | None:
    """The bundled sample report (what ``triagebot demo`` posts), for a filled-in worked example."""
    path = runbooks_dir / "examples" / "nightly-report.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    failing = [r for r in data.get("results", []) if r.get("status") in ("failed", "error") and r.get("scenarioId")]
    if not failing:
        return None
    run, first = data["run"], failing[0]
    values = {
        "runId": str(run["runId"]),
        "date": str(run.get("finishedAt") or "")[:10] or PLACEHOLDERS["date"],
        "scenarioId": first["scenarioId"],
        "invariantId": first.get("invariantId") or "",
        "testFile": first.get("testFile") or "",
        "repository": run["repository"],
    }
    return {"run": run, "result": first, "values": values, "file": f"{path.parent.name}/{path.name}"}


def _environment(runbooks_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(runbooks_dir / "templates")),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = cell
    env.filters["fill"] = fill
    env.filters["duration"] = human_duration
    env.filters["role"] = role
    return env


def render_document(runbook: Runbook, runbooks_dir: Path) -> str:
    """Render an already validated runbook (the bot's own ``Core.runbook``, for instance)."""
    policy, routing = runbook.policy, runbook.routing
    phases: dict[str, list[str]] = {}
    for step in policy.response_steps:
        phases.setdefault(step.phase, []).append(step.text)
    example = _example(runbooks_dir)
    text = (
        _environment(runbooks_dir)
        .get_template(TEMPLATE)
        .render(
            taxonomy=runbook.taxonomy,
            routing=routing,
            policy=policy,
            classes=[(c.value, routing.classes[c]) for c in FailureClass],
            labels={c.value: routing.classes[c].label for c in FailureClass},
            severities=[(s.value, policy.severities[s]) for s in Severity],
            auto_bead=[s.value for s in Severity if policy.severities[s].file_bead],
            phases=phases,
            usage=_usage_lines(),
            example=example,
            placeholders=PLACEHOLDERS,
        )
    )
    # One trailing newline and no trailing spaces, whatever the template's whitespace does.
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def render_runbook(runbooks_dir: Path) -> str:
    """Load and validate ``runbooks_dir`` (raising ``RunbookError`` with ``file:line: field``
    problems, exactly like ``triagebot check``) and render the document."""
    return render_document(load_runbook(runbooks_dir), runbooks_dir)
