"""The incident core: the one place that changes an incident on a person's (or an integration's)
request. ``IncidentCore.apply`` routes every kind of change; each transition validates first (so a
refused change leaves nothing behind), then changes the row, writes the timeline row and queues
the effects (card redraw, thread post, pages, bead) as outbox rows in the caller's transaction.

What happens without a person (a failure opening or recurring, a timer firing, a tracker
answering) lives beside it: ``opening``, ``timers``, ``beads``; all of them end in
``state.changed``, the one place a change becomes visible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from slackbot.clock import Clock
from slackbot.config import ChoiceError, Playbook, Playbooks
from slackbot.config.policy import ROOT_CAUSE, EscalationLevel, Milestone
from slackbot.db.engine import session_scope
from slackbot.db.models import Run, RunResults, TimelineEvent
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
    ShowDetails,
)
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.states import ClassSource, IncidentStatus, SeveritySource, TimerKind, timer_subject
from slackbot.incidents import beads, checklists, coalescing, leases, suggestions, validation
from slackbot.incidents.effects import Effects, cancel_timer, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import Turn, changed, load_for_change, require_open


class IncidentCore:
    def __init__(self, playbooks: Playbooks, clock: Clock, *, coalesce: timedelta = coalescing.DEFAULT_WINDOW) -> None:
        self.playbooks = playbooks
        self.clock = clock
        # How long a classification's thread post and checklist wait for a correction (coalescing.py)
        self.coalesce = coalesce

    # -- the door every change goes through --------------------------------------------------

    def run(self, engine: Engine, incident_id: int, actor: Actor, change: Change) -> Outcome:
        """Apply one change in its own transaction (what handlers call)."""
        with session_scope(engine) as session:
            return self.apply(session, incident_id, actor, change)

    def apply(self, session: Session, incident_id: int, actor: Actor, change: Change) -> Outcome:
        incident = load_for_change(session, incident_id)
        playbook = self.playbooks.get(incident.playbook)
        turn = Turn(session, playbook, incident, actor, Effects(now=self.clock.now()))
        try:
            outcome = self._route(turn, change)
        except ChoiceError as exc:
            raise IncidentError(f"{incident.key} ({playbook.title}): {exc}") from None
        turn.effects.flush(session)
        return outcome

    def witness(self, session: Session, run: Run, outcomes: bytes) -> None:
        """Validation by evidence: one report's outcomes (``history.outcomes``), seen by the
        incidents awaiting green runs on its branch. Called by an ingest in its transaction."""
        for incident_id, flags in validation.awaiting(session, run, outcomes):
            incident = load_for_change(session, incident_id)
            playbook = self.playbooks.get(incident.playbook)
            turn = Turn(session, playbook, incident, validation.ACTOR, Effects(now=self.clock.now()))
            reached = validation.witness(turn, run, flags)
            if reached is not None:
                # A milestone refused (its playbook wants a class first) is left to a person.
                with contextlib.suppress(IncidentError):
                    _milestone(turn, reached.milestone, "", reached.fields)
            turn.effects.flush(session)

    def resuggest(self, session: Session, run: Run, outcomes: RunResults) -> None:
        """Suggestions worked out again by a report's passes (``suggestions``): the rerun that
        passed after the failure opened its incident. Called by an ingest in its transaction."""
        effects = Effects(now=self.clock.now())
        suggestions.resuggest(session, self.playbooks, run, outcomes, effects)
        effects.flush(session)

    def _route(self, turn: Turn, change: Change) -> Outcome:
        match change:
            case Acknowledge():
                return _acknowledge(turn)
            case Assign(user_id=user_id):
                return _assign(turn, user_id)
            case Classify(choice=choice):
                return _classify(turn, choice, self.coalesce)
            case SetSeverity(choice=choice):
                return _severity(turn, choice)
            case Escalate(reason=reason, seen_level=seen_level):
                return _escalate(turn, reason, seen_level)
            case SetFlag(choice=choice, on=on):
                return _flag(turn, choice, on)
            case SetMilestone(choice=choice, note=note, fields=fields):
                milestone = turn.playbook.parse_milestone(choice)
                if milestone.resolves:
                    return _resolve(turn, note, fields)
                return _milestone(turn, milestone, note, fields)
            case Resolve(root_cause=root_cause, fields=fields):
                return _resolve(turn, root_cause, fields)
            case RequestBead(expected=expected, observed=observed):
                return beads.request(turn, expected=expected, observed=observed)
            case RecordStep(ref=ref):
                return checklists.record_step(turn, ref)
            case RequestPostmortem():
                return _postmortem(turn)
            case ShowDetails(on=on):
                return _details(turn, on)
        raise AssertionError(f"unhandled change {change!r}")


def escalation_levels(playbook: Playbook) -> list[EscalationLevel]:
    """The playbook's levels; one without a timed rule escalates to the escalation target."""
    escalation = playbook.policy.escalation
    return list(escalation.levels) if escalation else [EscalationLevel(notify=["escalation"])]


