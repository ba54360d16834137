"""The outbox rig: a SQLite database, a virtual clock and the Slack emulator on that clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import OutboxItem
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.worker import OutboxWorker
from slackbot.sources.ingest import IngestService
from tests.factories import parsed

NIGHTLY = "C0NIGHTLY"
OPS = "C0OPS"


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    emulator: SlackEmulator
    playbooks: Playbooks

    def worker(self, name: str, max_attempts: int = 8) -> OutboxWorker:
        client = AsyncWebClient(token=self.emulator.bot_token, base_url=self.emulator.base_url)
        worker = OutboxWorker(self.engine, self.clock, {}, worker_id=name, ops_channel=OPS, max_attempts=max_attempts)
        worker.handlers.update(SlackDeliveries(self.engine, client, self.playbooks, self.clock, name).handlers())
        return worker

    def rows(self) -> list[OutboxItem]:
        with Session(self.engine) as session:
            return list(session.exec(select(OutboxItem).order_by(OutboxItem.id)))  # type: ignore[arg-type]

    def drain(self, worker: OutboxWorker, *, seconds: float = 600, tick: float = 1.0) -> None:
        """Step the worker while moving virtual time forward, like the running loop would."""

        async def go() -> None:
            elapsed = 0.0
            while elapsed < seconds and any(r.state in ("pending", "sending") for r in self.rows()):
                await worker.step()
                self.clock.advance(tick)
                elapsed += tick

        asyncio.run(go())


def _rig(engine: Engine, playbooks: Playbooks) -> Iterator[Rig]:
    clock = FakeClock()
    with SlackEmulator(clock=lambda: clock.now().timestamp()) as emulator:
        seed_workspace(emulator, playbooks)
        yield Rig(engine, clock, emulator, playbooks)


@pytest.fixture
def rig(sqlite_engine: Engine, playbooks: Playbooks) -> Iterator[Rig]:
    yield from _rig(sqlite_engine, playbooks)


@pytest.fixture
def any_rig(engine: Engine, playbooks: Playbooks) -> Iterator[Rig]:
    """The rig on SQLite and on PostgreSQL, whose row locks (FOR UPDATE, SKIP LOCKED) differ."""
    yield from _rig(engine, playbooks)


def ingest(rig: Rig, *results: dict[str, object], run_id: str = "9187") -> None:
    IngestService(rig.playbooks, rig.clock).ingest_report(rig.engine, parsed(*results, run_id=run_id))
