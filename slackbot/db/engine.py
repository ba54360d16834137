"""Engine and sessions. SQLite (WAL) by default, PostgreSQL by URL; the same code runs on both."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

# What a request meets when the database is away (stopped, restarting, unreachable, the pool
# exhausted while it is): nothing about the request is wrong, the same request succeeds later.
# SQLite's "database is locked" is an OperationalError too, and just as retryable.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER_SECONDS = 5
log = logging.getLogger(__name__)

# PostgreSQL on a host that does not answer (down, partitioned, a firewall dropping packets: not a
# stopped server, which refuses at once) would otherwise hold a request for minutes: libpq waits
# for a connection without limit and the kernel retransmits on a dead one for about 15 minutes.
# Each bound fails the request with UNAVAILABLE (a 503 the sender retries) instead.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 3,  # seconds (libpq's least is 2); a LAN connection takes milliseconds
    # An established connection whose host vanished: unacknowledged sends fail after 10 s, and
    # an idle one is probed every few seconds, so pool_pre_ping does not hang on it either.
    "tcp_user_timeout": 10_000,  # ms
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    # A statement stuck behind another transaction's lock fails instead of queueing requests
    # behind it. No statement_timeout: a migration's index build on a big table may take minutes.
    "options": "-c lock_timeout=10000",
}


class OutageLog:
    """What a loop that retries several times a second logs about its database: one WARNING when
    it first finds it away and one when it is back, instead of a traceback per retry that buries
    everything else during an outage of minutes. Any other error keeps its traceback."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self._since: float | None = None  # monotonic time the outage was first seen

    def failed(self, exc: BaseException, message: str) -> None:
        """Call from the ``except`` block; ``message`` is logged with the traceback for other errors."""
        if not isinstance(exc, UNAVAILABLE):
            self.logger.exception(message)
            return
        if self._since is None:
            self._since = time.monotonic()
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            self.logger.warning("%s: the database is unavailable (%s); retrying until it is back", self.what, reason)

    def succeeded(self) -> None:
        if self._since is not None:
            down, self._since = time.monotonic() - self._since, None
            self.logger.warning("%s: the database is back after %.0f s", self.what, down)


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver we ship), not psycopg2."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers (the card renderer, /triage list) run while the ingest writes.
            dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below own transactions
            cursor = dbapi_conn.cursor()
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: a deferred transaction that reads then writes can fail
            # with "database is locked" instead of waiting its turn. A connection opened with
            # execution_options(read_only=True) only reads: a plain BEGIN gives it a snapshot
            # without queueing behind (or holding up) the writers.
            begin = "BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE"
            # Straight to the driver: every transaction starts here, and a statement through
            # SQLAlchemy (compile, events, a result object) cost more than the BEGIN itself. Its
            # errors are wrapped as SQLAlchemy's would be, so "database is locked" stays an
            # OperationalError the callers retry (UNAVAILABLE).
            try:
                conn.connection.driver_connection.execute(begin)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc

        return engine
    connect_args = {**POSTGRES_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args, **kwargs)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error, never leave partial rows."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class Checkpoints:
    """Copies SQLite's write-ahead log into the database file on a thread of its own, soon after
    a large commit, so that the commit (and whoever waits for it: CI for its 202) does not.

    SQLite's own checkpoint runs inside the commit that takes the log past ``wal_autocheckpoint``
    pages; after a 10,000-result ingest that copy was a tenth of a second of the request. A
    passive checkpoint here lets writers go on appending to the log while it copies, and requests
    for the same engine while one is queued are one checkpoint."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wal-checkpoint")
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self.done = 0  # checkpoints run (tests wait on it)

    def soon(self, engine: Engine) -> None:
        if not is_sqlite(engine):
            return
        with self._lock:
            if id(engine) in self._queued:
                return
            self._queued.add(id(engine))
        self._thread.submit(self._checkpoint, engine)

    def _checkpoint(self, engine: Engine) -> None:
        with self._lock:
            self._queued.discard(id(engine))
        try:
            # On the driver's connection: SQLAlchemy would open a transaction first, and SQLite
            # checkpoints only outside one.
            connection = engine.raw_connection()
            try:
                driver = connection.driver_connection
                assert driver is not None
                driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except (SQLAlchemyError, sqlite3.Error) as exc:  # the next commit past the threshold does it
            log.debug("checkpointing the write-ahead log failed: %s", exc)
        finally:
            self.done += 1

    def settled(self, timeout: float = 30.0) -> None:
        """Return once every checkpoint asked for so far has run."""
        self._thread.submit(lambda: None).result(timeout)


CHECKPOINTS = Checkpoints()