# -- ownership --------------------------------------------------------------------------------------


def _acknowledge(turn: Turn) -> Outcome:
    incident, actor = turn.incident, turn.actor
    require_open(incident)
    if incident.assignee == actor.user_id:
        return Outcome(turn.id, f"you already own {turn.key}", changed=False)
    incident.assignee = actor.user_id
    if incident.acknowledged_at is None:
        incident.acknowledged_at = utc(turn.effects.now)
    turn.record(Event.ACKNOWLEDGED, f"Acknowledged by {actor.user_id}")
    turn.effects.enqueue(
        EffectKind.PAGERDUTY_FOLLOW,
        Key.pagerduty_acknowledge(turn.id),
        {"action": "acknowledge"},
        incident_id=turn.id,
        lane=Lane.PAGERDUTY,
    )
    turn.changed("acknowledged")
    return Outcome(turn.id, f"you now own {turn.key}")


def _assign(turn: Turn, user_id: str) -> Outcome:
    incident = turn.incident
    require_open(incident)
    if incident.assignee == user_id:
        return Outcome(turn.id, f"{turn.key} is already assigned to <@{user_id}>", changed=False)
    previous = incident.assignee
    incident.assignee = user_id
    if incident.acknowledged_at is None:
        incident.acknowledged_at = utc(turn.effects.now)
    turn.record(Event.ASSIGNED, f"Assigned to {user_id} by {turn.actor.user_id}", assignee=user_id, previous=previous)
    turn.changed("assigned", assignee=user_id)
    return Outcome(turn.id, f"{turn.key} assigned to <@{user_id}>")


# -- cause and severity -----------------------------------------------------------------------------


def _classify(turn: Turn, choice: str, window: timedelta) -> Outcome:
    playbook, incident = turn.playbook, turn.incident
    chosen = playbook.parse_class(choice)
    require_open(incident)
    route = playbook.classes[chosen]
    if incident.failure_class == chosen:
        return Outcome(turn.id, f"{turn.key} is already classified {route.label}", changed=False)
    previous = incident.failure_class
    incident.failure_class = chosen
    incident.class_source = ClassSource.HUMAN
    if incident.classified_at is None:
        incident.classified_at = utc(turn.effects.now)
    # The timed rule stops at the first classification; reclassifying does not restart it.
    cancel_timer(turn.session, subject=timer_subject(turn.id), kind=TimerKind.CLASSIFY)
    verb = "Reclassified" if previous else "Classified"
    turn.record(
        Event.RECLASSIFIED if previous else Event.CLASSIFIED,
        f"{verb} {chosen}" + (f" (was {previous})" if previous else "") + f" by {turn.actor.user_id}",
        **{"class": chosen, "previous": previous},
    )
    turn.effects.record(
        Event.ROUTED,
        f"Owner is now {route.owner.describe()} (routing for {chosen})",
        incident_id=turn.id,
        source="rule",
        data={"class": chosen, "owner": route.owner.describe()},
    )
    leases.follow(turn, chosen)
    if route.files_bead:
        beads.auto_file(incident, turn.effects, chosen)
    if route.default_severity and incident.severity_source in (None, SeveritySource.DEFAULT):
        _apply_severity(turn, route.default_severity, SeveritySource.CLASS)
    # A classification replaced before its post went out is folded into this one's post (which
    # names the whole sequence), and its checklist is dropped; both wait ``window`` for the next.
    now = turn.effects.now
    folded = coalescing.fold_classifications(turn.session, turn.id, now)
    sequence = coalescing.compact([*folded.sequence, {"class": chosen, "actor": turn.actor.user_id}])
    since = folded.since or now
    due = coalescing.due_at(now, window, folded.since)
    post: dict[str, Any] = {"class": chosen, "previous": folded.previous if folded.sequence else previous}
    if len(sequence) > 1:
        post["sequence"] = sequence
    turn.changed("classified", not_before=due, since=since.isoformat(), **post)
    # The interactive checklist (Done / Failed / Skip per step) follows the classified post. When
    # the checklist it replaces was never posted, there is nothing in the thread to strike out.
    checklists.enqueue_checklist(
        turn.effects,
        incident,
        failure_class=chosen,
        reclassified=previous is not None and not folded.checklists,
        not_before=due,
    )
    return Outcome(turn.id, f"{turn.key} {verb.lower()} {route.label}")


