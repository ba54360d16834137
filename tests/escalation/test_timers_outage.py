"""Firing timers through a database outage: the scheduler ticks four times a second, so it says so once
(one warning when the database goes away, one when it is back, not a traceback per tick), and
the escalation that came due during it fires once after it."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.models import TimelineEvent
from slackbot.incidents.timers import TimerService
from slackbot.scheduler import TimerScheduler
from tests.db_outage import Outage, said_once
from tests.inbox.helpers import open_incidents


def escalations(outage: Outage, incident_id: int) -> int:
    with Session(outage.engine) as session:
        found = session.exec(
            select(TimelineEvent).where(TimelineEvent.incident_id == incident_id, TimelineEvent.kind == "escalated")
        )
        return len(list(found))


def test_an_outage_logs_one_warning_and_the_escalation_due_in_it_fires_once_after_it(
    tmp_path: Path, playbooks: Playbooks, runbook: Playbook, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(tmp_path)
    [incident_id] = open_incidents(outage.engine, playbooks, clock, 1)
    clock.advance(runbook.policy.classify_within + timedelta(seconds=1))  # due from the first tick on

    async def run() -> None:
        away = asyncio.create_task(outage.for_attempts(12))
        await asyncio.sleep(0)  # the database is gone before the first tick
        assert not outage.home.exists()
        scheduler = TimerScheduler(outage.engine, TimerService(playbooks, clock), "bot", interval=0.02)
        scheduler.start()
        try:
            await away
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while escalations(outage, incident_id) == 0 and loop.time() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # ten more ticks, any of which could fire it again
        finally:
            scheduler.stop()

    with caplog.at_level(logging.WARNING, logger="slackbot"):
        asyncio.run(run())
    assert escalations(outage, incident_id) == 1
    said_once(caplog, "firing timers")
    outage.engine.dispose()
