"""Claiming and settling outbox rows. The database decides who delivers what.

A claim is a conditional UPDATE (``WHERE state = 'pending' …``), so of two replicas that try the
same row exactly one wins; PostgreSQL additionally locks candidates with ``FOR UPDATE SKIP LOCKED``
so replicas do not even queue on each other. A claim is a lease: a worker that dies mid-delivery
leaves a row in ``sending`` whose lease expires, and another worker takes it over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.db.engine import session_scope
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.domain.states import DeliveryState
from slackbot.incidents.effects import utc

LEASE = timedelta(seconds=60)  # the default; TRIAGE_OUTBOX_LEASE_SECONDS sets it per process
# Slack is edited at most once a second per card: a redraw claimed sooner after the last one waits.
CARD_EDIT_INTERVAL = timedelta(seconds=1)


def _due(now: datetime) -> Any:
    return or_(
        and_(col(OutboxItem.state) == DeliveryState.PENDING.value, col(OutboxItem.next_attempt_at) <= now),
        and_(col(OutboxItem.state) == DeliveryState.SENDING.value, col(OutboxItem.lease_until) < now),
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
    with session_scope(engine) as session:
        # Only ids, lanes, states and attempts are read for the candidates: loading a few hundred rows
        # (payloads and all) to deliver a dozen made claiming the slowest part of a busy outbox.
        query = (
            sa_select(
                col(OutboxItem.id),
                col(OutboxItem.lane),
                col(OutboxItem.state),
                col(OutboxItem.attempts),
                col(OutboxItem.kind),
                col(OutboxItem.incident_id),
            )
            .where(_due(moment), col(OutboxItem.kind).in_(sorted(kinds)))
            .order_by(col(OutboxItem.id))
            .limit(limit * 4)
        )
        if skip_lanes:
            query = query.where(col(OutboxItem.lane).not_in(sorted(skip_lanes)))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        candidates = [tuple(row) for row in session.execute(query)]
        held = _cards_held(
            session, moment, {i for _, _, _, _, kind, i in candidates if kind == _CARD and i is not None}
        )
        chosen: dict[str, tuple[int, bool]] = {}
        postponed: dict[int, datetime] = {}
        for row_id, lane, state, attempts, kind, incident_id in candidates:
            if kind == _CARD and incident_id in held and row_id is not None:
                # The card is being drawn (by any replica) or was drawn less than a second ago: a
                # second draw now would edit it twice in a second, or land before the first and
                # be overwritten by the older state. The lane's next row goes instead.
                if state == DeliveryState.PENDING:
                    postponed[row_id] = held[incident_id]
                continue
            if lane not in chosen and len(chosen) < limit and row_id is not None:
                # An earlier attempt may have reached Slack if a worker died holding the row
                # (its lease ran out) or an attempt failed without an answer (timeout, 5xx).
                chosen[lane] = (row_id, state == DeliveryState.SENDING or attempts > 0)
        for row_id, until in postponed.items():
            session.execute(
                update(OutboxItem)
                .where(col(OutboxItem.id) == row_id, col(OutboxItem.state) == DeliveryState.PENDING.value)
                .values(next_attempt_at=until)
                .execution_options(synchronize_session=False)
            )
        if not chosen:
            return []
        won = session.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(sorted(i for i, _ in chosen.values())), _due(moment))
            .values(state=DeliveryState.SENDING.value, claimed_by=worker, lease_until=moment + lease)
            .returning(col(OutboxItem.id))
            .execution_options(synchronize_session=False)
        )
        claimed_ids = sorted(int(row[0]) for row in won)
        claimed = list(
            session.exec(select(OutboxItem).where(col(OutboxItem.id).in_(claimed_ids)).order_by(col(OutboxItem.id)))
        )
    maybe_delivered = dict(chosen.values())
    for item in claimed:
        # Set after the session closed, so the flag travels with this claim only (not stored):
        # handlers look for an earlier copy before posting again (e.g. SlackDeliveries._find_post).
        item.result = {**item.result, "takeover": maybe_delivered[item.id or 0]}
    return claimed


_CARD = EffectKind.CARD.value


def _cards_held(session: Session, now: datetime, incidents: set[int]) -> dict[int, datetime]:
    """Incidents whose card may not be drawn yet, each with the moment it may: one being drawn
    (a live claim) or drawn within ``CARD_EDIT_INTERVAL``."""
    if not incidents:
        return {}
    rows = session.exec(
        select(OutboxItem.incident_id, OutboxItem.state, OutboxItem.done_at, OutboxItem.lease_until).where(
            col(OutboxItem.kind) == _CARD,
            col(OutboxItem.incident_id).in_(sorted(incidents)),
            or_(
                and_(col(OutboxItem.state) == DeliveryState.SENDING.value, col(OutboxItem.lease_until) >= now),
                and_(
                    col(OutboxItem.state) == DeliveryState.DONE.value,
                    col(OutboxItem.done_at) > now - CARD_EDIT_INTERVAL,
                ),
            ),
        )
    )
    held: dict[int, datetime] = {}
    for incident_id, state, done_at, _lease in rows:
        if incident_id is None:
            continue
        # In flight: look again a second from now (its settle wakes the lane's worker anyway).
        until = (
            utc(done_at) + CARD_EDIT_INTERVAL if state == DeliveryState.DONE and done_at else now + CARD_EDIT_INTERVAL
        )
        held[incident_id] = max(held.get(incident_id, until), until)
    return held


def settle(
    session: Session,
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
    expired must not overwrite the outcome of the worker that took over)."""
    values: dict[str, Any] = {"state": state, "lease_until": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = utc(next_attempt_at)
    if attempts_delta:
        values["attempts"] = OutboxItem.attempts + attempts_delta
    if error is not None:
        values["last_error"] = error[:2000]
    if result is not None:
        values["result"] = result
    if state in (DeliveryState.DONE, DeliveryState.DEAD):
        values["done_at"] = utc(now)
    outcome = session.execute(
        update(OutboxItem)
        .where(
            col(OutboxItem.id) == item_id,
            col(OutboxItem.state) == DeliveryState.SENDING.value,
            col(OutboxItem.claimed_by) == worker,
        )
        .values(**values)
    )
    return getattr(outcome, "rowcount", 0) == 1


def depth(session: Session) -> tuple[int, datetime | None]:
    from sqlalchemy import func

    row = session.execute(
        select(func.count(), func.min(OutboxItem.created_at)).where(
            col(OutboxItem.state).in_([DeliveryState.PENDING.value, DeliveryState.SENDING.value])
        )
    ).one()
    return int(row[0]), row[1]
