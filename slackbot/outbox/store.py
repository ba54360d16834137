"""Claiming and settling outbox rows. The database decides who delivers what.

A claim is a conditional UPDATE (``WHERE state = 'pending' …``), so of two replicas that try the
same row exactly one wins; PostgreSQL additionally locks candidates with ``FOR UPDATE SKIP LOCKED``
so replicas do not even queue on each other. A claim is a lease: a worker that dies mid-delivery
leaves a row in ``sending`` whose lease expires, and another worker takes it over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from slackbot.db.engine import is_sqlite
from slackbot.db.models import OutboxItem
from slackbot.db.rows import from_row
from slackbot.domain.effects import EffectKind
from slackbot.domain.states import DeliveryState
from slackbot.incidents.effects import table, utc
from slackbot.reads.snapshot import read_connection

LEASE = timedelta(seconds=60)  # the default; TRIAGE_OUTBOX_LEASE_SECONDS sets it per process
# Slack is edited at most once a second per card: a redraw claimed sooner after the last one waits.
CARD_EDIT_INTERVAL = timedelta(seconds=1)


# Statements built once: claiming and settling run for every effect, and building a statement
# (coercing each operand) cost SQLAlchemy more than SQLite spent executing it. Parameters are
# bound per call; lists (kinds, lanes, ids) are expanding parameters, so the compiled form is
# cached once per dialect.
_OUTBOX = table(OutboxItem)
_C = _OUTBOX.c
_PENDING, _SENDING, _DONE = DeliveryState.PENDING.value, DeliveryState.SENDING.value, DeliveryState.DONE.value
_CARD = EffectKind.CARD.value
_DUE = or_(
    and_(_C.state == _PENDING, _C.next_attempt_at <= bindparam("now")),
    and_(_C.state == _SENDING, _C.lease_until < bindparam("now")),
)
# Only ids, lanes, states and attempts are read for the candidates: loading a few hundred rows
# (payloads and all) to deliver a dozen made claiming the slowest part of a busy outbox.
_CANDIDATES = (
    sa_select(_C.id, _C.lane, _C.state, _C.attempts, _C.kind, _C.incident_id)
    .where(_DUE, _C.kind.in_(bindparam("kinds", expanding=True)))
    .order_by(_C.id)
    .limit(bindparam("limit"))
)
_CANDIDATES_SKIPPING = _CANDIDATES.where(_C.lane.not_in(bindparam("skip", expanding=True)))
_ANY_CANDIDATE, _ANY_CANDIDATE_SKIPPING = _CANDIDATES.limit(1), _CANDIDATES_SKIPPING.limit(1)
_POSTPONE = (
    update(_OUTBOX).where(_C.id == bindparam("row_id"), _C.state == _PENDING).values(next_attempt_at=bindparam("until"))
)
# The claim returns the rows it won whole: no second statement to read them.
_TAKE = (
    update(_OUTBOX)
    .where(_C.id.in_(bindparam("ids", expanding=True)), _DUE)
    .values(state=_SENDING, claimed_by=bindparam("worker"), lease_until=bindparam("lease_until"))
    .returning(*_C)
)
_HELD = sa_select(_C.incident_id, _C.state, _C.done_at).where(
    _C.kind == _CARD,
    _C.incident_id.in_(bindparam("incidents", expanding=True)),
    or_(
        and_(_C.state == _SENDING, _C.lease_until >= bindparam("now")),
        and_(_C.state == _DONE, _C.done_at > bindparam("since")),
    ),
)


def claim(
    engine: Engine,
    *,
    now: datetime,
    worker: str,
    kinds: set[str],
    skip_lanes: set[str],
    limit: int = 50,
    lease: timedelta = LEASE,
) -> list[OutboxItem]:
    """Claim at most one due row per lane (oldest first), so each lane is delivered in order.
    ``lease`` is how long the claim holds: longer than any delivery takes, and as short as we
    can afford to wait for another replica to take over the rows of a worker that crashed."""
    moment = utc(now)
    query, first = (_CANDIDATES_SKIPPING, _ANY_CANDIDATE_SKIPPING) if skip_lanes else (_CANDIDATES, _ANY_CANDIDATE)
    params: dict[str, Any] = {"now": moment, "kinds": sorted(kinds), "limit": limit * 4}
    if skip_lanes:
        params["skip"] = sorted(skip_lanes)
    if is_sqlite(engine):
        # Looked for in a snapshot first: an idle worker claims every half second, and on SQLite
        # a transaction that may write takes the one write lock at its BEGIN, which the acks'
        # commits and an ingest then waited for (SQLite's busy handler: 1 ms, then 2, 5, 10...).
        with read_connection(engine) as connection:
            if connection.execute(first, params).first() is None:
                return []
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = [tuple(row) for row in connection.execute(query, params)]
        held = _cards_held(
            connection, moment, {i for _, _, _, _, kind, i in candidates if kind == _CARD and i is not None}
        )
        chosen: dict[str, tuple[int, bool]] = {}
        postponed: dict[int, datetime] = {}
        for row_id, lane, state, attempts, kind, incident_id in candidates:
            if kind == _CARD and incident_id in held and row_id is not None:
                # The card is being drawn (by any replica) or was drawn less than a second ago: a
                # second draw now would edit it twice in a second, or land before the first and
                # be overwritten by the older state. The lane's next row goes instead.
                if state == _PENDING:
                    postponed[row_id] = held[incident_id]
                continue
            if lane not in chosen and len(chosen) < limit and row_id is not None:
                # An earlier attempt may have reached Slack if a worker died holding the row
                # (its lease ran out) or an attempt failed without an answer (timeout, 5xx).
                chosen[lane] = (row_id, state == _SENDING or attempts > 0)
        if postponed:
            connection.execute(_POSTPONE, [{"row_id": i, "until": until} for i, until in postponed.items()])
        if not chosen:
            return []
        won = connection.execute(
            _TAKE,
            {
                "ids": sorted(i for i, _ in chosen.values()),
                "now": moment,
                "worker": worker,
                "lease_until": moment + lease,
            },
        )
        rows = sorted((row._asdict() for row in won), key=lambda row: int(row["id"]))
    maybe_delivered = dict(chosen.values())
    claimed = []
    for row in rows:
        # The flag travels with this claim only (not stored): handlers look for an earlier copy
        # before posting again (e.g. SlackDeliveries._find_post).
        row["result"] = {**(row["result"] or {}), "takeover": maybe_delivered[row["id"]]}
        claimed.append(from_row(OutboxItem, row))
    return claimed


def _cards_held(connection: Connection, now: datetime, incidents: set[int]) -> dict[int, datetime]:
    """Incidents whose card may not be drawn yet, each with the moment it may: one being drawn
    (a live claim) or drawn within ``CARD_EDIT_INTERVAL``."""
    if not incidents:
        return {}
    rows = connection.execute(_HELD, {"incidents": sorted(incidents), "now": now, "since": now - CARD_EDIT_INTERVAL})
    held: dict[int, datetime] = {}
    for incident_id, state, done_at in rows:
        if incident_id is None:
            continue
        # In flight: look again a second from now (its settle wakes the lane's worker anyway).
        until = utc(done_at) + CARD_EDIT_INTERVAL if state == _DONE and done_at else now + CARD_EDIT_INTERVAL
        held[incident_id] = max(held.get(incident_id, until), until)
    return held


# One settle statement per combination of columns it sets (a handful), built on first use.
_SETTLES: dict[tuple[bool, ...], Any] = {}


def _settle_statement(next_attempt: bool, attempts: bool, error: bool, result: bool, done: bool) -> Any:
    shape = (next_attempt, attempts, error, result, done)
    statement = _SETTLES.get(shape)
    if statement is None:
        values: dict[str, Any] = {"state": bindparam("new_state"), "lease_until": None}
        if next_attempt:
            values["next_attempt_at"] = bindparam("next_attempt_at_")
        if attempts:
            values["attempts"] = _C.attempts + bindparam("attempts_delta")
        if error:
            values["last_error"] = bindparam("last_error_")
        if result:
            values["result"] = bindparam("result_", type_=_C.result.type)
        if done:
            values["done_at"] = bindparam("done_at_")
        statement = _SETTLES[shape] = (
            update(_OUTBOX)
            .where(_C.id == bindparam("row_id"), _C.state == _SENDING, _C.claimed_by == bindparam("worker"))
            .values(**values)
        )
    return statement


def settle(
    session: Session | Connection,
    item_id: int,
    worker: str,
    *,
    state: str,
    now: datetime,
    next_attempt_at: datetime | None = None,
    attempts_delta: int = 0,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Record the outcome, but only if we still hold the lease (a slow worker whose lease
    expired must not overwrite the outcome of the worker that took over). ``session`` may be a
    plain connection: settling needs no ORM, and the worker settles every delivery."""
    done = state in (DeliveryState.DONE, DeliveryState.DEAD)
    statement = _settle_statement(
        next_attempt_at is not None, bool(attempts_delta), error is not None, result is not None, done
    )
    params: dict[str, Any] = {"row_id": item_id, "worker": worker, "new_state": str(state)}
    if next_attempt_at is not None:
        params["next_attempt_at_"] = utc(next_attempt_at)
    if attempts_delta:
        params["attempts_delta"] = attempts_delta
    if error is not None:
        params["last_error_"] = error[:2000]
    if result is not None:
        params["result_"] = result
    if done:
        params["done_at_"] = utc(now)
    connection = session if isinstance(session, Connection) else session.connection()
    outcome = connection.execute(statement, params)
    return getattr(outcome, "rowcount", 0) == 1


def depth(session: Session) -> tuple[int, datetime | None]:
    from sqlalchemy import func

    row = session.execute(
        select(func.count(), func.min(OutboxItem.created_at)).where(
            col(OutboxItem.state).in_([DeliveryState.PENDING.value, DeliveryState.SENDING.value])
        )
    ).one()
    return int(row[0]), row[1]
