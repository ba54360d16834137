"""SQLite transactions as the bot starts them: writers take the lock at BEGIN, readers do not;
and a PostgreSQL host that never answers fails a request fast."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from handlers.http import api
from handlers.http.unavailable import exception_handlers
from slackbot.db.engine import UNAVAILABLE, make_engine
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    yield engine, path
    engine.dispose()


def _count(engine: Engine) -> int:
    with engine.connect().execution_options(read_only=True) as connection, connection.begin():
        return int(connection.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_a_writer_held_elsewhere_is_a_retryable_database_error_and_readers_still_read(
    database: tuple[Engine, Path],
) -> None:
    engine, path = database
    other = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (2)")
    try:
        with engine.connect() as connection:
            connection.connection.driver_connection.execute("PRAGMA busy_timeout=50")  # not 30 s
            with pytest.raises(UNAVAILABLE, match="database is locked"):
                connection.begin()
        assert _count(engine) == 1  # a snapshot: the other writer has not committed
    finally:
        other.execute("COMMIT")
        other.close()
    assert _count(engine) == 2


def test_a_failed_unit_of_work_leaves_no_row(database: tuple[Engine, Path]) -> None:
    engine, _ = database
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (3)"))
        raise RuntimeError("half way")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (4)"))
    assert _count(engine) == 2


def test_a_postgresql_host_that_never_answers_is_a_503_within_seconds() -> None:
    """A host that takes the connection and never says a word (a hung server, a half-open
    network path): without a bound libpq waits for it for ever, and so did every request."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes each handshake; nobody ever reads or answers
        host, port = silent.getsockname()
        settings = Settings(
            TRIAGE_DATABASE_URL=f"postgresql://triage:secret@{host}:{port}/triage", TRIAGE_RUNBOOKS_DIR=RUNBOOKS
        )
        runtime = build_runtime(settings, migrate=False)
        app = Starlette(routes=api.routes(runtime), exception_handlers=exception_handlers())
        try:
            with serve(app) as url:
                begun = time.monotonic()
                response = httpx.get(url + "/api/incidents?status=open", timeout=60)
                took = time.monotonic() - begun
        finally:
            runtime.engine.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["error"].startswith("the database is unavailable")
    assert response.headers["Retry-After"] == "5"
    assert took < 6, f"answered after {took:.1f} s"
