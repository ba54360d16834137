"""The inbox: a Slack interaction's change is a row before its ack, and is applied after it, once.

See the package docstring for the guarantees; this module is the mechanism.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, delete, select

from slackbot.after_ack import AfterAck
from slackbot.clock import Clock
from slackbot.db.engine import OutageLog, is_sqlite, session_scope
from slackbot.db.models import InboxItem, Incident
from slackbot.domain.changes import Actor, Change, Outcome
from slackbot.inbox.codec import decode, encode
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import utc
from slackbot.reads.snapshot import read_session
from slackbot.slack.escape import escape

log = logging.getLogger(__name__)

PENDING, DONE, REFUSED = "pending", "done", "refused"
# Settled rows are kept a week (a redelivery comes within minutes; the timeline is the audit
# trail), then deleted in small batches when the applier is idle, every PRUNE_EVERY seconds.
KEEP = timedelta(days=7)
PRUNE_EVERY = 600.0
Answer = Callable[[str, str, bool], Awaitable[Any]]  # (response URL, text, in the channel)


@dataclass(frozen=True)
class Request:
    """What one Slack request asks of one incident: the values its change needs, nothing more."""

    key: str  # names the Slack request: a redelivery has the same key and is recorded once
    incident_id: int
    actor: str
    via: str  # button | command | modal (the Actor source: button and modal are both "button")
    change: Change
    response_url: str | None = None
    what: str = "change incidents"  # what a non-responder is told they may not do


@dataclass(frozen=True)
class Applied:
    """What became of a request: ``changed`` as the core said, or refused with the reason."""

    key: str
    incident_id: int
    state: str  # done | refused
    message: str
    changed: bool = False


@dataclass
class _Done:
    """An applied request and whom to tell."""

    applied: Applied
    actor: str
    via: str
    response_url: str | None


@dataclass
class _Row:
    id: int
    key: str
    incident_id: int
    actor: str
    via: str
    data: dict[str, Any]
    response_url: str | None


class Inbox:
    """Records requests (group commit), applies them (any replica, in order per incident)."""

    def __init__(
        self,
        engine: Engine,
        core: IncidentCore,
        clock: Clock,
        answers: AfterAck,
        *,
        allowed: Callable[[str], Awaitable[bool]],
        describe: Callable[[], str],
        on_changed: Callable[[], None],
        batch: int = 500,
        per_transaction: int = 16,
        poll: float = 1.0,
    ) -> None:
        self.engine = engine
        self._outage = OutageLog(log, "the Slack inbox")
        self.core = core
        self.clock = clock
        self.answers = answers
        self.allowed = allowed
        self.describe = describe
        self.on_changed = on_changed
        self.answer: Answer | None = None  # set by the Slack handlers (they own respond())
        self.batch = batch
        self.per_transaction = per_transaction
        self.poll = poll
        self._insert = (sqlite_insert if is_sqlite(engine) else pg_insert)(InboxItem.__table__)  # type: ignore[attr-defined]
        self._insert = self._insert.on_conflict_do_nothing(index_elements=["request_key"])
        # One writer thread: its transactions are the group commits, one after the other.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="inbox-record")
        # SQLite has one writer: a group commit that meets the applier's transaction waits for it.
        # Waiting on this lock wakes the moment the applier commits; SQLite's busy handler would
        # poll with growing sleeps (1, 2, 5, 10, ... ms) and could nearly double the wait of
        # the acks behind the commit. PostgreSQL inserts never wait for the applier's rows.
        self._one_writer: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(engine) else contextlib.nullcontext()
        )
        self._connection: Connection | None = None  # the writer thread's, used by it alone
        self._queued: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._waiters: dict[str, list[asyncio.Future[Applied]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._since: float | None = None  # when the oldest request recorded here and not yet applied came in
        # What recording cost, said at shutdown (bench/ack_latency.py reads it): requests, commits, seconds
        self.recorded = [0, 0, 0.0]
        self._next_prune = 0.0

    # -- recording (before the ack) ------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (a new server, in tests) starts empty
            self._loop, self._queued, self._flushing, self._waiters = loop, [], None, {}
            self._wake, self._hurry = asyncio.Event(), asyncio.Event()
        return loop

    async def record(self, request: Request, *, urgent: bool = False) -> None:
        """Return once the request is committed; only then may it be acked.

        Requests arriving while a commit is under way wait for the next one, which takes all of
        them: under a burst many acks share one short transaction (group commit), and a lone
        click pays one insert and one commit. ``urgent``: someone waits for the outcome (a modal
        must be answered within Slack's 3 seconds), so it is applied without waiting for a pause.
        """
        loop = self._bind()
        row = {
            "request_key": request.key,
            "incident_id": request.incident_id,
            "actor": request.actor,
            "via": request.via,
            "change": {"do": encode(request.change), "what": request.what},
            "response_url": request.response_url,
            "state": PENDING,
            "received_at": utc(self.clock.now()),
        }
        done: asyncio.Future[None] = loop.create_future()
        self._queued.append((row, done))
        if self._flushing is None:
            self._flushing = loop.create_task(self._flush(loop), name="inbox-record")
        await done
        if self._since is None:
            self._since = time.monotonic()
        if urgent:
            self._hurry.set()
        self._wake.set()

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                started = time.perf_counter()
                try:
                    await loop.run_in_executor(self._writer, self._write, [row for row, _ in batch])
                except Exception as exc:  # nothing recorded: none of these may be acked
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    self.recorded[0] += len(batch)
                    self.recorded[1] += 1
                    self.recorded[2] += time.perf_counter() - started
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flushing = None

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """One group commit, on the writer thread's own connection (kept: no pool checkout per
        commit). On SQLite that connection never checkpoints the WAL: a checkpoint writes the
        database file and syncs it, and the acks waiting on this commit would wait for that too;
        the bot's other connections (applier, outbox, timers) checkpoint as they commit."""
        if self._connection is None:
            self._connection = self.engine.connect()
            if is_sqlite(self.engine):
                self._connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                self._connection.commit()
        try:
            with self._one_writer, self._connection.begin():
                self._connection.execute(self._insert, rows)
        except Exception:
            self._connection.invalidate()  # a broken connection is not reused: the next commit opens one
            self._connection.close()
            self._connection = None
            raise

    def _release(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- waiting for an outcome (commands and modals answer with it) -----------------------------

    async def outcome(self, key: str, timeout: float) -> Applied | None:
        """What became of a recorded request, or None if it was not applied within ``timeout``.
        Another replica may apply it: then the row says so (looked at twice a second)."""
        loop = self._bind()
        waiter: asyncio.Future[Applied] = loop.create_future()
        self._waiters.setdefault(key, []).append(waiter)
        deadline = loop.time() + timeout
        try:
            while (remaining := deadline - loop.time()) > 0:
                done, _ = await asyncio.wait({waiter}, timeout=min(remaining, 0.5))
                if done:
                    return waiter.result()
                found = await asyncio.to_thread(self._read, key)
                if found is not None:
                    return found
            return None
        finally:
            waiters = self._waiters.get(key, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(key, None)

    def _read(self, key: str) -> Applied | None:
        with read_session(self.engine) as session:
            row = session.exec(select(InboxItem).where(InboxItem.request_key == key)).first()
            if row is None or row.state == PENDING:
                return None
            changed = bool(row.change.get("changed"))
            return Applied(key, row.incident_id, row.state, row.outcome or "", changed)

    # -- applying (after the ack) --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Apply what is recorded, now and whenever more is: what a crashed or stopped process
        recorded and did not apply is applied on the next start, by whichever replica looks."""
        self._bind()
        while not stop.is_set():
            if self._since is not None and not self._hurry.is_set():
                # Acks first (slackbot.after_ack), unless someone waits for an outcome.
                await _first(self.answers.gate.turn(self._since), self._hurry.wait(), stop.wait())
            # Cleared before looking, so a request recorded while we look wakes the next look.
            since, self._since = self._since, None
            hurried = self._hurry.is_set()
            self._hurry.clear()
            self._wake.clear()
            try:
                # Someone waits for an outcome in this look: none of its transactions waits.
                applied = await self.apply_pending(None if hurried else since)
                self._outage.succeeded()
            except Exception as exc:  # the database is away: the rows wait, and so do we
                self._outage.failed(exc, "applying the Slack inbox failed; retrying")
                applied = 0
            if applied >= self.batch:  # more than one look's worth: the rest still yields to acks
                self._since = self._since or since or time.monotonic()
                continue
            if not applied and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY
                with contextlib.suppress(SQLAlchemyError):  # pruning waits for the next time
                    await asyncio.to_thread(self.prune)
            await _first(self._wake.wait(), stop.wait(), timeout=self.poll)

    async def close(self, timeout: float = 10.0) -> None:
        """Apply what is recorded now, without waiting for a pause, before the process stops."""
        self.answers.gate.close()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not await asyncio.wait_for(self.apply_pending(), timeout=max(0.1, deadline - time.monotonic())):
                    break
        except (TimeoutError, SQLAlchemyError):
            log.warning("stopping with Slack changes recorded and not applied: the next start applies them")
        await self.answers.close(timeout=max(0.1, deadline - time.monotonic()))
        await asyncio.get_running_loop().run_in_executor(self._writer, self._release)
        requests, commits, seconds = self.recorded
        if commits:
            log.info(
                "inbox: recorded %d Slack requests in %d commits (%.1f per commit, %.2f ms per commit, "
                "from queued to committed)",
                requests,
                commits,
                requests / commits,
                1000 * seconds / commits,
            )

    async def apply_pending(self, since: float | None = None) -> int:
        """Apply up to ``batch`` recorded requests, oldest first; returns how many were settled.
        ``since`` (time.monotonic): when the oldest of them came in here; then each transaction
        waits its turn after the acks, not only the first (see the loop below)."""
        rows = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        # Who may act is asked before the transaction (it may ask Slack, cached for minutes).
        permitted = {actor: await self.allowed(actor) for actor in {row.actor for row in rows}}
        newest: dict[int, int] = {}  # incident -> the newest of its rows seen here, in arrival order
        for row in rows:
            newest[row.incident_id] = row.id
        settled = 0
        for incident_id, up_to in newest.items():
            while True:
                # Acks first, also within this process: a commit the recorder waits for goes before
                # our next transaction (SQLite has one writer, and its busy wait backs off to 100 ms).
                while (flushing := self._flushing) is not None:
                    await asyncio.wait({flushing})
                # Requests may have started arriving again since the gate opened: the backlog's
                # next transaction (tens of ms of the GIL) waits for the next pause like the first
                # did, within the same bound. Without this one quiet moment let a whole backlog
                # run while the acks behind it waited (bench/ack_latency.py's click rows).
                gate = self.answers.gate
                if since is not None and not gate.open and not self._hurry.is_set():
                    await _first(gate.turn(since), self._hurry.wait())
                # Past the bound, requests still arriving: short transactions, so a group commit
                # (and the acks waiting on it) never waits long for SQLite's one write lock.
                limit = self.per_transaction if gate.open else max(1, self.per_transaction // 4)
                results = await asyncio.to_thread(self._apply, incident_id, up_to, permitted, limit)
                settled += len(results)
                if any(done.applied.changed for done in results):
                    self.on_changed()
                for done in results:
                    self._tell(done)
                if len(results) < limit:
                    break
        return settled

    def prune(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` rows settled more than ``KEEP`` ago; pending rows always stay."""
        cutoff = utc(self.clock.now()) - KEEP
        with session_scope(self.engine) as session:
            old = select(InboxItem.id).where(InboxItem.state != PENDING, col(InboxItem.applied_at) < cutoff)
            ids = list(session.exec(old.limit(limit)))
            if ids:
                session.exec(delete(InboxItem).where(col(InboxItem.id).in_(ids)))
            return len(ids)

    def _pending(self) -> list[_Row]:
        # A snapshot: on SQLite a look for work must not queue for the write lock behind an
        # ingest's long transaction (a second for 10,000 results) before it finds any.
        with read_session(self.engine) as session:
            query = select(InboxItem).where(InboxItem.state == PENDING).order_by(col(InboxItem.id)).limit(self.batch)
            return [
                _Row(r.id or 0, r.request_key, r.incident_id, r.actor, r.via, r.change, r.response_url)
                for r in session.exec(query)
            ]

    def _apply(self, incident_id: int, up_to: int, permitted: dict[str, bool], limit: int) -> list[_Done]:
        """One transaction: the incident's oldest pending requests (a few, so an ack never waits
        long for the write lock), in arrival order, each one Turn of the core, each marked in the
        transaction that makes its change. Returns what to tell whom."""
        results: list[_Done] = []
        now = utc(self.clock.now())
        with self._one_writer, session_scope(self.engine) as session:
            if not self._lock(session, incident_id):
                return []  # another replica is applying this incident's requests: they are its
            # Always the oldest pending ones, whoever looked before: that is what keeps the order.
            query = (
                select(InboxItem)
                .where(InboxItem.incident_id == incident_id, InboxItem.state == PENDING, col(InboxItem.id) <= up_to)
                .order_by(col(InboxItem.id))
                .limit(limit)
            )
            for row in session.exec(query).all():
                if row.actor not in permitted:
                    break  # committed late by another replica: asked about on the next look
                applied = self._apply_one(session, row, permitted[row.actor])
                row.state, row.outcome, row.applied_at = applied.state, applied.message, now
                row.change = {**row.change, "changed": applied.changed}
                session.add(row)
                results.append(_Done(applied, row.actor, row.via, row.response_url))
        return results

    def _lock(self, session: Session, incident_id: int) -> bool:
        """Take the incident's lock (PostgreSQL) without waiting for it; SQLite has one writer
        (BEGIN IMMEDIATE), so there the transaction already excludes every other."""
        if is_sqlite(self.engine):
            return True
        query = select(Incident.id).where(Incident.id == incident_id).with_for_update(skip_locked=True)
        if session.exec(query).first() is not None:
            return True
        # Locked by another replica, or no such incident (then its requests are refused below).
        return session.get(Incident, incident_id) is None

    def _apply_one(self, session: Session, row: InboxItem, permitted: bool) -> Applied:
        key = row.request_key
        if not permitted:
            what = str(row.change.get("what") or "change incidents")
            refused = f"⛔ Only responders ({self.describe()}) can {what}; nothing was changed."
            return Applied(key, row.incident_id, REFUSED, refused)
        source = "command" if row.via == "command" else "button"
        try:
            with session.begin_nested():  # a refused change leaves nothing behind, the others stand
                outcome: Outcome = self.core.apply(
                    session, row.incident_id, Actor(row.actor, source), decode(row.change["do"])
                )
        except SQLAlchemyError:
            raise  # the database failed, not the request: the whole batch waits for the next try
        except Exception as exc:  # IncidentError and friends: the person is told why
            if not isinstance(exc, ValueError):
                log.exception("applying Slack request %s failed", key)
            return Applied(key, row.incident_id, REFUSED, str(exc))
        return Applied(key, row.incident_id, DONE, outcome.message, outcome.changed)

    def _tell(self, done: _Done) -> None:
        """The waiting listener gets the outcome; with none waiting (a click, or a request recorded
        before a restart), the person gets it at their response URL when it is news to them. The
        same words to the same person about the same incident are said once (``AfterAck.spawn``)."""
        applied, via, url = done.applied, done.via, done.response_url
        waiters = self._waiters.pop(applied.key, [])
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(applied)
        if waiters or url is None or self.answer is None:
            return
        if applied.changed and via != "command":
            return  # the card and the thread show it
        ours = applied.state == DONE or applied.message.startswith("⛔")  # the core's words, or ours
        text = applied.message if ours else f"⚠️ {escape(applied.message)}"
        said = (done.actor, applied.incident_id, text) if not applied.changed else None
        self.answers.spawn(self.answer(url, text, applied.changed), key=said)


async def _first(*waits: Awaitable[Any], timeout: float | None = None) -> None:
    """Return when the first of ``waits`` is done (or after ``timeout``); cancel the rest."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
