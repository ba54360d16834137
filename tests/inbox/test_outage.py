"""A database outage says so once: the inbox applier retries several times a second, and logs one
warning when the database goes away and one when it is back, not a traceback per retry."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.domain.changes import Classify
from tests.db_outage import Outage, said_once
from tests.inbox.helpers import CLASSES, classified, inbox_for, open_incidents, request, rows


def test_an_outage_logs_one_warning_and_the_recorded_click_is_applied_after_it(
    tmp_path: Path, playbooks: Playbooks, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(tmp_path)
    engine = outage.engine
    [incident_id] = open_incidents(engine, playbooks, clock, 1)
    inbox = inbox_for(engine, playbooks, clock)
    asyncio.run(inbox.record(request(1, incident_id, Classify(CLASSES[0]))))  # acked, then the outage

    async def run() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(inbox.run(stop))
        await outage.for_attempts(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while rows(engine)[0].state == "pending" and loop.time() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await running

    with caplog.at_level(logging.WARNING, logger="slackbot"):
        asyncio.run(run())
    assert rows(engine)[0].state == "done" and len(classified(engine, incident_id)) == 1
    said_once(caplog, "the Slack inbox")
    engine.dispose()
