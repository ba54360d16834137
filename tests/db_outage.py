"""A SQLite database that goes away and comes back, and what a loop logged about it (the outage
tests of the inbox applier and the outbox claim loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade


class Outage:
    def __init__(self, tmp_path: Path) -> None:
        self.home, self.away = tmp_path / "db", tmp_path / "away"
        self.home.mkdir()
        # Every session connects anew (no pool): moving the directory away is the database going away.
        self.engine: Engine = make_engine(f"sqlite:///{self.home / 'triage.db'}", poolclass=NullPool)
        upgrade(self.engine)
        self.attempts = 0

        def attempted(*args: object) -> None:
            self.attempts += 1

        event.listen(self.engine, "do_connect", attempted)

    async def for_attempts(self, count: int, timeout: float = 10) -> None:
        """Away until ``count`` more connections were tried (several polls met no database), then back."""
        self.home.rename(self.away)
        wanted = self.attempts + count
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.attempts < wanted and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert self.attempts >= wanted, f"{self.attempts} connection attempts"
        self.away.rename(self.home)


def said_once(caplog: pytest.LogCaptureFixture, what: str) -> None:
    """One warning when the database went away and one when it came back; no traceback."""
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("slackbot")]
    assert len(said) == 2, said
    (down_level, down), (back_level, back) = said
    assert down_level == "WARNING" and down.startswith(f"{what}: the database is unavailable ("), down
    assert back_level == "WARNING" and back.startswith(f"{what}: the database is back after "), back
    assert not [r for r in caplog.records if r.exc_info]
