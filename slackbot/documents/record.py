"""The incident record: the defect bead (or GitHub issue) body, title and labels, rendered from the
playbook's ``bead.md.j2``.

The template is the whole record, title and labels included, in a front matter the bot reads back:

    ---
    title: Integration failure: BID-001 / TENANT-001 (notification leaked)
    labels: integration-failure, scenario:BID-001
    ---
    (the body, in Markdown)

so a team changes what its records say without touching code (seed 001's defect template, seed
002's incident record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slackbot.config import Playbook
from slackbot.db.models import Incident, Run, TimelineEvent
from slackbot.documents import templates
from slackbot.documents.commands import command_values, fill, repro_for
from slackbot.domain.ids import short_symptom

TEMPLATE = "bead.md.j2"
TIMELINE_EXCERPT = 15


class RecordTemplateError(ValueError):
    """The template rendered no usable front matter."""


@dataclass(frozen=True)
class TrackerChoice:
    name: str  # "beads" or "github"
    repository: str | None = None


@dataclass(frozen=True)
class RecordInputs:
    playbook: Playbook
    incident: Incident
    run: Run | None
    expected: str
    observed: str
    command: str | None = None
    log: str = ""
    timeline: Sequence[TimelineEvent] = field(default_factory=list)


@dataclass(frozen=True)
class RecordDocument:
    title: str
    labels: tuple[str, ...]
    body: str


def tracker_for(playbook: Playbook, incident: Incident) -> TrackerChoice:
    """The owning team's tracker (routing.yml ``tracker``); unrouted incidents use beads."""
    route = playbook.class_route(incident.owning_class)
    if route is not None and route.tracker == "github":
        return TrackerChoice("github", route.github_repository)
    return TrackerChoice("beads")


def priority(playbook: Playbook, incident: Incident) -> int:
    return playbook.severity_rule(incident.severity).bead_priority


def default_expected(playbook: Playbook, incident: Incident) -> str:
    """The invariant's promise when the taxonomy knows it; else what the contract asks for."""
    invariant = playbook.invariant_entry(incident.invariant_id)
    if invariant is not None and incident.invariant_id:
        return f"{incident.invariant_id} holds: {invariant.meaning}"
    if playbook.policy.id_contract == "none":
        return "the check passes"
    return "the scenario passes and the harness reports scenarioId and invariantId"


def context(inputs: RecordInputs) -> dict[str, Any]:
    playbook, incident, run = inputs.playbook, inputs.incident, inputs.run
    values = command_values(incident, run, inputs.command)
    commands = playbook.policy.commands
    repro = repro_for(playbook, incident)
    owner = playbook.class_route(incident.owning_class)
    provider = run.provider if run else "ci"
    return {
        "playbook": playbook.title,
        "incident_key": incident.key,
        "scenario_id": incident.scenario_id,
        "invariant_id": incident.invariant_id,
        "short_symptom": short_symptom(incident.symptom, 80),
        "symptom": incident.symptom,
        "run_url": run.url if run else None,
        "run_label": f"{run.repository} #{run.run_id} attempt {run.run_attempt}" if run else None,
        "detected_by": {"slack": "Slack", "alertmanager": "Alertmanager"}.get(provider, f"CI ({provider})"),
        "suite": incident.suite,
        "date": values["date"],
        "artifact_command": fill(commands.artifact_download, values) if commands.artifact_download else None,
        "expected": inputs.expected,
        "observed": inputs.observed,
        "failing_command": inputs.command,
        "log": inputs.log,
        "key_entity_ids": ", ".join(f"{k}={v}" for k, v in sorted(incident.key_entity_ids.items())),
        "environment": playbook.policy.environment,
        "repro_command": fill(repro, values) if repro else None,
        "test_identity": incident.test_identity,
        "class_key": incident.failure_class,
        "class_label": playbook.class_label(incident.failure_class),
        "severity": incident.severity,
        "owner": owner.owner.describe() if owner else "unassigned",
        "assignee": incident.assignee,
        "record": dict(incident.record),
        "flags": [playbook.flags[f].label for f in incident.flags if f in playbook.flags],
        "occurrences": incident.occurrence_count,
        "first_seen": incident.first_seen.strftime("%Y-%m-%d %H:%M UTC"),
        "last_seen": incident.last_seen.strftime("%Y-%m-%d %H:%M UTC"),
        "contract_violation": incident.contract_violation,
        "documentation_gap": incident.documentation_gap,
        "suspects": incident.suspects,  # the changes since the last green sha (slackbot/suggest)
        "timeline": [
            {"at": e.at.strftime("%Y-%m-%d %H:%M"), "message": e.message, "source": e.source, "actor": e.actor}
            for e in inputs.timeline
        ],
    }


def render_record(inputs: RecordInputs) -> RecordDocument:
    values = context(inputs)
    text = templates.markdown(inputs.playbook).get_template(TEMPLATE).render(**values)
    if not text.lstrip("\n").startswith("---"):
        # A template written before records carried their own title (seed 001's defect template):
        # the title and labels it always had.
        ids = f"{values['scenario_id'] or 'no-scenarioId'} / {values['invariant_id'] or 'no-invariantId'}"
        labels = ["integration-failure"]
        labels += [
            f"{k}:{v}"
            for k, v in (
                ("scenario", values["scenario_id"]),
                ("invariant", values["invariant_id"]),
                ("class", values["class_key"]),
            )
            if v
        ]
        title = f"Integration failure: {ids} ({values['short_symptom']})"
        return RecordDocument(title=title[:500], labels=tuple(labels), body=text)
    return parse_front_matter(text)


def parse_front_matter(text: str) -> RecordDocument:
    lines = text.lstrip("\n").splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in [line.strip() for line in lines[1:]]:
        raise RecordTemplateError(f"{TEMPLATE}: the front matter (---, title: …, labels: …, ---) is not closed")
    end = 1 + [line.strip() for line in lines[1:]].index("---")
    fields: dict[str, str] = {}
    for line in lines[1:end]:
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
    title = " ".join(fields.get("title", "").split())
    if not title:
        raise RecordTemplateError(f"{TEMPLATE}: the front matter has no title")
    labels = tuple(dict.fromkeys(label.strip() for label in fields.get("labels", "").split(",") if label.strip()))
    body = "\n".join(lines[end + 1 :]).strip("\n") + "\n"
    return RecordDocument(title=title[:500], labels=labels, body=body)
