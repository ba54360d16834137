"""The incident core: the one place that changes an incident on a person's (or an integration's)
request. ``IncidentCore.apply`` routes every kind of change; each transition validates first (so a
refused change leaves nothing behind), then changes the row, writes the timeline row and queues
the effects (card redraw, thread post, pages, bead) as outbox rows in the caller's transaction.

What happens without a person (a failure opening or recurring, a timer firing, a tracker
answering) lives beside it: ``opening``, ``timers``, ``beads``; all of them end in
``state.changed``, the one place a change becomes visible.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from slackbot.clock import Clock
from slackbot.config import ChoiceError, Playbook, Playbooks
from slackbot.config.policy import ROOT_CAUSE, EscalationLevel, Milestone
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.changes import (
    Acknowledge,
    Actor,
    Assign,
    Change,
    Classify,
    Escalate,
    IncidentError,
    Outcome,
    RecordStep,
    RequestBead,
    RequestPostmortem,
    Resolve,
    SetFlag,
    SetMilestone,
    SetSeverity,
)
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.states import ClassSource, IncidentStatus, SeveritySource, TimerKind, timer_subject
from slackbot.incidents import beads, checklists
from slackbot.incidents.effects import Effects, cancel_timer, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import changed, load_for_change, require_open


class IncidentCore:
    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock

    def playbook_of(self, incident: Incident) -> Playbook:
        return self.playbooks.get(incident.playbook)

    # -- the door every change goes through --------------------------------------------------

    def run(self, engine: Engine, incident_id: int, actor: Actor, change: Change) -> Outcome:
        """Apply one change in its own transaction (what handlers call)."""
        with session_scope(engine) as session:
            return self.apply(session, incident_id, actor, change)

    def apply(self, session: Session, incident_id: int, actor: Actor, change: Change) -> Outcome:
        incident = load_for_change(session, incident_id)
        playbook = self.playbook_of(incident)
        effects = Effects(now=self.clock.now())
        try:
            outcome = self._route(session, playbook, incident, actor, change, effects)
        except ChoiceError as exc:
            raise IncidentError(f"{incident.key} ({playbook.title}): {exc}") from None
        effects.flush(session)
        return outcome

    def _route(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, change: Change, effects: Effects
    ) -> Outcome:
        match change:
            case Acknowledge():
                return self._acknowledge(session, playbook, incident, actor, effects)
            case Assign(user_id=user_id):
                return self._assign(session, playbook, incident, actor, effects, user_id)
            case Classify(choice=choice):
                return self._classify(session, playbook, incident, actor, effects, choice)
            case SetSeverity(choice=choice):
                return self._severity(session, playbook, incident, actor, effects, choice)
            case Escalate(reason=reason):
                return self._escalate(session, playbook, incident, actor, effects, reason)
            case SetFlag(choice=choice, on=on):
                return self._flag(session, playbook, incident, actor, effects, choice, on)
            case SetMilestone(choice=choice, note=note, fields=fields):
                milestone = playbook.parse_milestone(choice)
                if milestone.resolves:
                    return self._resolve(session, playbook, incident, actor, effects, note, fields)
                return self._milestone(session, playbook, incident, actor, effects, milestone, note, fields)
            case Resolve(root_cause=root_cause, fields=fields):
                return self._resolve(session, playbook, incident, actor, effects, root_cause, fields)
            case RequestBead(expected=expected, observed=observed):
                return beads.request(session, playbook, incident, actor, effects, expected=expected, observed=observed)
            case RecordStep(ref=ref):
                return checklists.record_step(session, playbook, incident, ref, actor, effects)
            case RequestPostmortem():
                return self._postmortem(session, incident, actor, effects)
        raise AssertionError(f"unhandled change {change!r}")

    # -- ownership ------------------------------------------------------------------------------

    def _acknowledge(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, effects: Effects
    ) -> Outcome:
        require_open(incident)
        iid = incident.id or 0
        if incident.assignee == actor.user_id:
            return Outcome(iid, f"you already own {incident.key}", changed=False)
        incident.assignee = actor.user_id
        if incident.acknowledged_at is None:
            incident.acknowledged_at = utc(effects.now)
        effects.record(
            Event.ACKNOWLEDGED,
            f"Acknowledged by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
        )
        effects.enqueue(
            EffectKind.PAGERDUTY_FOLLOW,
            Key.pagerduty_acknowledge(iid),
            {"action": "acknowledge"},
            incident_id=iid,
            lane=Lane.PAGERDUTY,
        )
        changed(session, playbook, incident, effects, thread={"template": "acknowledged", "actor": actor.user_id})
        return Outcome(iid, f"you now own {incident.key}")

    def _assign(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, effects: Effects, user_id: str
    ) -> Outcome:
        require_open(incident)
        iid = incident.id or 0
        if incident.assignee == user_id:
            return Outcome(iid, f"{incident.key} is already assigned to <@{user_id}>", changed=False)
        previous = incident.assignee
        incident.assignee = user_id
        if incident.acknowledged_at is None:
            incident.acknowledged_at = utc(effects.now)
        effects.record(
            Event.ASSIGNED,
            f"Assigned to {user_id} by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"assignee": user_id, "previous": previous},
        )
        thread = {"template": "assigned", "actor": actor.user_id, "assignee": user_id}
        changed(session, playbook, incident, effects, thread=thread)
        return Outcome(iid, f"{incident.key} assigned to <@{user_id}>")

    # -- cause and severity ---------------------------------------------------------------------

    def _classify(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, effects: Effects, choice: str
    ) -> Outcome:
        chosen = playbook.parse_class(choice)
        require_open(incident)
        iid = incident.id or 0
        route = playbook.classes[chosen]
        if incident.failure_class == chosen:
            return Outcome(iid, f"{incident.key} is already classified {route.label}", changed=False)
        previous = incident.failure_class
        incident.failure_class = chosen
        incident.class_source = ClassSource.HUMAN
        if incident.classified_at is None:
            incident.classified_at = utc(effects.now)
        # The timed rule stops at the first classification; reclassifying does not restart it.
        cancel_timer(session, subject=timer_subject(iid), kind=TimerKind.CLASSIFY)
        verb = "Reclassified" if previous else "Classified"
        effects.record(
            Event.RECLASSIFIED if previous else Event.CLASSIFIED,
            f"{verb} {chosen}" + (f" (was {previous})" if previous else "") + f" by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"class": chosen, "previous": previous},
        )
        effects.record(
            Event.ROUTED,
            f"Owner is now {route.owner.describe()} (routing for {chosen})",
            incident_id=iid,
            source="rule",
            data={"class": chosen, "owner": route.owner.describe()},
        )
        if route.files_bead:
            beads.auto_file(incident, effects, chosen)
        if route.default_severity and incident.severity_source in (None, SeveritySource.DEFAULT):
            self._apply_severity(playbook, incident, effects, route.default_severity, SeveritySource.CLASS)
        thread = {"template": "classified", "class": chosen, "previous": previous, "actor": actor.user_id}
        changed(session, playbook, incident, effects, thread=thread)
        # The interactive checklist (Done / Failed / Skip per step) follows the classified post.
        checklists.enqueue_checklist(effects, incident, failure_class=chosen, reclassified=previous is not None)
        return Outcome(iid, f"{incident.key} {verb.lower()} {route.label}")

    def _severity(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, effects: Effects, choice: str
    ) -> Outcome:
        chosen = playbook.parse_severity(choice)
        require_open(incident)
        iid = incident.id or 0
        if incident.severity == chosen:
            return Outcome(iid, f"{incident.key} is already {chosen}", changed=False)
        previous = incident.severity
        effects.record(
            Event.SEVERITY,
            f"Severity {previous} → {chosen} by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"severity": chosen, "previous": previous},
        )
        self._apply_severity(playbook, incident, effects, chosen, SeveritySource.HUMAN)
        thread = {"template": "severity", "actor": actor.user_id, "severity": chosen, "previous": previous}
        changed(session, playbook, incident, effects, thread=thread)
        return Outcome(iid, f"{incident.key} is now {chosen}")

    @staticmethod
    def _apply_severity(
        playbook: Playbook, incident: Incident, effects: Effects, severity: str, source: SeveritySource
    ) -> None:
        """Set it and do what the playbook says it means: page (seed 003: SEV-1 pages the release
        maintainer at once) and file the bead."""
        incident.severity = severity
        incident.severity_source = source
        rule = playbook.severity_rule(severity)
        if rule.pages:
            targets = targets_for(playbook, incident, list(rule.pages))
            enqueue_page(effects, incident, targets, reason="severity", step=severity)
        if rule.file_bead:
            beads.auto_file(incident, effects, "severity")

    def _flag(
        self,
        session: Session,
        playbook: Playbook,
        incident: Incident,
        actor: Actor,
        effects: Effects,
        choice: str,
        on: bool,
    ) -> Outcome:
        key = playbook.parse_flag(choice)
        require_open(incident)
        iid = incident.id or 0
        rule = playbook.flags[key]
        if (key in incident.flags) == on:
            return Outcome(iid, f"{incident.key} is {'already' if on else 'not'} flagged {rule.label}", changed=False)
        incident.flags = [*incident.flags, key] if on else [f for f in incident.flags if f != key]
        effects.record(
            Event.FLAG,
            f"{'Flagged' if on else 'Unflagged'} {rule.label} by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"flag": key, "on": on},
        )
        if on and rule.pages:
            # Seed 003: "escalate to release maintainer when … rollback is required".
            incident.escalation_level += 1
            targets = targets_for(playbook, incident, list(rule.pages))
            enqueue_page(
                effects, incident, targets, reason=f"flag:{key}", step=str(incident.revision + 1), actor=actor.user_id
            )
        thread = {"template": "flag", "actor": actor.user_id, "flag": key, "on": on}
        changed(session, playbook, incident, effects, thread=thread)
        return Outcome(iid, f"{incident.key} {'flagged' if on else 'unflagged'} {rule.label}")

    # -- escalation -------------------------------------------------------------------------------

    @staticmethod
    def escalation_levels(playbook: Playbook) -> list[EscalationLevel]:
        """The playbook's levels; one without a timed rule escalates to the escalation target."""
        escalation = playbook.policy.escalation
        return list(escalation.levels) if escalation else [EscalationLevel(notify=["escalation"])]

    def _escalate(
        self, session: Session, playbook: Playbook, incident: Incident, actor: Actor, effects: Effects, reason: str
    ) -> Outcome:
        require_open(incident)
        iid = incident.id or 0
        effects.record(
            Event.ESCALATED,
            f"Escalated by {actor.user_id}" + (f": {reason}" if reason else ""),
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"reason": reason},
        )
        levels = self.escalation_levels(playbook)
        level = levels[min(incident.escalation_level, len(levels) - 1)]
        incident.escalation_level += 1
        enqueue_page(
            effects,
            incident,
            targets_for(playbook, incident, list(level.notify)),
            reason="manual",
            step=f"{incident.escalation_level}.{incident.revision + 1}",
            note=reason,
            actor=actor.user_id,
        )
        changed(session, playbook, incident, effects)
        return Outcome(iid, f"{incident.key} escalated")

    # -- status -----------------------------------------------------------------------------------

    @staticmethod
    def _fields(milestone: Milestone, note: str, given: Mapping[str, str], incident: Incident) -> dict[str, str]:
        """The record fields a milestone asks for: named ones as given, and the note for the first
        one still missing. A required field nobody gave is refused with how to give it."""
        values = {k: v.strip() for k, v in given.items() if v and v.strip()}
        asked = [f.key for f in milestone.asks]
        unknown = sorted(set(values) - set(asked))
        if unknown:
            raise IncidentError(
                f"{milestone.label} asks for {', '.join(asked) or 'nothing'}; not for {', '.join(unknown)}"
            )
        text = note.strip()
        for spec in milestone.asks:
            if spec.key not in values and text:
                values[spec.key] = text
                text = ""
        missing = [f for f in milestone.asks if not f.optional and f.key not in values]
        if missing:
            # The note fills the first field the milestone asks for; the others are named.
            positional = milestone.asks[0]
            named = "".join(f' {f.key}="<{f.label.lower()}>"' for f in missing if f.key != positional.key)
            raise IncidentError(
                f"{milestone.label} needs the {', '.join(f.label.lower() for f in missing)}: "
                f"/triage status {incident.key} {milestone.key}{named} <{positional.label.lower()}>"
            )
        return values

    def _milestone(
        self,
        session: Session,
        playbook: Playbook,
        incident: Incident,
        actor: Actor,
        effects: Effects,
        milestone: Milestone,
        note: str,
        given: Mapping[str, str],
    ) -> Outcome:
        require_open(incident)
        iid = incident.id or 0
        if milestone.requires_class and not incident.failure_class:
            raise IncidentError(f"classify {incident.key} before marking {milestone.label.lower()}")
        fields = self._fields(milestone, note, given, incident)
        previous = incident.milestone
        incident.milestone = milestone.key
        incident.record = {**incident.record, **fields}
        effects.record(
            Event.MILESTONE,
            f"Milestone {milestone.key} by {actor.user_id}" + (f": {note}" if note else ""),
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"milestone": milestone.key, "previous": previous, "note": note, "fields": fields},
        )
        thread = {
            "template": "milestone",
            "actor": actor.user_id,
            "milestone": milestone.key,
            "note": note,
            "fields": fields,
        }
        changed(session, playbook, incident, effects, thread=thread)
        return Outcome(iid, f"{incident.key}: {milestone.label}")

    def _resolve(
        self,
        session: Session,
        playbook: Playbook,
        incident: Incident,
        actor: Actor,
        effects: Effects,
        root_cause: str,
        given: Mapping[str, str],
    ) -> Outcome:
        require_open(incident)
        iid = incident.id or 0
        milestone = playbook.policy.resolving
        if not root_cause.strip() and not given.get(ROOT_CAUSE):
            raise IncidentError(
                f"resolving {incident.key} needs the root cause: /triage resolve {incident.key} <root cause>"
            )
        if milestone.requires_class and not incident.failure_class:
            raise IncidentError(f"classify {incident.key} before {milestone.label.lower()}")
        route = playbook.class_route(incident.failure_class)
        if route is not None and route.bead_before_resolve and not incident.bead_id:
            raise IncidentError(
                f"{incident.key} is {route.label} and has no bead yet: the playbook needs the defect filed "
                f"before it is resolved (/triage bead {incident.key})"
            )
        fields = self._fields(milestone, "", {ROOT_CAUSE: root_cause, **given}, incident)
        note = fields[ROOT_CAUSE]
        incident.status = IncidentStatus.RESOLVED
        incident.milestone = milestone.key
        incident.open_key = None
        incident.resolved_at = utc(effects.now)
        incident.resolution_note = note
        incident.record = {**incident.record, **fields}
        cancel_timer(session, subject=timer_subject(iid), kind=TimerKind.CLASSIFY)
        cancel_timer(session, subject=timer_subject(iid), kind=TimerKind.REMINDER)
        effects.record(
            Event.RESOLVED,
            f"Resolved by {actor.user_id}: {note}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"note": note, "fields": fields},
        )
        beads.close_with(incident, effects)
        effects.enqueue(
            EffectKind.PAGERDUTY_FOLLOW,
            Key.pagerduty_resolve(iid, incident.revision + 1),
            {"action": "resolve"},
            incident_id=iid,
            lane=Lane.PAGERDUTY,
        )
        thread = {"template": "resolved", "actor": actor.user_id, "note": note, "fields": fields}
        changed(session, playbook, incident, effects, thread=thread)
        return Outcome(iid, f"{incident.key} resolved")

    # -- documents --------------------------------------------------------------------------------

    @staticmethod
    def _postmortem(session: Session, incident: Incident, actor: Actor, effects: Effects) -> Outcome:
        """Queue the postmortem upload into the thread, and audit who asked. Allowed while open
        (the document then says "draft"): a lead often wants the timeline before the fix lands."""
        iid = incident.id or 0
        asked = session.exec(
            select(func.count())
            .select_from(TimelineEvent)
            .where(TimelineEvent.incident_id == iid, TimelineEvent.kind == Event.POSTMORTEM_REQUESTED.value)
        ).one()
        draft = incident.status != IncidentStatus.RESOLVED
        effects.record(
            Event.POSTMORTEM_REQUESTED,
            f"Postmortem{' draft' if draft else ''} requested by {actor.user_id}",
            incident_id=iid,
            actor=actor.user_id,
            source=actor.source,
            data={"draft": draft},
        )
        effects.enqueue(
            EffectKind.POSTMORTEM,
            Key.postmortem(iid, int(asked) + 1),
            {"actor": actor.user_id},
            incident_id=iid,
            lane=incident.channel,
        )
        what = "a draft postmortem (the incident is still open)" if draft else "the postmortem"
        return Outcome(iid, f"posting {what} of {incident.key} in its thread", changed=True)
