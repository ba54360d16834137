"""SQLite transactions as the bot starts them: writers take the lock at BEGIN, readers do not."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from slackbot.db.engine import UNAVAILABLE, make_engine


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
