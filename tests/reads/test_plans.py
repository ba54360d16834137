"""With a long history the read paths must use indexes: SQLite's query plans for every statement
``/triage list``, App Home, ``/triage stats``, ``/api/incidents`` and the archive run, on 20,000
incidents. Plans, not timings: a plan that reads a whole table is wrong however fast the machine."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.retention import Cutoffs, archive_rows
from slackbot.incidents.digests import stats_answer
from slackbot.reads.home import load_home
from slackbot.reads.paging import incidents_page
from slackbot.reads.queries import first_incidents, get_incident
from slackbot.reads.stats import FACTS_CACHE
from tests.pgserver import PostgresServer
from tests.reads.conftest import fill_history

CLOCK = FakeClock()
BIG_TABLES = ("incidents", "occurrences", "timeline")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'history.db'}")
    upgrade(engine)
    fill_history(engine, CLOCK, incidents=20_000, occurrences=100_000, open_incidents=300)
    yield engine
    engine.dispose()


def statements(engine: Engine, work: Callable[[], Any]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE", "WITH")):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen, "the path ran no query"
    return seen


def full_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """Plan lines that read a whole big table. An ordered walk of an index is fine when the
    statement stops after a few rows (LIMIT) and needs no sort of its own."""
    with engine.connect() as connection:
        plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    bounded = " LIMIT " in statement.upper() and not any("TEMP B-TREE FOR ORDER BY" in line for line in plan)
    bad = []
    for line in plan:
        match = re.match(r"SCAN (\w+)( USING (COVERING )?INDEX \w+)?$", line)
        if match and match.group(1) in BIG_TABLES and not (match.group(2) and bounded):
            bad.append(f"{line}  <-  {statement.split()[0:12]}")
    return bad


def read(engine: Engine, body: Callable[[Session], Any]) -> Callable[[], Any]:
    def work() -> Any:
        with session_scope(engine) as session:
            return body(session)

    return work


def test_every_read_path_uses_indexes(history: Engine, playbooks: Playbooks) -> None:
    now = CLOCK.now()
    FACTS_CACHE.clear()  # /triage stats reads its windows, not a copy kept by an earlier test
    cursor = read(history, lambda s: incidents_page(s, status="open", limit=50).next_cursor)()
    paths: dict[str, Callable[[], Any]] = {
        "/triage list": read(history, lambda s: first_incidents(s, 30, status="open")),
        "/triage list mine": read(history, lambda s: first_incidents(s, 30, status="open", assignee="U00000003")),
        "/triage list overdue": read(history, lambda s: first_incidents(s, 30, overdue_at=now)),
        "App Home": read(history, lambda s: load_home(s, "U00000003", now)),
        "/triage stats": lambda: stats_answer(history, playbooks, CLOCK),
        "/api/incidents?status=open": read(history, lambda s: incidents_page(s, status="open")),
        "/api/incidents?status=open&cursor": read(history, lambda s: incidents_page(s, status="open", cursor=cursor)),
        "/api/incidents": read(history, lambda s: incidents_page(s)),
        "/api/incidents?class": read(history, lambda s: incidents_page(s, failure_class="algorithm_regression")),
        "/triage show": read(history, lambda s: get_incident(s, "INC-19999")),
    }
    problems = {name: [p for s, args in statements(history, work) for p in full_scans(history, s, args)]
                for name, work in paths.items()}  # fmt: skip
    assert {name: found for name, found in problems.items() if found} == {}


@pytest.fixture(scope="module")
def pg_history(postgres: PostgresServer) -> Iterator[Engine]:
    engine = make_engine(postgres.create_database("reads_plans"))
    upgrade(engine)
    fill_history(engine, CLOCK, incidents=20_000, occurrences=60_000, open_incidents=300)
    yield engine
    engine.dispose()


def pg_seq_scans(engine: Engine, statement: str, parameters: Any) -> list[str]:
    """PostgreSQL's plan, with the statistics its autovacuum keeps (the fill ANALYZEs): a
    sequential scan of a big table, or a hashed subplan built from one, reads it whole."""
    with engine.connect() as connection:
        plan = [row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)]
    whole = re.compile(rf"Seq Scan on ({'|'.join(BIG_TABLES)})\b")
    return [f"{line.strip()}  <-  {statement.split()[0:12]}" for line in plan if whole.search(line)]


def test_stats_and_the_api_use_indexes_on_postgresql(pg_history: Engine, playbooks: Playbooks) -> None:
    """/triage stats once asked whether each incident was reclassified with EXISTS, which
    PostgreSQL answered by hashing every reclassification ever recorded (a scan of the timeline)."""
    FACTS_CACHE.clear()
    paths: dict[str, Callable[[], Any]] = {
        "/triage stats": lambda: stats_answer(pg_history, playbooks, CLOCK),
        "/api/incidents?status=open": read(pg_history, lambda s: incidents_page(s, status="open")),
    }
    problems = {name: [p for s, args in statements(pg_history, work) for p in pg_seq_scans(pg_history, s, args)]
                for name, work in paths.items()}  # fmt: skip
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_archive_run_walks_incidents_by_key(history: Engine, tmp_path: Path) -> None:
    long_ago = CLOCK.now().replace(year=2025, month=11)
    work = lambda: archive_rows(  # noqa: E731
        history, Cutoffs(long_ago, long_ago), out=tmp_path / "a.jsonl.gz", now=CLOCK.now(), dry_run=True, batch=2000
    )
    found = [p for s, args in statements(history, work) for p in full_scans(history, s, args)]
    assert found == []
