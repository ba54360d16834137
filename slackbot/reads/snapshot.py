"""A read-only unit of work: what a listing, App Home, ``/triage stats`` and ``/api/incidents`` read in.

``session_scope`` starts SQLite transactions with BEGIN IMMEDIATE, the write lock: a read in it
queued behind the outbox, the timers and the inbox, which write several times a second, and
SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms… between tries, so one request in a
hundred waited tens of milliseconds for a lock it never needed (bench/history.py: App Home and
``/api/incidents`` p99 10x their p50 on a loaded machine), and held up the writers while it read.
A plain BEGIN (``read_only``, slackbot/db/engine.py) reads a WAL snapshot beside the writers. On
PostgreSQL nothing changes: its reads never wait for writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """One consistent snapshot, no write lock; nothing it holds is written (rolled back at the end)."""
    with engine.connect().execution_options(read_only=True) as connection:
        yield connection


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """``read_connection`` for the ORM."""
    with read_connection(engine) as connection, Session(connection) as session:
        yield session
