"""The composition root's product: every long-lived service, built once per process.

Handlers receive a ``Core`` and call its services; nothing builds its own engine or client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from slackbot.clock import Clock, SystemClock
from slackbot.config import Runbook, load_runbook
from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade
from slackbot.services.ingest import IngestService
from slackbot.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    runbook: Runbook
    engine: Engine
    clock: Clock
    ingest: IngestService = field(init=False)

    status: dict[str, object] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.ingest = IngestService(self.runbook, self.clock)

    @property
    def invariant_prefixes(self) -> frozenset[str]:
        return frozenset(i.prefix for i in self.runbook.taxonomy.invariants)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Register a wake-up (the outbox worker) for when new effects were committed."""
        self._listeners.append(listener)

    def readiness_extras(self) -> dict[str, object]:
        """Dependencies beyond the database that /readyz reports (bd version, Slack auth, …)."""
        return dict(self.status)

    def notify_committed(self) -> None:
        for listener in self._listeners:
            listener()

    @property
    def runbooks_dir(self) -> Path:
        return self.settings.runbooks_dir


def build_core(settings: Settings, *, clock: Clock | None = None, migrate: bool = True) -> Core:
    """Load and validate the runbook first (an invalid runbook stops the bot before it touches
    anything), then open the database and bring its schema up to date."""
    runbook = load_runbook(settings.runbooks_dir)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Core(settings=settings, runbook=runbook, engine=engine, clock=clock or SystemClock())
