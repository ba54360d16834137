"""The in-process timer driver.

APScheduler gives the cadence; the database gives the truth. Every tick asks the database for due
timers and fires them through ``TimerService`` (which claims each one atomically), so a restart,
a second replica or a missed tick can delay a timer by one tick but never lose or repeat it. The
first tick runs at start, so timers that came due while the process was down fire at once, and a
tick keeps firing batches until nothing is due (a backlog of thousands is one tick, not many).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from slackbot.incidents.timers import FireResult, TimerService

log = logging.getLogger(__name__)
# APScheduler logs every run of every job at INFO: four lines a second per replica at our cadence.
logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


class _QuietOverlap(logging.Filter):
    """A tick still draining a backlog makes APScheduler skip the next ticks (one at a time is the
    design, ``max_instances=1``) and warn about each; that is expected, so it is not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_QuietOverlap())


class TimerScheduler:
    def __init__(
        self,
        engine: Engine,
        timers: TimerService,
        worker_id: str,
        *,
        interval: float = 0.25,
        on_fired: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.timers = timers
        self.worker_id = worker_id
        self.interval = interval
        self.on_fired = on_fired
        self._scheduler: AsyncIOScheduler | None = None

    async def tick(self) -> FireResult:
        result = await asyncio.to_thread(self.timers.fire_due, self.engine, self.worker_id)
        if result.fired and self.on_fired is not None:
            self.on_fired()
        return result

    async def _safe_tick(self) -> None:
        try:
            await self.tick()
        except asyncio.CancelledError:
            # Shutting down mid-tick: the firing thread finishes its transaction (or rolls it back)
            # on its own, and whatever it did not fire is still due for the next process.
            log.debug("timer tick cancelled by shutdown")
        except Exception:  # a database blip must not stop the scheduler; the timers stay due
            log.exception("timer tick failed")

    def start(self) -> None:
        from datetime import UTC, datetime

        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._safe_tick,
            "interval",
            seconds=self.interval,
            id="fire-due-timers",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
