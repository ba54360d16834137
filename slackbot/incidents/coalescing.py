"""Coalescing a run of classifications into one thread post and one checklist.

A reclassify storm (a misclick corrected, two responders disagreeing, a script) used to queue a
thread post and a checklist per click in the channel's lane, which Slack drains at one post a
second: tens of thousands of posts nobody reads, and the lane never idle. Now a classification's
post and checklist wait ``window`` seconds before they are due; a classification that replaces
one whose post has not gone out yet folds it: the older post and checklist are marked
``superseded`` (never sent) and the new post names the whole sequence ("classified X, then Y",
each by whom), so the thread still tells the truth with one post. A classification that stands
longer than the window is posted (with its checklist) on its own. A storm longer than
``max_hold`` is still posted once per ``max_hold``: the thread never falls silent for long.

A post names the first ``FIRST`` and the last ``LAST`` classifications of its run and how many
came between (``compact``). A scripted storm of 100 clicks a second folded 6,000 into one post:
a message no one could read (and past Slack's length limit), whose row every click copied and
re-encoded whole, so each click cost more than the one before.

Why at enqueue time, in the change's transaction, rather than when a lane claims its next row:
the change already holds the incident's lock (``load_for_change``), so two changes of one incident
never fold the same rows, and the fold commits or rolls back with the change that causes it. The
fold is a conditional UPDATE of rows that are still ``pending`` and were never tried, locked first
on PostgreSQL: a row a replica has claimed is ``sending`` (its claim won), so it is delivered by
that claimer, exactly once, under its lease, and the new post simply reads "reclassified from …"
after it; a row we fold is no longer due, so no claim can take it afterwards. The claim itself,
which every replica runs several times a second, stays one short statement pair that knows nothing
about incidents. A row that was tried before (``attempts`` > 0: a timeout may have reached Slack) is
never folded, and only a contiguous run of the newest rows is, so the sequence a post names is
always exactly the classifications since the thread last heard of one.

Only classification posts and their checklists fold: pages, DMs, bead links and every other post
carry information no later row repeats, and are never touched here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlmodel import Session

from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind, Key
from slackbot.domain.states import DeliveryState
from slackbot.incidents.effects import utc

DEFAULT_WINDOW = timedelta(seconds=0)  # the core's default; the bot runs with TRIAGE_COALESCE_SECONDS
MAX_HOLD = timedelta(seconds=60)
CLASSIFIED = "classified"
FIRST, LAST = 2, 5  # classifications a post names by name; the ones between are counted


@dataclass
class Folded:
    """What the folded rows had to say: the class the thread last heard of (``previous``), the
    classifications since then in order (``sequence``: class and actor each) and when the first of
    them was made (``since``)."""

    previous: str | None = None
    sequence: list[dict[str, Any]] = field(default_factory=list)
    since: datetime | None = None
    checklists: int = 0  # pending checklists superseded (their class never stood)


def fold_classifications(session: Session, incident_id: int, now: datetime) -> Folded:
    """Supersede the incident's classification post and checklist that have not gone out yet.
    Call with the incident locked (every change takes its lock first), before queuing the new ones."""
    posts = _pending(session, incident_id, EffectKind.THREAD_POST)
    run: list[Row[Any]] = []
    for row in reversed(posts):  # newest first: stop at the first one that must still be delivered
        if row.payload.get("template") != CLASSIFIED:
            continue  # another kind of post (assigned, severity …) neither folds nor breaks the run
        if row.attempts > 0:
            break
        run.append(row)
    run.reverse()
    folded = Folded()
    if run:
        first = run[0].payload
        folded.previous = first.get("previous")
        folded.since = _when(first.get("since")) or utc(run[0].created_at)
        for row in run:
            folded.sequence.extend(steps(row.payload))
        _supersede(session, [row.id for row in run], now, "a newer classification's post names this one")
    # A checklist goes with its classification's post: dropped when the post is folded (its class
    # never stood), kept when the post went out (that post says "the checklist follows").
    dropped = {Key.checklist(incident_id, _revision(row.dedup_key)) for row in run}
    checklists = [
        row
        for row in _pending(session, incident_id, EffectKind.CHECKLIST)
        if row.attempts == 0 and row.dedup_key in dropped
    ]
    if checklists:
        _supersede(session, [row.id for row in checklists], now, "the incident was reclassified before it was posted")
        folded.checklists = len(checklists)
    return folded


def _revision(key: str) -> int:
    """The incident revision a classification's post was queued at (``Key.thread``'s last part),
    which its checklist's key (``Key.checklist``) shares."""
    return int(key.rsplit(":", 1)[1])


