"""Flakes with a lease (issue 16): a flake's fix has an owner and a due date, from the playbook.

Seed 001 fixes flakes deterministically, never "rerun until green"; the lease makes that a
commitment someone holds. ``policy.flake.lease`` says who (a role of the flake class's routing,
the class owner by default), how long and whom to page when the time is up.

- Granted when an incident is first classified into a class whose ``signals`` include ``flake``:
  the lease is written on the incident (``Incident.lease``), the timeline says who holds it until
  when, and the bead carries the owner and the due date (filed now, or commented on when the
  incident already had one).
- Its expiry is a durable timer (subject ``incident:<id>``, kind ``lease``), fired by
  ``TimerService`` with the same fencing tokens as the 20-minute rule: once across replicas and
  restarts. An incident still open then posts in its thread, pages ``escalate_to`` and records it.
- Kept, never restarted: a recurrence leaves it alone, and a reclassification away from a flake
  pauses it (the timer is cancelled) with its due date kept, so classifying back resumes it rather
  than granting a fresh one. Resolving cancels it; a resolved flake that reopens resumes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from slackbot.config import Playbook
from slackbot.config.policy import FlakeLease
from slackbot.db.models import Incident
from slackbot.domain.effects import Event
from slackbot.domain.states import IncidentStatus, TimerKind, timer_subject
from slackbot.incidents import beads
from slackbot.incidents.effects import Effects, arm_timer, cancel_timer, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import Turn, redraw
from slackbot.slack.lease import lease_terms

KIND = TimerKind.LEASE


def policy_of(playbook: Playbook) -> FlakeLease | None:
    return playbook.policy.flake.lease if playbook.policy.flake else None


def is_flake(playbook: Playbook, failure_class: str | None) -> bool:
    route = playbook.class_route(failure_class)
    return route is not None and "flake" in route.signals


def follow(turn: Turn, chosen: str) -> None:
    """A classification into ``chosen`` (already set on the incident): grant the lease (first time a
    flake), resume it (back to a flake), or pause it (away from one). Call before the
    classification files its bead: a bead that exists already hears of the lease as a comment, a
    new one is filed carrying it."""
    policy = policy_of(turn.playbook)
    incident = turn.incident
    if policy is None:
        return
    subject = timer_subject(turn.id)
    if not is_flake(turn.playbook, chosen):
        if cancel_timer(turn.session, subject=subject, kind=KIND):
            due = (incident.lease or {}).get("due")
            turn.effects.record(
                Event.LEASE_ENDED,
                f"No longer a flake: its lease is paused, due {due} if it is classified a flake again",
                incident_id=turn.id,
                source="rule",
            )
        return
    lease = incident.lease
    if lease is None:
        now = turn.effects.now
        lease = {"role": policy.owner, "granted": utc(now).isoformat(), "due": utc(now + policy.due).isoformat()}
        incident.lease = lease
        terms = lease_terms(turn.playbook, incident)
        assert terms is not None
        turn.effects.record(
            Event.LEASED,
            terms.sentence(),
            incident_id=turn.id,
            source="rule",
            data={"owner": terms.owner_name, "due": lease["due"], "class": chosen},
        )
        beads.comment(incident, turn.effects, terms.sentence(), key="lease")  # a bead filed before
    if not lease.get("escalated"):
        arm_timer(
            turn.session, subject=subject, kind=KIND, due_at=datetime.fromisoformat(lease["due"]), incident_id=turn.id
        )


def end(session: Session, incident_id: int) -> None:
    """Resolved: the flake is fixed, the lease is done."""
    cancel_timer(session, subject=timer_subject(incident_id), kind=KIND)


def resume(session: Session, playbook: Playbook, incident: Incident) -> None:
    """A resolved flake failed again and reopened: its lease runs on from where it was (a recurrence
    does not buy more time); past its due date, it escalates at the next tick."""
    lease = incident.lease
    if incident.id is None or not lease or lease.get("escalated") or not is_flake(playbook, incident.failure_class):
        return
    due = datetime.fromisoformat(lease["due"])
    arm_timer(session, subject=timer_subject(incident.id), kind=KIND, due_at=due, incident_id=incident.id)


def overdue(playbook: Playbook, incident: Incident, now: datetime, effects: Effects) -> None:
    """The lease's timer fired (claimed exactly once): a flake still open escalates, once."""
    policy = policy_of(playbook)
    lease = incident.lease
    if (
        policy is None
        or not lease
        or lease.get("escalated")
        or incident.status != IncidentStatus.OPEN
        or not is_flake(playbook, incident.failure_class)
    ):
        return  # resolved or reclassified meanwhile (a late firing does nothing)
    terms = lease_terms(playbook, incident)
    assert terms is not None and incident.id is not None
    incident.lease = {**lease, "escalated": utc(now).isoformat()}
    incident.revision += 1
    incident.updated_at = utc(now)
    due = terms.due.strftime("%Y-%m-%d %H:%M UTC")
    note = f"the lease of {terms.owner_name} ran out at {due} and the flake is still open"
    targets = targets_for(playbook, incident, list(policy.escalate_to))
    effects.record(
        Event.LEASE_OVERDUE,
        f"Flake lease overdue: {note}; escalating to {', '.join(t.target.describe() for t in targets) or 'nobody'}",
        incident_id=incident.id,
        source="timer",
        data={"owner": terms.owner_name, "due": lease["due"], "escalate_to": list(policy.escalate_to)},
    )
    # One page per incident: the step is fixed, so the key refuses a second one whatever happens.
    enqueue_page(effects, incident, targets, reason="lease_overdue", step="lease", note=note)
    beads.comment(incident, effects, f"Flake lease overdue: {note}.", key="lease-overdue")
    redraw(incident, effects)
