"""Postmortems: what happened, why, how far it reached, what we did and what is left, from the audit.

Seed 003 asks for "root cause, blast radius, and timeline" and follow-ups with owners; seed 004 for
"what happened, why, what we changed", reviewing exactly what was done and when. Everything here
is already recorded (incident, runs, occurrences, timeline rows, runbook executions), so the
postmortem is a rendering of the audit trail, never a form someone fills in from memory. The
wording lives in ``runbooks/templates/postmortem.md.j2`` with the rest of the runbook content.

``request`` only queues the upload (an outbox row in the caller's transaction); the document is
rendered when the row is delivered, so it reflects the incident as it is when it is posted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col, func, select

from slackbot.clock import Clock, as_utc
from slackbot.config.models import FailureClass, Runbook, Severity
from slackbot.db.models import Incident, Occurrence, Run, RunbookExecution, TimelineEvent
from slackbot.runbook_doc import human_duration
from slackbot.services.effects import Effects
from slackbot.services.incidents import MILESTONES, Actor, IncidentError, Outcome
from slackbot.services.repro import fill_command

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


def when(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


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


def inline(text: object) -> str:
    """Untrusted text on one Markdown line: newlines folded, table pipes and backticks defused."""
    return " ".join(str(text or "").split()).replace("|", "\\|").replace("`", "'")


class PostmortemService:
    def __init__(self, runbook: Runbook, clock: Clock, templates_dir: Path) -> None:
        self.runbook = runbook
        self.clock = clock
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,  # Markdown in a file, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["inline"] = inline
        self.env.filters["when"] = when

    # -- asking for one -------------------------------------------------------------------------

    def request(self, session: Session, incident_id: int, actor: Actor) -> Outcome:
        """Queue the postmortem upload into the incident's thread, and audit who asked.

        Allowed while the incident is open (the document then says "draft"): a lead often wants
        the timeline before the fix lands. Each request is its own upload."""
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentError(f"no incident INC-{incident_id}")
        effects = Effects(now=self.clock.now())
        asked = session.exec(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == "postmortem_requested")
        ).one()
        draft = incident.status != "resolved"
        effects.record(
            "postmortem_requested",
            f"Postmortem{' draft' if draft else ''} requested by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"draft": draft},
        )
        effects.enqueue(
            "postmortem",
            f"postmortem:{incident_id}:{int(asked) + 1}",
            {"actor": actor.user_id},
            incident_id=incident_id,
            lane=incident.channel,
        )
        effects.flush(session)
        what = "a draft postmortem (the incident is still open)" if draft else "the postmortem"
        return Outcome(incident_id, f"posting {what} of {incident.key} in its thread")

    # -- writing it -----------------------------------------------------------------------------

    def render(self, session: Session, incident_id: int) -> Postmortem:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise IncidentError(f"no incident INC-{incident_id}")
        context = self._context(session, incident)
        markdown = self.env.get_template(TEMPLATE).render(**context)
        markdown = "\n".join(line.rstrip() for line in markdown.strip().splitlines()) + "\n"
        ids = f"{incident.scenario_id or 'no scenarioId'} / {incident.invariant_id or 'no invariantId'}"
        draft = bool(context["draft"])
        title = f"{'DRAFT ' if draft else ''}Postmortem {incident.key}: {ids}"
        return Postmortem(filename=f"{incident.key}-postmortem.md", title=title[:250], markdown=markdown, draft=draft)

    def _context(self, session: Session, incident: Incident) -> dict[str, Any]:
        assert incident.id is not None
        routing, policy = self.runbook.routing, self.runbook.policy
        timeline = list(
            session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident.id)
                .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            )
        )
        occurrences = list(
            session.exec(select(Occurrence).where(Occurrence.incident_id == incident.id).order_by(col(Occurrence.id)))
        )
        run_pks = sorted({o.run_pk for o in occurrences} | {p for p in (incident.first_run_pk,) if p})
        runs = list(session.exec(select(Run).where(col(Run.id).in_(run_pks)).order_by(col(Run.id)))) if run_pks else []
        executions = list(
            session.exec(
                select(RunbookExecution)
                .where(RunbookExecution.incident_id == incident.id)
                .order_by(col(RunbookExecution.at), col(RunbookExecution.id))
            )
        )
        # Blast radius beyond this card: other failures the same runs reported.
        siblings = 0
        if run_pks:
            siblings = int(
                session.exec(
                    select(func.count(func.distinct(Occurrence.incident_id))).where(
                        col(Occurrence.run_pk).in_(run_pks), Occurrence.incident_id != incident.id
                    )
                ).one()
            )

        failure_class = incident.failure_class
        route = routing.route(FailureClass(failure_class)) if failure_class else None
        suggested = routing.route(FailureClass(incident.suggested_class)) if incident.suggested_class else None
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
            if event.kind == "milestone" and data.get("milestone") in MILESTONES:
                reached[str(data["milestone"])] = event
                if data.get("note"):
                    label = str(data["milestone"]).replace("_", " ").capitalize()
                    what = f"{label}: {inline(data['note'])} ({inline(event.actor)})"
                    changes.append({"at": when(event.at), "what": what})
            elif event.kind in ("reclassified", "severity", "bead_filed", "resolved"):
                if event.kind == "resolved":
                    reached["resolved"] = event
                changes.append({"at": when(event.at), "what": inline(event.message)})

        severity_rule = policy.severities[Severity(incident.severity)]
        draft = incident.status != "resolved"
        return {
            "draft": draft,
            "now": when(self.clock.now()),
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
            "class_label": route.label if route else "unclassified",
            "class_description": route.description if route else None,
            "suggested_label": suggested.label if suggested else None,
            "suggested_reason": inline(incident.suggested_reason),
            "owner": route.owner.describe() if route else (suggested.owner.describe() if suggested else "nobody yet"),
            "assignee": incident.assignee,
            "severity": incident.severity,
            "severity_definition": severity_rule.definition,
            "root_cause": inline(incident.resolution_note),
            "milestone": (incident.milestone or "open").replace("_", " "),
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
                "classify_rule": human_duration(policy.classify_within, adjective=True) + " rule",
                "classified_late": _late(incident, policy.classify_within),
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
                    "step": x.step_index + 1,
                    "text": inline(x.step_text),
                    "result": inline(x.result),
                    "actor": inline(x.actor),
                    "note": inline(x.note),
                }
                for x in executions
            ],
            "milestones": [
                {"name": name.replace("_", " "), "at": when(reached[name].at) if name in reached else None}
                for name in MILESTONES
            ],
            "changes": changes,
            "repro": fill_command(policy.commands.single_scenario, incident, last_run),
            "artifacts": fill_command(policy.commands.artifact_download, incident, last_run),
            "followups": self._followups(incident, route is not None, draft),
        }

    def _followups(self, incident: Incident, classified: bool, draft: bool) -> list[str]:
        """What is still owed. Seed 003: regression tests, and follow-ups with owners and dates."""
        policy = self.runbook.policy
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
        elif incident.bead_state == "pending":
            items.append("The defect bead is being filed; link it here once it exists.")
        else:
            items.append(f"File the defect bead with the evidence (`/triage bead {incident.key}`).")
        items.append(
            "Add or keep a regression test that fails on this root cause "
            f"({inline(incident.scenario_id) or 'the failing scenario'} must stay in the suite)."
        )
        if incident.contract_violation:
            items.append(
                "Fix the harness so this failure reports `scenarioId` and `invariantId` (the output contract)."
            )
        if incident.documentation_gap:
            items.append(
                f"Close the documentation gap in `runbooks/taxonomy.yml`: {inline(incident.documentation_gap)}"
            )
        if incident.failure_class == FailureClass.FLAKE_CONCURRENCY.value:
            window = human_duration(policy.flake.recurrence_window)
            items.append(
                f"Watch for recurrence: a flake that fails again within {window} reopens this incident and escalates."
            )
        if incident.multi_prefix:
            items.append(
                "The run failed across several scenario prefixes: check the harness and shared services "
                "for the common cause."
            )
        items.append("Give every follow-up an owner and a due date in the tracker.")
        return items


def _late(incident: Incident, within: timedelta) -> bool:
    if incident.classified_at is None or incident.contract_violation:
        return False
    return as_utc(incident.classified_at) - as_utc(incident.created_at) > within