def steps(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The classifications one post reports, oldest first (one, unless it folded others)."""
    sequence = payload.get("sequence")
    if isinstance(sequence, list) and sequence:
        return [dict(step) for step in sequence]
    return [{"class": payload.get("class"), "actor": payload.get("actor")}]


def compact(sequence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sequence a post names: its first ``FIRST`` and last ``LAST`` classifications, with one
    ``{"skipped": n}`` step between them counting the rest."""
    head: list[dict[str, Any]] = []
    tail: list[dict[str, Any]] = []
    skipped = 0
    for step in sequence:
        if "skipped" in step:
            skipped += int(step["skipped"] or 0)
        elif not skipped and not tail and len(head) < FIRST:
            head.append(step)
        else:
            tail.append(step)
    if len(tail) > LAST:
        skipped, tail = skipped + len(tail) - LAST, tail[-LAST:]
    return [*head, *([{"skipped": skipped}] if skipped else []), *tail]


def due_at(now: datetime, window: timedelta, since: datetime | None) -> datetime:
    """When a classification's post and checklist are due: after ``window``, unless the sequence it
    ends has been held back ``MAX_HOLD`` already."""
    due = now + window
    if since is not None:
        due = min(due, utc(since) + MAX_HOLD)
    return max(utc(now), utc(due))


# Built once: every reclassification runs them twice each, and SQLAlchemy building an ORM
# statement anew cost more than SQLite running it (a third of a reclassification's CPU went to the
# fold under the ack bench's sustained row).
_OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
_PENDING = (
    select(_OUTBOX)
    .where(
        _OUTBOX.c.incident_id == bindparam("incident_id"),
        _OUTBOX.c.kind == bindparam("kind"),
        _OUTBOX.c.state == DeliveryState.PENDING.value,
    )
    .order_by(_OUTBOX.c.id)
)
_PENDING_LOCKED = _PENDING.with_for_update()
_SUPERSEDE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
        _OUTBOX.c.state == DeliveryState.PENDING.value,
        _OUTBOX.c.attempts == 0,
    )
    .values(
        state=DeliveryState.SUPERSEDED.value,
        done_at=bindparam("done_at", type_=_OUTBOX.c.done_at.type),
        last_error=bindparam("why", type_=_OUTBOX.c.last_error.type),
    )
)


def _pending(session: Session, incident_id: int, kind: EffectKind) -> list[Row[Any]]:
    """The incident's outbox rows of ``kind`` still pending, oldest first (columns as OutboxItem's)."""
    # On PostgreSQL a replica's claim skips locked rows, and one that claimed first has made them
    # 'sending' (this SELECT then waits for its commit and no longer sees them as pending).
    query = _PENDING_LOCKED if session.get_bind().dialect.name == "postgresql" else _PENDING
    session.flush()  # what this change has made so far, as an ORM query would see it (autoflush)
    return list(session.connection().execute(query, {"incident_id": incident_id, "kind": kind.value}))


def _supersede(session: Session, ids: list[int], now: datetime, why: str) -> None:
    session.connection().execute(_SUPERSEDE, {"ids": sorted(ids), "done_at": utc(now), "why": why})


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        return None