def _severity(turn: Turn, choice: str) -> Outcome:
    chosen = turn.playbook.parse_severity(choice)
    require_open(turn.incident)
    if turn.incident.severity == chosen:
        return Outcome(turn.id, f"{turn.key} is already {chosen}", changed=False)
    previous = turn.incident.severity
    turn.record(
        Event.SEVERITY, f"Severity {previous} → {chosen} by {turn.actor.user_id}", severity=chosen, previous=previous
    )
    _apply_severity(turn, chosen, SeveritySource.HUMAN)
    turn.changed("severity", severity=chosen, previous=previous)
    return Outcome(turn.id, f"{turn.key} is now {chosen}")


def _apply_severity(turn: Turn, severity: str, source: SeveritySource) -> None:
    """Set it and do what the playbook says it means: page (seed 003: SEV-1 pages the release
    maintainer at once) and file the bead."""
    incident = turn.incident
    incident.severity = severity
    incident.severity_source = source
    rule = turn.playbook.severity_rule(severity)
    if rule.pages:
        targets = targets_for(turn.playbook, incident, list(rule.pages))
        enqueue_page(turn.effects, incident, targets, reason="severity", step=severity)
    if rule.file_bead:
        beads.auto_file(incident, turn.effects, "severity")


def _flag(turn: Turn, choice: str, on: bool) -> Outcome:
    incident = turn.incident
    key = turn.playbook.parse_flag(choice)
    require_open(incident)
    rule = turn.playbook.flags[key]
    if (key in incident.flags) == on:
        return Outcome(turn.id, f"{turn.key} is {'already' if on else 'not'} flagged {rule.label}", changed=False)
    incident.flags = [*incident.flags, key] if on else [f for f in incident.flags if f != key]
    turn.record(Event.FLAG, f"{'Flagged' if on else 'Unflagged'} {rule.label} by {turn.actor.user_id}", flag=key, on=on)
    if on and rule.pages:
        # Seed 003: "escalate to release maintainer when … rollback is required".
        incident.escalation_level += 1
        targets = targets_for(turn.playbook, incident, list(rule.pages))
        step = str(incident.revision + 1)
        enqueue_page(turn.effects, incident, targets, reason=f"flag:{key}", step=step, actor=turn.actor.user_id)
    turn.changed("flag", flag=key, on=on)
    return Outcome(turn.id, f"{turn.key} {'flagged' if on else 'unflagged'} {rule.label}")


# -- escalation -------------------------------------------------------------------------------------


def _escalate(turn: Turn, reason: str, seen_level: int | None = None) -> Outcome:
    incident = turn.incident
    require_open(incident)
    if seen_level is not None and incident.escalation_level != seen_level:
        # Under the incident's lock: of one click delivered twice, the second finds the first's level.
        return Outcome(
            turn.id,
            f"{turn.key} was escalated meanwhile (it is at level {incident.escalation_level}); nothing was "
            f"paged again. To escalate further, use the redrawn card or `/triage escalate {turn.key}`.",
            changed=False,
        )
    turn.record(
        Event.ESCALATED, f"Escalated by {turn.actor.user_id}" + (f": {reason}" if reason else ""), reason=reason
    )
    levels = escalation_levels(turn.playbook)
    level = levels[min(incident.escalation_level, len(levels) - 1)]
    incident.escalation_level += 1
    enqueue_page(
        turn.effects,
        incident,
        targets_for(turn.playbook, incident, list(level.notify)),
        reason="manual",
        step=f"{incident.escalation_level}.{incident.revision + 1}",
        note=reason,
        actor=turn.actor.user_id,
    )
    turn.changed()
    return Outcome(turn.id, f"{turn.key} escalated")


# -- status -----------------------------------------------------------------------------------------


def _fields(milestone: Milestone, note: str, given: Mapping[str, str], key: str) -> dict[str, str]:
    """The record fields a milestone asks for: named ones as given, and the note for the first one
    still missing. A required field nobody gave is refused with how to give it."""
    values = {k: v.strip() for k, v in given.items() if v and v.strip()}
    asked = [f.key for f in milestone.asks]
    unknown = sorted(set(values) - set(asked))
    if unknown:
        raise IncidentError(f"{milestone.label} asks for {', '.join(asked) or 'nothing'}; not for {', '.join(unknown)}")
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
            f"/triage status {key} {milestone.key}{named} <{positional.label.lower()}>"
        )
    return values


