"""The incident state machine: every change a responder, a command, a timer or the API makes.

Each operation runs inside the caller's transaction, validates first (so a refused change leaves
nothing behind), then changes the row, writes the timeline row and enqueues the card redraw and
thread post as outbox rows. Handlers never touch incident rows directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clock import Clock
from slackbot.config.models import FailureClass, Runbook, Severity
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident
from slackbot.services import reminders
from slackbot.services.effects import Effects, cancel_timer, utc
from slackbot.services.paging import enqueue_page, targets_for

MILESTONES = ("triage_complete", "mitigation_active", "fix_merged", "validation_complete", "resolved")

CLASS_ALIASES = {
    "infra": FailureClass.INFRA_CI,
    "ci": FailureClass.INFRA_CI,
    "harness": FailureClass.HARNESS_DIAGNOSTICS,
    "diagnostics": FailureClass.HARNESS_DIAGNOSTICS,
    "algorithm": FailureClass.ALGORITHM_REGRESSION,
    "regression": FailureClass.ALGORITHM_REGRESSION,
    "data": FailureClass.DATA_SCHEMA_DRIFT,
    "schema": FailureClass.DATA_SCHEMA_DRIFT,
    "drift": FailureClass.DATA_SCHEMA_DRIFT,
    "flake": FailureClass.FLAKE_CONCURRENCY,
    "concurrency": FailureClass.FLAKE_CONCURRENCY,
}


class IncidentError(ValueError):
    """A change that was refused; the message is shown to the person who asked."""


@dataclass(frozen=True)
class Actor:
    user_id: str
    source: str  # button | command | timer | api | rule

    @property
    def mention(self) -> str:
        return f"<@{self.user_id}>" if self.user_id.startswith(("U", "W")) else self.user_id


@dataclass
class Outcome:
    incident_id: int
    message: str
    changed: bool = True


def parse_class(text: str) -> FailureClass:
    value = text.strip().lower().replace("/", "_").replace("-", "_")
    try:
        return FailureClass(value)
    except ValueError:
        pass
    if value in CLASS_ALIASES:
        return CLASS_ALIASES[value]
    choices = ", ".join(c.value for c in FailureClass)
    raise IncidentError(f"unknown class '{text}'; use one of: {choices} (or infra, harness, algorithm, schema, flake)")


def parse_severity(text: str) -> Severity:
    value = text.strip().upper().replace("SEV", "SEV-").replace("--", "-")
    if value.isdigit():
        value = f"SEV-{value}"
    try:
        return Severity(value)
    except ValueError:
        raise IncidentError(f"unknown severity '{text}'; use SEV-1, SEV-2 or SEV-3") from None


class IncidentService:
    def __init__(self, runbook: Runbook, clock: Clock) -> None:
        self.runbook = runbook
        self.clock = clock

    # -- plumbing ---------------------------------------------------------------------------------

    def run(self, engine: Engine, operation: str, incident_id: int, actor: Actor, **kwargs: Any) -> Outcome:
        """Run one operation in its own transaction (what handlers call)."""
        with session_scope(engine) as session:
            method = getattr(self, operation)
            outcome: Outcome = method(session, incident_id, actor, **kwargs)
            return outcome

    def _load(self, session: Session, incident_id: int) -> Incident:
        query = select(Incident).where(Incident.id == incident_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        incident = session.exec(query).first()
        if incident is None:
            raise IncidentError(f"no incident INC-{incident_id}")
        return incident

    def _changed(
        self,
        session: Session,
        incident: Incident,
        effects: Effects,
        *,
        thread: dict[str, Any] | None = None,
        flush: bool = True,
    ) -> None:
        """Bump the revision, then enqueue the redraw and (optionally) a thread post. Every change
        is activity on the incident, so the quiet-thread reminder moves back one interval.
        ``flush=False`` leaves writing the effects to the caller, who queues more first."""
        assert incident.id is not None
        incident.revision += 1
        incident.updated_at = utc(effects.now)
        session.add(incident)
        session.flush()
        reminders.push_back(session, incident, effects.now, self.runbook.policy.status_update_every)
        if thread is not None:
            effects.enqueue(
                "thread_post",
                f"thread:{incident.id}:{incident.revision}",
                thread,
                incident_id=incident.id,
                lane=incident.channel,
            )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )
        if flush:
            effects.flush(session)

    @staticmethod
    def _auto_bead(incident: Incident, effects: Effects, reason: str) -> None:
        """Beads the policy files by itself (flake, SEV-1): once per incident, never blocking."""
        if incident.bead_id or incident.bead_state == "pending":
            return
        incident.bead_state = "pending"
        effects.enqueue(
            "bead_file",
            f"bead:{incident.id}:{incident.revision + 1}",
            {"reason": reason},
            incident_id=incident.id,
            lane="beads",
        )

    @staticmethod
    def _require_open(incident: Incident) -> None:
        if incident.status == "resolved":
            raise IncidentError(f"{incident.key} is resolved; a new failure opens a new incident")

    # -- operations -------------------------------------------------------------------------------

    def classify(self, session: Session, incident_id: int, actor: Actor, *, failure_class: str) -> Outcome:
        chosen = parse_class(failure_class)
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if incident.failure_class == chosen.value:
            return Outcome(incident_id, f"{incident.key} is already classified {chosen.value}", changed=False)
        effects = Effects(now=self.clock.now())
        previous = incident.failure_class
        incident.failure_class = chosen.value
        incident.class_source = "human"
        first = incident.classified_at is None
        if first:
            incident.classified_at = utc(effects.now)
        # The 20-minute rule stops at the first classification; reclassifying does not restart it.
        cancel_timer(session, subject=f"incident:{incident_id}", kind="classify")
        route = self.runbook.routing.route(chosen)
        verb = "Reclassified" if previous else "Classified"
        effects.record(
            "reclassified" if previous else "classified",
            f"{verb} {chosen.value}" + (f" (was {previous})" if previous else "") + f" by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"class": chosen.value, "previous": previous},
        )
        effects.record(
            "routed",
            f"Owner is now {route.owner.describe()} (routing for {chosen.value})",
            incident_id=incident_id,
            source="rule",
            data={"class": chosen.value, "owner": route.owner.describe()},
        )
        if chosen is FailureClass.FLAKE_CONCURRENCY and self.runbook.policy.flake.file_bead:
            self._auto_bead(incident, effects, "flake")
        self._changed(
            session,
            incident,
            effects,
            thread={
                "template": "classified",
                "class": chosen.value,
                "previous": previous,
                "actor": actor.user_id,
            },
            flush=False,
        )
        # The interactive checklist (Done / Failed / Skip per step) follows the classified post.
        from slackbot.services.checklists import enqueue_checklist  # that module imports this one

        enqueue_checklist(
            effects,
            incident_id=incident_id,
            channel=incident.channel,
            revision=incident.revision,
            failure_class=chosen.value,
            reclassified=previous is not None,
        )
        effects.flush(session)
        return Outcome(incident_id, f"{incident.key} {verb.lower()} {route.label}")

    def acknowledge(self, session: Session, incident_id: int, actor: Actor) -> Outcome:
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if incident.assignee == actor.user_id:
            return Outcome(incident_id, f"you already own {incident.key}", changed=False)
        effects = Effects(now=self.clock.now())
        incident.assignee = actor.user_id
        if incident.acknowledged_at is None:
            incident.acknowledged_at = utc(effects.now)
        effects.record(
            "acknowledged",
            f"Acknowledged by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
        )
        effects.enqueue(
            "pagerduty_follow",
            f"pd-ack:{incident_id}",
            {"action": "acknowledge"},
            incident_id=incident_id,
            lane="pagerduty",
        )
        self._changed(session, incident, effects, thread={"template": "acknowledged", "actor": actor.user_id})
        return Outcome(incident_id, f"you now own {incident.key}")

    def assign(self, session: Session, incident_id: int, actor: Actor, *, user_id: str) -> Outcome:
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if incident.assignee == user_id:
            return Outcome(incident_id, f"{incident.key} is already assigned to <@{user_id}>", changed=False)
        effects = Effects(now=self.clock.now())
        previous = incident.assignee
        incident.assignee = user_id
        if incident.acknowledged_at is None:
            incident.acknowledged_at = utc(effects.now)
        effects.record(
            "assigned",
            f"Assigned to {user_id} by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"assignee": user_id, "previous": previous},
        )
        self._changed(
            session,
            incident,
            effects,
            thread={"template": "assigned", "actor": actor.user_id, "assignee": user_id},
        )
        return Outcome(incident_id, f"{incident.key} assigned to <@{user_id}>")

    def set_severity(self, session: Session, incident_id: int, actor: Actor, *, severity: str) -> Outcome:
        chosen = parse_severity(severity)
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if incident.severity == chosen.value:
            return Outcome(incident_id, f"{incident.key} is already {chosen.value}", changed=False)
        effects = Effects(now=self.clock.now())
        previous = incident.severity
        incident.severity = chosen.value
        effects.record(
            "severity",
            f"Severity {previous} → {chosen.value} by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"severity": chosen.value, "previous": previous},
        )
        rule = self.runbook.policy.severities[chosen]
        if rule.pages:
            # Seed 003: SEV-1 pages the release maintainer at once.
            enqueue_page(
                effects,
                self.runbook,
                incident,
                targets_for(self.runbook, incident, list(rule.pages)),
                reason="severity",
                step=chosen.value,
            )
        if rule.file_bead:
            self._auto_bead(incident, effects, "severity")
        self._changed(
            session,
            incident,
            effects,
            thread={
                "template": "severity",
                "actor": actor.user_id,
                "severity": chosen.value,
                "previous": previous,
            },
        )
        return Outcome(incident_id, f"{incident.key} is now {chosen.value}")

    def escalate(self, session: Session, incident_id: int, actor: Actor, *, reason: str = "") -> Outcome:
        incident = self._load(session, incident_id)
        self._require_open(incident)
        effects = Effects(now=self.clock.now())
        effects.record(
            "escalated",
            f"Escalated by {actor.user_id}" + (f": {reason}" if reason else ""),
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"reason": reason},
        )
        levels = self.runbook.policy.escalation.levels
        level = levels[min(incident.escalation_level, len(levels) - 1)]
        incident.escalation_level += 1
        enqueue_page(
            effects,
            self.runbook,
            incident,
            targets_for(self.runbook, incident, list(level.notify)),
            reason="manual",
            step=f"{incident.escalation_level}.{incident.revision + 1}",
            note=reason,
            actor=actor.user_id,
        )
        self._changed(session, incident, effects)
        return Outcome(incident_id, f"{incident.key} escalated")

    def resolve(self, session: Session, incident_id: int, actor: Actor, *, note: str = "") -> Outcome:
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if not note.strip():
            raise IncidentError(
                f"resolving {incident.key} needs the root cause: /triage resolve {incident.key} <root cause>"
            )
        if incident.failure_class == FailureClass.FLAKE_CONCURRENCY.value and not incident.bead_id:
            raise IncidentError(
                f"{incident.key} is a flake and has no bead yet: flakes are fixed deterministically, "
                f"so file the bead first (/triage bead {incident.key})"
            )
        effects = Effects(now=self.clock.now())
        incident.status = "resolved"
        incident.milestone = "resolved"
        incident.open_key = None
        incident.resolved_at = utc(effects.now)
        incident.resolution_note = note.strip()
        cancel_timer(session, subject=f"incident:{incident_id}", kind="classify")
        cancel_timer(session, subject=f"incident:{incident_id}", kind="reminder")
        effects.record(
            "resolved",
            f"Resolved by {actor.user_id}: {note.strip()}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"note": note.strip()},
        )
        if incident.bead_id or incident.bead_state == "pending":
            effects.enqueue(
                "bead_close",
                f"bead-close:{incident_id}:{incident.revision + 1}",
                incident_id=incident_id,
                lane="beads",
            )
        effects.enqueue(
            "pagerduty_follow",
            f"pd-resolve:{incident_id}:{incident.revision + 1}",
            {"action": "resolve"},
            incident_id=incident_id,
            lane="pagerduty",
        )
        self._changed(
            session,
            incident,
            effects,
            thread={"template": "resolved", "actor": actor.user_id, "note": note.strip()},
        )
        return Outcome(incident_id, f"{incident.key} resolved")

    def set_milestone(
        self, session: Session, incident_id: int, actor: Actor, *, milestone: str, note: str = ""
    ) -> Outcome:
        value = milestone.strip().lower().replace("-", "_").replace(" ", "_")
        if value not in MILESTONES:
            raise IncidentError(f"unknown milestone '{milestone}'; use one of: {', '.join(MILESTONES)}")
        if value == "resolved":
            return self.resolve(session, incident_id, actor, note=note)
        incident = self._load(session, incident_id)
        self._require_open(incident)
        if value == "triage_complete" and not incident.failure_class:
            raise IncidentError(f"classify {incident.key} before marking triage complete")
        effects = Effects(now=self.clock.now())
        previous = incident.milestone
        incident.milestone = value
        effects.record(
            "milestone",
            f"Milestone {value} by {actor.user_id}" + (f": {note}" if note else ""),
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
            data={"milestone": value, "previous": previous, "note": note},
        )
        self._changed(
            session,
            incident,
            effects,
            thread={"template": "milestone", "actor": actor.user_id, "milestone": value, "note": note},
        )
        return Outcome(incident_id, f"{incident.key}: {value.replace('_', ' ')}")

    def request_bead(
        self,
        session: Session,
        incident_id: int,
        actor: Actor,
        *,
        expected: str | None = None,
        observed: str | None = None,
    ) -> Outcome:
        """Queue the defect bead; the tracker is called after commit, so a slow or broken bd never
        blocks triage (the card shows "bead pending" until it is filed)."""
        incident = self._load(session, incident_id)
        if incident.bead_id:
            return Outcome(incident_id, f"{incident.key} already has bead {incident.bead_id}", changed=False)
        if incident.bead_state == "pending":
            return Outcome(incident_id, f"the bead for {incident.key} is already being filed", changed=False)
        effects = Effects(now=self.clock.now())
        incident.bead_state = "pending"
        effects.record(
            "bead_requested",
            f"Bead requested by {actor.user_id}",
            incident_id=incident_id,
            actor=actor.user_id,
            source=actor.source,
        )
        effects.enqueue(
            "bead_file",
            f"bead:{incident_id}:{incident.revision + 1}",  # a new request after a failed filing is a new row
            {"reason": "requested", "actor": actor.user_id, "expected": expected, "observed": observed},
            incident_id=incident_id,
            lane="beads",
        )
        self._changed(session, incident, effects)
        return Outcome(incident_id, f"filing a bead for {incident.key}")
