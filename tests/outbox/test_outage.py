"""A database outage says so once: the outbox claim loop retries several times a second, and logs
one warning when the database goes away and one when it is back, not a traceback per retry."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slackbot.clock import FakeClock
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.incidents.effects import Effects
from slackbot.outbox.worker import OutboxWorker
from tests.db_outage import Outage, said_once


def test_an_outage_logs_one_warning_and_the_queued_effect_goes_out_after_it(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage(tmp_path)
    engine = outage.engine
    delivered: list[dict[str, Any]] = []

    async def deliver(item: OutboxItem) -> dict[str, Any]:
        delivered.append(item.payload)
        return {}

    worker = OutboxWorker(engine, clock, {EffectKind.THREAD_POST: deliver}, worker_id="w1")

    async def run() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop, idle=0.02))
        await outage.for_attempts(8)
        effects = Effects(now=clock.now())
        effects.enqueue(EffectKind.THREAD_POST, "after-the-outage", {"text": "back"}, lane="L1")
        with Session(engine) as session:
            effects.flush(session)
            session.commit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not delivered and loop.time() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await running

    with caplog.at_level(logging.WARNING, logger="slackbot"):
        asyncio.run(run())
    assert delivered == [{"text": "back"}]
    said_once(caplog, "the outbox")
    engine.dispose()
