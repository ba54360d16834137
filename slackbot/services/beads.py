"""Defect beads: one per incident, filed from the runbook's template, followed until resolved.

The rules live here (what a bead says, which tracker a team uses, what filing changes on the
incident); the tracker calls happen in the outbox (``slackbot/outbox/bead_deliveries.py``) after
commit, so a missing, failing or slow ``bd`` never blocks triage: the card says "bead pending"
until the bead exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config.models import FailureClass, Runbook, Severity
from slackbot.db.models import Incident, Occurrence, Run, TimelineEvent
from slackbot.services.effects import Effects, utc
from slackbot.services.fingerprint import short_symptom
from slackbot.services.repro import command_values, fill_command

TIMELINE_EXCERPT = 15


@dataclass(frozen=True)
class TrackerChoice:
    name: str  # "beads" or "github"
    repository: str | None = None


def title_for(incident: Incident) -> str:
    """Seed 001: ``Integration failure: <scenarioId> / <invariantId> (<short symptom>)``."""
    scenario = incident.scenario_id or "no-scenarioId"
    invariant = incident.invariant_id or "no-invariantId"
    return f"Integration failure: {scenario} / {invariant} ({short_symptom(incident.symptom, 80)})"[:500]


class BeadService:
    def __init__(self, runbook: Runbook, clock: Clock, templates_dir: Path) -> None:
        self.runbook = runbook
        self.clock = clock
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,  # Markdown for bd/GitHub, not HTML
            keep_trailing_newline=True,
        )

    def tracker_for(self, incident: Incident) -> TrackerChoice:
        """The owning team's tracker (routing.yml ``tracker``); unrouted incidents use beads."""
        key = incident.failure_class or incident.suggested_class
        if key:
            route = self.runbook.routing.route(FailureClass(key))
            if route.tracker == "github":
                return TrackerChoice("github", route.github_repository)
        return TrackerChoice("beads")

    def priority(self, incident: Incident) -> int:
        return self.runbook.policy.severities[Severity(incident.severity)].bead_priority

    def labels(self, incident: Incident) -> tuple[str, ...]:
        labels = ["integration-failure"]
        if incident.scenario_id:
            labels.append(f"scenario:{incident.scenario_id}")
        if incident.invariant_id:
            labels.append(f"invariant:{incident.invariant_id}")
        if incident.failure_class:
            labels.append(f"class:{incident.failure_class}")
        return tuple(labels)

    def defaults(self, session: Session, incident: Incident) -> tuple[str, str]:
        """Prefilled expected/observed: the invariant's promise, and what the harness reported."""
        invariant = self.runbook.taxonomy.invariant(
            incident.invariant_id.split("-", 1)[0] if incident.invariant_id and "-" in incident.invariant_id else None
        )
        expected = (
            f"{incident.invariant_id} holds: {invariant.meaning}"
            if invariant and incident.invariant_id
            else "the scenario passes and the harness reports scenarioId and invariantId"
        )
        latest = session.exec(
            select(Occurrence.message).where(Occurrence.incident_id == incident.id).order_by(col(Occurrence.id).desc())
        ).first()
        return expected, (latest or incident.symptom)[:3000]

    def render_body(
        self, session: Session, incident: Incident, *, expected: str | None = None, observed: str | None = None
    ) -> str:
        default_expected, default_observed = self.defaults(session, incident)
        run = session.get(Run, incident.last_run_pk) if incident.last_run_pk else None
        policy = self.runbook.policy
        date = command_values(incident, run)["date"]

        def command(template: str) -> str:
            return fill_command(template, incident, run)

        timeline = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident.id)
            .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            .limit(TIMELINE_EXCERPT)
        ).all()
        owner = "unassigned"
        key = incident.failure_class or incident.suggested_class
        if key:
            owner = self.runbook.routing.route(FailureClass(key)).owner.describe()
        return self.env.get_template("bead.md.j2").render(
            scenario_id=incident.scenario_id,
            invariant_id=incident.invariant_id,
            run_url=run.url if run else None,
            date=date,
            artifact_command=command(policy.commands.artifact_download),
            expected=expected or default_expected,
            observed=observed or default_observed,
            key_entity_ids=", ".join(f"{k}={v}" for k, v in sorted(incident.key_entity_ids.items())),
            environment=policy.environment,
            repro_command=command(policy.commands.single_scenario),
            incident_key=incident.key,
            test_identity=incident.test_identity,
            class_label=incident.failure_class or "unclassified",
            severity=incident.severity,
            owner=owner,
            occurrences=incident.occurrence_count,
            first_seen=utc(incident.first_seen).strftime("%Y-%m-%d %H:%M UTC"),
            last_seen=utc(incident.last_seen).strftime("%Y-%m-%d %H:%M UTC"),
            contract_violation=incident.contract_violation,
            documentation_gap=incident.documentation_gap,
            timeline=[
                {"at": utc(e.at).strftime("%Y-%m-%d %H:%M"), "message": e.message, "source": e.source, "actor": e.actor}
                for e in timeline
            ],
        )

    # -- recording outcomes (inside the caller's transaction) -----------------------------------

    def record_filed(self, session: Session, incident: Incident, bead_id: str, url: str | None, tracker: str) -> None:
        assert incident.id is not None
        effects = Effects(now=self.clock.now())
        incident.bead_id = bead_id
        incident.bead_state = "filed"
        incident.revision += 1
        session.add(incident)
        effects.record(
            "bead_filed",
            f"Bead {bead_id} filed in {tracker}",
            incident_id=incident.id,
            source="system",
            data={"bead": bead_id, "tracker": tracker, "url": url},
        )
        effects.enqueue(
            "thread_post",
            f"bead-filed:{incident.id}",
            {"template": "bead_filed", "bead": bead_id, "url": url},
            incident_id=incident.id,
            lane=incident.channel,
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )
        effects.flush(session)

    def record_failed(self, session: Session, incident: Incident, error: str) -> None:
        assert incident.id is not None
        effects = Effects(now=self.clock.now())
        incident.bead_state = "failed"
        incident.revision += 1
        session.add(incident)
        effects.record(
            "bead_failed",
            f"Filing the bead failed: {error}",
            incident_id=incident.id,
            source="system",
            data={"error": error},
        )
        effects.enqueue(
            "thread_post",
            f"bead-failed:{incident.id}:{incident.revision}",
            {"template": "bead_failed", "error": error},
            incident_id=incident.id,
            lane=incident.channel,
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )
        effects.flush(session)
