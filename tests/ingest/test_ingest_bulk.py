"""The shortcuts of a fast ingest never show: each new incident's answer, card and timer name its
own row, new or seen again (ids are learned without reading the rows back on SQLite), the garbage collector runs
again once an ingest is over, whether it succeeded or not, and the write-ahead log is checkpointed by the next
writer instead of before the answer."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import Checkpoints, make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, OutboxItem, Timer
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result


def test_each_new_incident_is_answered_with_its_own_row(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, parsed(*(result(f"BID-{n:03d}", "TENANT-001") for n in range(5)), run_id="1"))
    scenarios = [f"SCH-{n:03d}" for n in range(40)]
    again = [result(f"BID-{n:03d}", "TENANT-001") for n in range(0, 5, 2)]  # recurrences among them
    outcome = service.ingest_report(
        engine,
        parsed(*again, *(result(s, "STATE-001", test_name=f"{s} case") for s in scenarios), run_id="2"),
    )

    answered = {i.key: i.scenario_id for i in outcome.incidents}
    assert sorted(answered.values()) == ["BID-000", "BID-002", "BID-004", *scenarios]
    with Session(engine) as session:
        stored = {f"INC-{i.id}": i.scenario_id for i in session.exec(select(Incident))}
        cards = {f"INC-{o.incident_id}" for o in session.exec(select(OutboxItem).where(OutboxItem.kind == "card"))}
        timers = {f"INC-{t.incident_id}" for t in session.exec(select(Timer))}
    assert {key: stored[key] for key in answered} == answered
    assert set(answered) <= cards and set(answered) <= timers


def test_the_collector_runs_again_after_an_ingest(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    assert gc.isenabled()
    service.ingest_report(sqlite_engine, parsed(result("BID-001", "TENANT-001")))
    assert gc.isenabled()

    def fail(*_: object) -> None:
        raise RuntimeError("the caller's own rows failed")

    with pytest.raises(RuntimeError):
        service.ingest_report(sqlite_engine, parsed(result("BID-002", "TENANT-001"), run_id="2"), then=fail)
    assert gc.isenabled()


def test_an_ingest_answers_before_the_log_is_checkpointed(
    playbooks: Playbooks, tmp_path: Path, clock: FakeClock
) -> None:
    """Copying SQLite's write-ahead log into the database file comes after the ingest's commit, on
    a thread of its own, not inside the commit CI waits for; the ingest's connection goes back to
    checkpointing as before."""
    path = tmp_path / "triage.db"
    migrated = make_engine(f"sqlite:///{path}")
    upgrade(migrated)
    migrated.dispose()  # the last connection closed: the log is in the file, the file complete
    engine = make_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA wal_autocheckpoint=5"))
    size = path.stat().st_size
    asked: list[Engine] = []
    try:
        report = parsed(*(result(f"BID-{n:03d}", "TENANT-001") for n in range(40)))
        IngestService(playbooks, clock, checkpoint=asked.append).ingest_report(engine, report)
        assert path.stat().st_size == size  # 40 incidents and their rows: far more than 5 pages
        assert asked == [engine]  # and the checkpoint was asked for, once committed

        with session_scope(engine) as session:
            assert session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 5
        checkpoints = Checkpoints()
        checkpoints.soon(engine)
        checkpoints.settled()
        assert checkpoints.done == 1
        assert path.stat().st_size > size
        with Session(engine) as session:
            assert len(session.exec(select(Incident)).all()) == 40

        def fail(*_: object) -> None:
            raise RuntimeError("the caller's own rows failed")

        with pytest.raises(RuntimeError):  # rolled back: its connection checkpoints again too
            IngestService(playbooks, clock, checkpoint=asked.append).ingest_report(
                engine, parsed(result(), run_id="2"), then=fail
            )
        assert asked == [engine]  # nothing committed, nothing to copy
        with session_scope(engine) as session:
            assert session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 5
    finally:
        engine.dispose()


def test_a_bot_whose_only_writes_are_ingests_still_checkpoints_its_log(
    playbooks: Playbooks, tmp_path: Path, clock: FakeClock
) -> None:
    """No Slack token, no timer due: nobody else commits, and the log is still copied into the
    database file after each ingest (it would otherwise grow without end)."""
    path = tmp_path / "triage.db"
    migrated = make_engine(f"sqlite:///{path}")
    upgrade(migrated)
    migrated.dispose()
    engine = make_engine(f"sqlite:///{path}")
    size = path.stat().st_size
    checkpoints = Checkpoints()
    service = IngestService(playbooks, clock, checkpoint=checkpoints.soon)
    try:
        report = parsed(*(result(f"BID-{n:03d}", "TENANT-001") for n in range(40)))
        service.ingest_report(engine, report)
        checkpoints.settled()
        assert checkpoints.done == 1
        assert path.stat().st_size > size
    finally:
        engine.dispose()


def test_a_large_ingest_has_a_page_cache_for_its_writes_and_gives_it_back(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    """SQLite's default page cache (2,000 KiB) could not hold a 1,000-result ingest's index pages
    in a database of 100,000 incidents: it spilled them into the log mid-transaction and wrote
    them again at the commit. The ingest's connection gets room for its writes, for the
    transaction only: the pool's connections keep the default afterwards, whatever the outcome."""
    seen: list[int] = []

    def look(session: Session, *_: object) -> None:
        seen.append(int(session.connection().exec_driver_sql("PRAGMA cache_size").scalar() or 0))

    def fail(session: Session, *_: object) -> None:
        look(session)
        raise RuntimeError("the caller's own rows failed")

    service = IngestService(playbooks, clock)
    report = parsed(*(result(f"BID-{n:03d}", "TENANT-001", message=f"case {n}") for n in range(600)), run_id="1")
    service.ingest_report(sqlite_engine, report, then=look)
    with pytest.raises(RuntimeError):
        service.ingest_report(sqlite_engine, parsed(result("SCH-001", "TENANT-001"), run_id="2"), then=fail)
    service.ingest_report(sqlite_engine, parsed(result("SCH-002", "TENANT-001"), run_id="3"), then=look)
    assert seen == [-8 * 600, -2000, -2000]  # KiB; one result's 8 KiB is less than the default
    connections = [sqlite_engine.raw_connection() for _ in range(3)]  # the pool's, and a new one
    try:
        assert {c.driver_connection.execute("PRAGMA cache_size").fetchone()[0] for c in connections} == {-2000}
    finally:
        for connection in connections:
            connection.close()
