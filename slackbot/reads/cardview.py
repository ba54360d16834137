"""Gathering everything the card shows about one incident (the input of ``render_card``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from slackbot.config import Playbooks
from slackbot.db.models import Incident, Occurrence, Run, Timer
from slackbot.db.rows import from_row
from slackbot.domain.states import TimerKind, TimerState
from slackbot.reads.snapshot import read_connection
from slackbot.slack.card import CardView, PendingAction

EVIDENCE_LIMIT = 500
LOG_LIMIT = 600  # the tail of the failing command's log shown on the card


# Built once: the outbox loads a view for every card redraw and thread post, and building the
# statements (and the ORM's identity-map loading) cost more than SQLite spent answering them.
_INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
_RUNS: Table = Run.__table__  # type: ignore[attr-defined]
_OCCURRENCES: Table = Occurrence.__table__  # type: ignore[attr-defined]
_TIMERS: Table = Timer.__table__  # type: ignore[attr-defined]
_INCIDENT_KEYS, _RUN_KEYS = tuple(_INCIDENTS.c.keys()), tuple(_RUNS.c.keys())
# The incident and its last run in one statement.
_INCIDENT_AND_RUN = (
    sa_select(_INCIDENTS, _RUNS)
    .select_from(_INCIDENTS.outerjoin(_RUNS, _RUNS.c.id == _INCIDENTS.c.last_run_pk))
    .where(_INCIDENTS.c.id == bindparam("incident_id"))
)
_LATEST_COMMAND = (
    sa_select(_OCCURRENCES.c.command, _OCCURRENCES.c.detail)
    .where(_OCCURRENCES.c.incident_id == bindparam("incident_id"), _OCCURRENCES.c.command.is_not(None))
    .order_by(_OCCURRENCES.c.id.desc())
    .limit(1)
)
_EVIDENCE = (
    sa_select(_OCCURRENCES.c.evidence)
    .where(_OCCURRENCES.c.incident_id == bindparam("incident_id"))
    .order_by(_OCCURRENCES.c.id.desc())
    .limit(50)
)
_PENDING_TIMERS = (
    sa_select(_TIMERS.c.kind, _TIMERS.c.due_at)
    .where(_TIMERS.c.incident_id == bindparam("incident_id"), _TIMERS.c.state == TimerState.PENDING.value)
    .order_by(_TIMERS.c.due_at)
)


def load_card_view(engine: Engine, playbooks: Playbooks, incident_id: int) -> CardView | None:
    # One read transaction (the card shows one moment) that takes no write lock on SQLite.
    with read_connection(engine) as connection:
        found = _incident_and_run(connection, incident_id)
        return _view(connection, playbooks, *found) if found is not None else None


def load_incident_and_run(engine: Engine, incident_id: int) -> tuple[Incident, Run | None] | None:
    """The incident and its last run, without the rest of the card (a thread post needs no more)."""
    with read_connection(engine) as connection:
        return _incident_and_run(connection, incident_id)


def _incident_and_run(connection: Connection, incident_id: int) -> tuple[Incident, Run | None] | None:
    row = connection.execute(_INCIDENT_AND_RUN, {"incident_id": incident_id}).first()
    if row is None:
        return None
    split = len(_INCIDENT_KEYS)
    incident = from_row(Incident, dict(zip(_INCIDENT_KEYS, row[:split], strict=True)))
    run = from_row(Run, dict(zip(_RUN_KEYS, row[split:], strict=True))) if row[split] is not None else None
    return incident, run


def card_view(session: Session, playbooks: Playbooks, incident: Incident) -> CardView:
    run = session.get(Run, incident.last_run_pk) if incident.last_run_pk else None
    return _view(session.connection(), playbooks, incident, run)


def _view(connection: Connection, playbooks: Playbooks, incident: Incident, run: Run | None) -> CardView:
    assert incident.id is not None
    latest = connection.execute(_LATEST_COMMAND, {"incident_id": incident.id}).first()
    return CardView(
        playbook=playbooks.get(incident.playbook),
        incident=incident,
        run=run,
        evidence=_evidence(connection, incident.id),
        pending=_pending(connection, playbooks, incident),
        command=latest[0] if latest else None,
        log=(latest[1] or "")[-LOG_LIMIT:] if latest else "",
    )


def _evidence(connection: Connection, incident_id: int) -> list[dict[str, Any]]:
    evidence: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for (items,) in connection.execute(_EVIDENCE, {"incident_id": incident_id}):
        for item in items or []:
            key = (str(item.get("kind")), str(item.get("path")))
            if key not in seen and len(evidence) < EVIDENCE_LIMIT:
                seen.add(key)
                evidence.append(item)
    return evidence


def pending_actions(session: Session, playbooks: Playbooks, incident: Incident) -> list[PendingAction]:
    """What the bot will do unless someone acts first: PagerDuty's ``pending_actions``, shown."""
    return _pending(session.connection(), playbooks, incident)


def _pending(connection: Connection, playbooks: Playbooks, incident: Incident) -> list[PendingAction]:
    playbook = playbooks.get(incident.playbook)
    actions = []
    for kind, due_at in connection.execute(_PENDING_TIMERS, {"incident_id": incident.id}):
        if kind == TimerKind.CLASSIFY:
            found = playbook.target("escalation", incident.owning_class)
            who = found.target.describe() if found else "nobody (no escalation target configured)"
            actions.append(PendingAction(f"escalates to {who}", due_at))
        elif kind == TimerKind.REMINDER:
            actions.append(PendingAction("asks for a status update", due_at))
    return actions
