"""The defect bead's side of an incident: one per incident, requested, filed or failed.

The tracker is called by the outbox after commit (``slackbot/outbox/bead_deliveries.py``), so a
missing, failing or slow ``bd`` never blocks triage: the card says "bead pending" until it exists.
These functions only change the incident and queue what follows.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from slackbot.config import Playbook
from slackbot.db.models import Incident, Run
from slackbot.domain.changes import Outcome
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.states import BeadState
from slackbot.incidents.effects import Effects
from slackbot.incidents.state import Turn, changed


def has_bead(incident: Incident) -> bool:
    """Filed, or being filed: either way a later change must not queue a second one."""
    return bool(incident.bead_id) or incident.bead_state == BeadState.PENDING


def queue_filing(incident: Incident, effects: Effects, payload: dict[str, Any], *, revision: int | None) -> None:
    assert incident.id is not None
    incident.bead_state = BeadState.PENDING
    effects.enqueue(
        EffectKind.BEAD_FILE, Key.bead_file(incident.id, revision), payload, incident_id=incident.id, lane=Lane.BEADS
    )


def auto_file(incident: Incident, effects: Effects, reason: str) -> None:
    """Beads the playbook files by itself (a flake, SEV-1): once per incident, never blocking."""
    if has_bead(incident):
        return
    queue_filing(incident, effects, {"reason": reason}, revision=incident.revision + 1)


def request(turn: Turn, *, expected: str | None, observed: str | None) -> Outcome:
    incident = turn.incident
    if incident.bead_id:
        return Outcome(turn.id, f"{turn.key} already has bead {incident.bead_id}", changed=False)
    if incident.bead_state == BeadState.PENDING:
        return Outcome(turn.id, f"the bead for {turn.key} is already being filed", changed=False)
    turn.record(Event.BEAD_REQUESTED, f"Bead requested by {turn.actor.user_id}")
    # A new request after a failed filing is a new row (the revision is in the key).
    payload = {"reason": "requested", "actor": turn.actor.user_id, "expected": expected, "observed": observed}
    queue_filing(incident, turn.effects, payload, revision=incident.revision + 1)
    turn.changed()
    return Outcome(turn.id, f"filing a bead for {turn.key}")


def comment(incident: Incident, effects: Effects, text: str, *, key: str) -> None:
    """A comment on the incident's defect (when it has one, or is being filed: it waits for it)."""
    if not has_bead(incident):
        return
    assert incident.id is not None
    effects.enqueue(
        EffectKind.BEAD_COMMENT,
        Key.bead_comment(incident.id, key),
        {"text": text},
        incident_id=incident.id,
        lane=Lane.BEADS,
    )


def comment_recurrence(incident: Incident, run: Run, added: int, effects: Effects) -> None:
    where = run.url or f"{run.repository}#{run.run_id}"
    text = f"Seen again in {where} (+{added}, {incident.occurrence_count} occurrences in all)."
    comment(incident, effects, text, key=str(run.id))


def close_with(incident: Incident, effects: Effects) -> None:
    """Resolving closes the bead (with the root cause, read at delivery)."""
    if has_bead(incident):
        assert incident.id is not None
        key = Key.bead_close(incident.id, incident.revision + 1)
        effects.enqueue(EffectKind.BEAD_CLOSE, key, incident_id=incident.id, lane=Lane.BEADS)


def reopen_with(incident: Incident, effects: Effects) -> None:
    if incident.bead_id:
        assert incident.id is not None
        key = Key.bead_reopen(incident.id, incident.revision)
        effects.enqueue(EffectKind.BEAD_REOPEN, key, incident_id=incident.id, lane=Lane.BEADS)


def filed(
    session: Session,
    playbook: Playbook,
    incident: Incident,
    effects: Effects,
    bead_id: str,
    url: str | None,
    tracker: str,
    repository: str | None = None,
) -> None:
    """The tracker answered: the bead exists. The thread says so and the card shows it.

    The row names the tracker (and GitHub repository) it lives in: a later reclassification to a
    class with another tracker keeps commenting on and closing this bead where it is.
    """
    assert incident.id is not None
    incident.bead_id = bead_id
    incident.bead_state = BeadState.FILED
    effects.record(
        Event.BEAD_FILED,
        f"Bead {bead_id} filed in {tracker}",
        incident_id=incident.id,
        source="system",
        data={"bead": bead_id, "tracker": tracker, "url": url, "repository": repository},
    )
    effects.enqueue(
        EffectKind.THREAD_POST,
        Key.bead_filed(incident.id),
        {"template": "bead_filed", "bead": bead_id, "url": url},
        incident_id=incident.id,
        lane=incident.channel,
    )
    changed(session, playbook, incident, effects, remind=False)


def failed(session: Session, playbook: Playbook, incident: Incident, effects: Effects, error: str) -> None:
    """Filing failed for good: say so in the thread with the tracker's error; a new request retries."""
    assert incident.id is not None
    incident.bead_state = BeadState.FAILED
    effects.record(
        Event.BEAD_FAILED,
        f"Filing the bead failed: {error}",
        incident_id=incident.id,
        source="system",
        data={"error": error},
    )
    effects.enqueue(
        EffectKind.THREAD_POST,
        Key.bead_failed(incident.id, incident.revision + 1),
        {"template": "bead_failed", "error": error},
        incident_id=incident.id,
        lane=incident.channel,
    )
    changed(session, playbook, incident, effects, remind=False)
