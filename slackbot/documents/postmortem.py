"""Postmortems: what happened, why, how far it reached, what we did and what is left.

Seed 003 asks for "root cause, blast radius, and timeline" and follow-ups with owners and due
dates; seed 004 for "what happened, why, what we changed", reviewing exactly what was done and
when. Everything is already recorded (incident, runs, occurrences, timeline rows, runbook
executions), so the postmortem is a rendering of the audit trail, never a form someone fills in
from memory. The wording lives in the playbook's ``postmortem.md.j2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slackbot.clock import as_utc
from slackbot.config import Playbook
from slackbot.config.durations import human_duration
from slackbot.db.models import Incident, Occurrence, Run, RunbookExecution, TimelineEvent
from slackbot.documents import templates
from slackbot.documents.commands import fill_command, repro_for
from slackbot.documents.templates import inline, when
from slackbot.domain.effects import Event
from slackbot.domain.ids import identity
from slackbot.domain.states import BeadState, IncidentStatus

TEMPLATE = "postmortem.md.j2"
MESSAGE_LIMIT = 10  # distinct failure messages quoted; the rest are counted
EVIDENCE_LIMIT = 30
RUN_LIMIT = 50


@dataclass(frozen=True)
class Postmortem:
    filename: str
    title: str
    markdown: str
    draft: bool


@dataclass(frozen=True)
class PostmortemInputs:
    playbook: Playbook
    incident: Incident
    timeline: Sequence[TimelineEvent]
    occurrences: Sequence[Occurrence]
    runs: Sequence[Run]
    executions: Sequence[RunbookExecution]
    siblings: int
    now: datetime


def elapsed(start: datetime | None, end: datetime | None) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``: durations a reader compares with the 20-minute rule."""
    if start is None or end is None:
        return "—"
    seconds = max(0, int((as_utc(end) - as_utc(start)).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min" + (f" {secs:02d} s" if secs else "")
    return f"{secs} s"


def render_postmortem(inputs: PostmortemInputs) -> Postmortem:
    incident = inputs.incident
    context = build_context(inputs)
    markdown = templates.markdown(inputs.playbook).get_template(TEMPLATE).render(**context)
    markdown = "\n".join(line.rstrip() for line in markdown.strip().splitlines()) + "\n"
    draft = bool(context["draft"])
    title = f"{'DRAFT ' if draft else ''}Postmortem {incident.key}: {identity(incident)}"
    return Postmortem(filename=f"{incident.key}-postmortem.md", title=title[:250], markdown=markdown, draft=draft)


def build_context(inputs: PostmortemInputs) -> dict[str, Any]:
    playbook, incident = inputs.playbook, inputs.incident
    timeline, occurrences, runs, executions, siblings = (
        inputs.timeline,
        inputs.occurrences,
        inputs.runs,
        inputs.executions,
        inputs.siblings,
    )
    policy = playbook.policy
    failure_class = incident.failure_class
    route = playbook.class_route(failure_class)
    suggested = playbook.class_route(incident.suggested_class)
    milestone_keys = [m.key for m in playbook.milestones]
    last_run = next((r for r in runs if r.id == incident.last_run_pk), runs[-1] if runs else None)

    messages: list[str] = []
    for occurrence in occurrences:
        text = inline(occurrence.message or incident.symptom)
        if text and text not in messages:
            messages.append(text)
    evidence: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for occurrence in occurrences:
        for item in occurrence.evidence or []:
            key = (str(item.get("kind", "")), str(item.get("path", "")))
            if key not in seen:
                seen.add(key)
                evidence.append({"kind": inline(key[0]), "path": inline(key[1])})
    orgs = sorted({o.organization_under_test for o in occurrences if o.organization_under_test})
    entities: dict[str, set[str]] = {}
    for occurrence in occurrences:
        for name, value in (occurrence.key_entity_ids or {}).items():
            entities.setdefault(inline(name), set()).add(inline(value))

    reached: dict[str, TimelineEvent] = {}
    changes: list[dict[str, str]] = []
    for event in timeline:
        data = event.data or {}
        if event.kind == Event.MILESTONE and data.get("milestone") in milestone_keys:
            reached[str(data["milestone"])] = event
            if data.get("note"):
                label = playbook.milestone_label(str(data["milestone"]))
                what = f"{label}: {inline(data['note'])} ({inline(event.actor)})"
                changes.append({"at": when(event.at), "what": what})
        elif event.kind in (Event.RECLASSIFIED, Event.SEVERITY, Event.FLAG, Event.BEAD_FILED, Event.RESOLVED):
            if event.kind == Event.RESOLVED:
                reached[playbook.policy.resolving.key] = event
            changes.append({"at": when(event.at), "what": inline(event.message)})

    severity_rule = playbook.severity_rule(incident.severity)
    draft = incident.status != IncidentStatus.RESOLVED
    within = policy.classify_within
    last_run_command = next((o.command for o in reversed(occurrences) if o.command), None)
    repro = repro_for(playbook, incident)
    artifacts = policy.commands.artifact_download
    return {
        "draft": draft,
        "now": when(inputs.now),
        "playbook": playbook.title,
        "incident": incident,
        "ids": {
            "scenario": inline(incident.scenario_id) or "missing",
            "invariant": inline(incident.invariant_id) or "missing",
        },
        "symptom": inline(incident.symptom),
        "test_identity": inline(incident.test_identity),
        "test_file": (
            inline(incident.test_file)
            if incident.test_file and incident.test_file not in incident.test_identity
            else ""
        ),
        "class_label": playbook.class_label(failure_class),
        "class_description": route.description if route else None,
        "suggested_label": suggested.label if suggested else None,
        "suggested_reason": inline(incident.suggested_reason),
        "owner": route.owner.describe() if route else (suggested.owner.describe() if suggested else "nobody yet"),
        "assignee": incident.assignee,
        "severity": incident.severity,
        "severity_definition": severity_rule.definition,
        "root_cause": inline(incident.resolution_note),
        "milestone": playbook.milestone_label(incident.milestone).lower() if incident.milestone else "open",
        "record": dict(incident.record),
        "flags": [playbook.flags[f].label for f in incident.flags if f in playbook.flags],
        "failing_command": inline(last_run_command),
        "times": {
            "detected": when(incident.created_at),
            "first_seen": when(incident.first_seen),
            "last_seen": when(incident.last_seen),
            "acknowledged": when(incident.acknowledged_at),
            "classified": when(incident.classified_at),
            "resolved": when(incident.resolved_at),
            "to_acknowledge": elapsed(incident.created_at, incident.acknowledged_at),
            "to_classify": elapsed(incident.created_at, incident.classified_at),
            "to_resolve": elapsed(incident.created_at, incident.resolved_at),
            "classify_rule": (human_duration(within, adjective=True) + " rule") if within else "",
            "classified_late": _late(incident, within),
        },
        "runs": [
            {
                "label": inline(f"{r.repository} #{r.run_id} attempt {r.run_attempt}"),
                "url": inline(r.url),
                "suite": inline(r.suite),
                "branch": inline(r.branch),
                "sha": inline((r.sha or "")[:12]),
                "finished": when(r.finished_at or r.received_at),
                "failed": r.results_failed,
                "total": r.results_total,
                "prefixes": ", ".join(r.scenario_prefixes or []),
                "multi_prefix": r.multi_prefix,
            }
            for r in runs[-RUN_LIMIT:]
        ],
        "runs_total": len(runs),
        "occurrences": incident.occurrence_count,
        "branches": sorted({inline(r.branch) for r in runs if r.branch}),
        "shas": len({r.sha for r in runs if r.sha}),
        "orgs": [inline(o) for o in orgs],
        "entities": {name: sorted(values) for name, values in sorted(entities.items())},
        "siblings": siblings,
        "messages": messages[:MESSAGE_LIMIT],
        "messages_more": max(0, len(messages) - MESSAGE_LIMIT),
        "evidence": evidence[:EVIDENCE_LIMIT],
        "evidence_more": max(0, len(evidence) - EVIDENCE_LIMIT),
        "timeline": [
            {
                "at": when(e.at),
                "message": inline(e.message),
                "kind": e.kind,
                "actor": inline(e.actor),
                "source": inline(e.source),
            }
            for e in timeline
        ],
        "executions": [
            {
                "at": when(x.at),
                "runbook": inline(x.runbook),
                "step": x.step_index,  # stored 1-based, as people say "step 3"
                "text": inline(x.step_text),
                "result": inline(x.result),
                "actor": inline(x.actor),
                "note": inline(x.note),
            }
            for x in executions
        ],
        "milestones": [
            {"name": m.label.lower(), "at": when(reached[m.key].at) if m.key in reached else None}
            for m in playbook.milestones
        ],
        "changes": changes,
        "repro": fill_command(repro, incident, last_run, last_run_command) if repro else "",
        "artifacts": fill_command(artifacts, incident, last_run) if artifacts else "",
        "followups": _followups(playbook, incident, route is not None, draft),
    }


def _followups(playbook: Playbook, incident: Incident, classified: bool, draft: bool) -> list[str]:
    """What is still owed. Seed 003: regression tests, and follow-ups with owners and dates."""
    items: list[str] = []
    if draft:
        if not classified:
            items.append("Classify the incident (`/triage classify " + incident.key + " CLASS`).")
        items.append(
            f"Resolve {incident.key} with the root cause (`/triage resolve {incident.key} <root cause>`), "
            "then post this postmortem again for the final version."
        )
    if incident.bead_id:
        items.append(f"Track the fix in bead `{inline(incident.bead_id)}` until it is closed.")
    elif incident.bead_state == BeadState.PENDING:
        items.append("The defect bead is being filed; link it here once it exists.")
    else:
        items.append(f"File the defect bead with the evidence (`/triage bead {incident.key}`).")
    items.append(
        "Add or keep a regression test that fails on this root cause "
        f"({inline(incident.scenario_id) or 'the failing scenario'} must stay in the suite)."
    )
    if incident.contract_violation:
        missing = " and ".join(
            f"`{name}`" for name in playbook.missing_ids(incident.scenario_id, incident.invariant_id)
        )
        items.append(f"Fix the harness so this failure reports {missing or 'its ids'} (the output contract).")
    if incident.documentation_gap:
        items.append(
            f"Close the documentation gap in `runbooks/{playbook.name}/taxonomy.yml`: "
            f"{inline(incident.documentation_gap)}"
        )
    route = playbook.class_route(incident.failure_class)
    if route is not None and route.reopens_within is not None:
        window = human_duration(route.reopens_within)
        items.append(
            f"Watch for recurrence: a {route.label} incident that fails again within {window} reopens this "
            "incident and escalates."
        )
    if incident.multi_prefix:
        items.append(
            "The run failed across several scenario prefixes: check the harness and shared services "
            "for the common cause."
        )
    items.append("Give every follow-up an owner and a due date in the tracker.")
    return items


def _late(incident: Incident, within: timedelta | None) -> bool:
    if within is None or incident.classified_at is None or incident.contract_violation:
        return False
    return as_utc(incident.classified_at) - as_utc(incident.created_at) > within
