"""A history filled as bench/history.py fills it (raw inserts in one transaction), at test size."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from bench.history import Filled, fill
from slackbot.clock import FakeClock


def fill_history(engine: Engine, clock: FakeClock, incidents: int, occurrences: int, open_incidents: int) -> Filled:
    now: datetime = clock.now().replace(tzinfo=None)
    return fill(engine, incidents=incidents, occurrences=occurrences, open_incidents=open_incidents, now=now)