def _milestone(turn: Turn, milestone: Milestone, note: str, given: Mapping[str, str]) -> Outcome:
    incident = turn.incident
    require_open(incident)
    if milestone.requires_class and not incident.failure_class:
        raise IncidentError(f"classify {turn.key} before marking {milestone.label.lower()}")
    fields = _fields(milestone, note, given, turn.key)
    previous = incident.milestone
    incident.milestone = milestone.key
    incident.record = {**incident.record, **fields}
    validation.follow(turn, milestone.key)
    turn.record(
        Event.MILESTONE,
        f"Milestone {milestone.key} by {turn.actor.user_id}" + (f": {note}" if note else ""),
        milestone=milestone.key,
        previous=previous,
        note=note,
        fields=fields,
    )
    if fields:  # the record grows: the defect filed earlier hears about it
        lines = "; ".join(f"{f.label}: {fields[f.key]}" for f in milestone.asks if f.key in fields)
        beads.comment(incident, turn.effects, f"{milestone.label} — {lines}", key=f"milestone:{milestone.key}")
    turn.changed("milestone", milestone=milestone.key, note=note, fields=fields)
    return Outcome(turn.id, f"{turn.key}: {milestone.label}")


def _resolve(turn: Turn, root_cause: str, given: Mapping[str, str]) -> Outcome:
    incident = turn.incident
    require_open(incident)
    milestone = turn.playbook.policy.resolving
    if not root_cause.strip() and not given.get(ROOT_CAUSE):
        raise IncidentError(f"resolving {turn.key} needs the root cause: /triage resolve {turn.key} <root cause>")
    if milestone.requires_class and not incident.failure_class:
        raise IncidentError(f"classify {turn.key} before {milestone.label.lower()}")
    route = turn.playbook.class_route(incident.failure_class)
    if route is not None and route.bead_before_resolve and not incident.bead_id:
        raise IncidentError(
            f"{turn.key} is {route.label} and has no bead yet: the playbook needs the defect filed "
            f"before it is resolved (/triage bead {turn.key})"
        )
    fields = _fields(milestone, "", {ROOT_CAUSE: root_cause, **given}, turn.key)
    note = fields[ROOT_CAUSE]
    incident.status = IncidentStatus.RESOLVED
    incident.milestone = milestone.key
    incident.open_key = None
    incident.resolved_at = utc(turn.effects.now)
    incident.resolution_note = note
    incident.record = {**incident.record, **fields}
    validation.follow(turn, milestone.key)
    cancel_timer(turn.session, subject=timer_subject(turn.id), kind=TimerKind.CLASSIFY)
    cancel_timer(turn.session, subject=timer_subject(turn.id), kind=TimerKind.REMINDER)
    leases.end(turn.session, turn.id)
    turn.record(Event.RESOLVED, f"Resolved by {turn.actor.user_id}: {note}", note=note, fields=fields)
    beads.close_with(incident, turn.effects)
    turn.effects.enqueue(
        EffectKind.PAGERDUTY_FOLLOW,
        Key.pagerduty_resolve(turn.id, incident.revision + 1),
        {"action": "resolve"},
        incident_id=turn.id,
        lane=Lane.PAGERDUTY,
    )
    turn.changed("resolved", note=note, fields=fields)
    return Outcome(turn.id, f"{turn.key} resolved")


# -- documents --------------------------------------------------------------------------------------


def _postmortem(turn: Turn) -> Outcome:
    """Queue the postmortem upload into the thread, and audit who asked. Allowed while open (the
    document then says "draft"): a lead often wants the timeline before the fix lands."""
    asked = turn.session.exec(
        select(func.count())
        .select_from(TimelineEvent)
        .where(TimelineEvent.incident_id == turn.id, TimelineEvent.kind == Event.POSTMORTEM_REQUESTED.value)
    ).one()
    draft = turn.incident.status != IncidentStatus.RESOLVED
    turn.record(
        Event.POSTMORTEM_REQUESTED,
        f"Postmortem{' draft' if draft else ''} requested by {turn.actor.user_id}",
        draft=draft,
    )
    turn.effects.enqueue(
        EffectKind.POSTMORTEM,
        Key.postmortem(turn.id, int(asked) + 1),
        {"actor": turn.actor.user_id},
        incident_id=turn.id,
        lane=turn.incident.channel,
    )
    what = "a draft postmortem (the incident is still open)" if draft else "the postmortem"
    return Outcome(turn.id, f"posting {what} of {turn.key} in its thread")


# -- the card ---------------------------------------------------------------------------------------


def _details(turn: Turn, on: bool) -> Outcome:
    """Expand or collapse the card's details, for everyone who sees the card (it is one message).
    A way of looking, not an event: no timeline row and no thread post, and the quiet-thread
    reminder stays where it was. Allowed on a resolved incident too: that is when people read it."""
    incident = turn.incident
    if incident.card_details == on:
        return Outcome(turn.id, f"{turn.key}'s details are already {'shown' if on else 'hidden'}", changed=False)
    incident.card_details = on
    changed(turn.session, turn.playbook, incident, turn.effects, remind=False)
    return Outcome(turn.id, f"{turn.key}'s details {'shown' if on else 'hidden'}")
