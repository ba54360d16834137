"""``/triage stats`` keeps the window it read, keyed by the oldest and newest incident and timeline
ids: asked again with nothing changed it reads four ids, and it still says what a fresh read says
after a change, as time moves the window, and at most 30 s after a change the ids cannot see."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from slackbot.clock import FakeClock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.reads.stats import FACTS_CACHE, ClassStats, StatsRefresher, StatsService, WindowStats
from tests.reads.conftest import fill_history


@pytest.fixture
def filled(engine: Engine, clock: FakeClock) -> Engine:
    fill_history(engine, clock, incidents=600, occurrences=3_000, open_incidents=60)
    return engine


def numbers(windows: list[WindowStats]) -> list[tuple[Any, ...]]:
    def line(s: ClassStats) -> tuple[Any, ...]:
        return (s.key, s.opened, s.classified, s.reclassified, s.acknowledged, s.resolved, s.classify_n,
                s.within_target, s.classify_median, s.classify_p90, s.mtta, s.mttr)  # fmt: skip

    return [(w.days, w.since, [line(s) for s in [*w.classes, w.total]]) for w in windows]


def fresh(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> list[tuple[Any, ...]]:
    """What the database says now, read again."""
    FACTS_CACHE.clear()
    return numbers(StatsService(playbooks, clock).report(engine))


def selects(engine: Engine, work: Callable[[], Any]) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_asked_again_with_nothing_changed_it_reads_only_the_ids(
    filled: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    service = StatsService(playbooks, clock)
    first = numbers(service.report(filled))
    again: list[tuple[Any, ...]] = []
    statements = selects(filled, lambda: again.extend(numbers(service.report(filled))))
    assert again == first
    assert len(statements) == 1 and statements[0].count("max(") == 2, statements
    assert "created_at" not in statements[0]


def test_a_classification_shows_in_the_next_answer(filled: Engine, playbooks: Playbooks, clock: FakeClock) -> None:
    service = StatsService(playbooks, clock)
    before = service.report(filled)
    with session_scope(filled) as session:
        incident = session.exec(
            select(Incident)
            .where(col(Incident.failure_class).is_(None), col(Incident.created_at) >= clock.now() - timedelta(days=7))
            .limit(1)
        ).one()
        # What the core writes when someone classifies: the incident and its timeline row.
        incident.failure_class = "infra_ci"
        incident.class_source = "human"
        incident.classified_at = clock.now()
        session.add(incident)
        session.add(
            TimelineEvent(incident_id=incident.id, at=clock.now(), actor="U1", source="button", kind="classified",
                          message="Classified infra_ci by U1")
        )  # fmt: skip
    after = service.report(filled)
    assert after[0].total.classified == before[0].total.classified + 1
    assert numbers(after) == fresh(filled, playbooks, clock)


def test_the_window_moves_with_the_clock_while_nothing_changes(
    filled: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    with session_scope(filled) as session:
        oldest = as_utc(
            session.exec(
                select(func.min(Incident.created_at)).where(
                    col(Incident.created_at) >= clock.now() - timedelta(days=30)
                )
            ).one()
        )
    clock.set(oldest + timedelta(days=30))  # the oldest incident of the month is the window's first
    service = StatsService(playbooks, clock)
    inside = service.report(filled)
    clock.advance(timedelta(microseconds=1))
    outside = service.report(filled)
    assert outside[1].total.opened == inside[1].total.opened - 1
    assert numbers(outside) == fresh(filled, playbooks, clock)


def test_a_change_no_id_shows_is_in_the_answer_within_30_seconds(
    filled: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    service = StatsService(playbooks, clock)
    before = service.report(filled)
    with session_scope(filled) as session:  # by hand: no timeline row
        incident = session.exec(
            select(Incident)
            .where(col(Incident.acknowledged_at).is_(None), col(Incident.created_at) >= clock.now() - timedelta(days=7))
            .limit(1)
        ).one()
        incident.acknowledged_at = clock.now()
        session.add(incident)
    clock.advance(30)
    after = service.report(filled)
    assert after[0].total.acknowledged == before[0].total.acknowledged + 1
    assert numbers(after) == fresh(filled, playbooks, clock)


def test_after_a_reclassification_it_reads_only_that_incident(
    filled: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    service = StatsService(playbooks, clock)
    before = service.report(filled)
    with session_scope(filled) as session:
        week = clock.now() - timedelta(days=7)
        incident = session.exec(
            select(Incident).where(col(Incident.failure_class).is_not(None), col(Incident.created_at) >= week).limit(1)
        ).one()
        was = incident.failure_class
        incident.failure_class = next(c for c in playbooks.get(incident.playbook).classes if c != was)
        session.add(incident)
        session.add(
            TimelineEvent(incident_id=incident.id, at=clock.now(), actor="U1", source="button", kind="reclassified",
                          message=f"Reclassified {incident.failure_class} (was {was}) by U1")
        )  # fmt: skip
    after: list[WindowStats] = []
    statements = selects(filled, lambda: after.extend(service.report(filled)))
    window_reads = [s for s in statements if "incidents.created_at >=" in s]
    assert window_reads and all(" IN (" in s for s in window_reads), window_reads
    by_class = {s.key: s for s in after[0].classes}
    assert by_class[incident.failure_class].opened == 1 + next(
        (s.opened for s in before[0].classes if s.key == incident.failure_class), 0
    )
    assert after[0].total.reclassified >= before[0].total.reclassified
    assert numbers(after) == fresh(filled, playbooks, clock)


ASKED: contextvars.ContextVar[bool] = contextvars.ContextVar("asked", default=False)


def test_the_refresher_reads_the_month_so_that_no_request_does(
    filled: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    """Read at start-up with nobody asking, read again before ``CACHE_FOR`` runs out: a request
    after ``CACHE_FOR`` answers from the newest read, the change no id shows included, without
    reading the month itself."""
    service = StatsService(playbooks, clock)
    whole: list[bool] = []  # for each whole read of the window: was it a request's?
    done: list[bool] = []  # the background reads finished (their connection back in the pool)

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "incidents.created_at >=" in statement and " IN (" not in statement and " CASE WHEN " in statement:
            whole.append(ASKED.get())

    def returned(*_: Any) -> None:
        if not ASKED.get() and threading.current_thread() is not threading.main_thread():
            done.append(True)

    async def until(condition: Callable[[], bool], what: str) -> None:
        deadline = asyncio.get_running_loop().time() + 20
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, what
            await asyncio.sleep(0.01)

    async def ask() -> list[WindowStats]:
        ASKED.set(True)  # the worker thread runs in a copy of this context: its reads are the request's
        try:
            return await asyncio.to_thread(service.report, filled)
        finally:
            ASKED.set(False)

    async def scenario() -> None:
        stop = asyncio.Event()
        FACTS_CACHE.clear()
        refresher = asyncio.create_task(StatsRefresher(filled, clock).run(stop, poll=0.01))
        await until(lambda: len(whole) == len(done) == 1, "no read at start-up")
        before = await ask()
        assert whole == [False], "the first request read the month itself"
        with session_scope(filled) as session:  # by hand: no timeline row, no id moves
            incident = session.exec(
                select(Incident)
                .where(
                    col(Incident.acknowledged_at).is_(None), col(Incident.created_at) >= clock.now() - timedelta(days=7)
                )
                .limit(1)
            ).one()
            incident.acknowledged_at = clock.now()
            session.add(incident)
        clock.advance(FACTS_CACHE.REFRESH_EVERY)
        await until(lambda: len(whole) == len(done) == 2, "no refresh before CACHE_FOR ran out")
        clock.advance(FACTS_CACHE.CACHE_FOR - FACTS_CACHE.REFRESH_EVERY + timedelta(seconds=1))
        after = await ask()
        assert whole == [False, False], "a request after CACHE_FOR read the month itself"
        assert after[0].total.acknowledged == before[0].total.acknowledged + 1
        stop.set()
        await asyncio.wait_for(refresher, 5)

    event.listen(filled, "before_cursor_execute", record)
    event.listen(filled.pool, "checkin", returned)
    try:
        asyncio.run(scenario())
    finally:
        event.remove(filled, "before_cursor_execute", record)
        event.remove(filled.pool, "checkin", returned)
    expected = numbers(StatsService(playbooks, clock).report(filled))
    assert expected == fresh(filled, playbooks, clock)
    # Stopped: without a refresher, a copy CACHE_FOR old is read again by the request.
    clock.advance(FACTS_CACHE.CACHE_FOR)
    statements = selects(filled, lambda: service.report(filled))
    assert any(" CASE WHEN " in s and "incidents.created_at >=" in s and " IN (" not in s for s in statements)
