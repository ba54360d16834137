"""Work a Slack interaction triggers, run after its ack: never ahead of an ack.

Slack gives every request 3 seconds and retries (or shows the user an error) when the ack is late;
the card edit and thread post a click causes have no such deadline. So the two are scheduled
apart, with the acks first:

- **Ack first.** ``AckFirst`` notes every Slack request as it arrives. Work after an ack waits
  until requests have stopped arriving for a moment (``quiet``, 20 ms), or until it has waited
  ``max_delay`` seconds (``TRIAGE_AFTER_ACK_MAX_DELAY``). At the rates people click that wait is
  the quiet moment itself; under a burst the clicks are all acked as fast as Bolt alone would ack
  them, and their changes follow when the burst ends (bench/ack_latency.py measures both). On the
  bot's one event loop the change (a database transaction) and the next ack compete for the same
  core and the same GIL, so without this each change would delay the acks behind it.
- **Durable, in order.** What a request asks for is recorded in the inbox before its ack
  (``slackbot.inbox``), and applied from there once the gate opens: in arrival order per
  incident, exactly once, by this or any replica, and after a crash by the next start. Nothing a
  listener acked waits only in memory.
- **Small.** Listeners copy out the few values a change needs, record them and return, so Bolt
  lets go of the request at once: a pending request holds its parsed payload (a card is hundreds
  of objects), and thousands of them made full garbage collections pause the acking loop 60-200 ms.
- **Answers beside.** Ephemeral answers (``AfterAck.spawn``) go out as tasks of their own, gated the
  same way, so a slow response URL never delays a change or an ack. They are not durable: a crash
  can lose a reply, never a change. ``close`` sends what is pending before the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger(__name__)


class AckFirst:
    """Tells work after an ack when it may run: once Slack requests pause, or after ``max_delay``."""

    def __init__(self, *, quiet: float = 0.02, max_delay: float = 10.0) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self._last = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._quiet = asyncio.Event()
        self._check: asyncio.TimerHandle | None = None
        self.closing = False

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (a new server, in tests) starts quiet and open
            self._loop, self._quiet, self._check, self.closing = loop, asyncio.Event(), None, False
            self._quiet.set()

    def arrived(self) -> None:
        """A Slack request came in: work after acks waits until requests pause."""
        self._bind()
        self._last = time.monotonic()
        self._quiet.clear()
        if self._check is None and self._loop is not None:
            self._check = self._loop.call_later(self.quiet, self._look)

    def _look(self) -> None:
        idle = time.monotonic() - self._last
        if idle >= self.quiet:
            self._check = None
            self._quiet.set()
        elif self._loop is not None:
            self._check = self._loop.call_later(self.quiet - idle, self._look)

    @property
    def open(self) -> bool:
        """Work after acks may run now (requests paused, or the process is stopping)."""
        return self.closing or self._quiet.is_set()

    async def turn(self, since: float) -> None:
        """Return when work queued at ``since`` (time.monotonic) may run."""
        self._bind()
        if self.closing or self._quiet.is_set():
            return
        remaining = self.max_delay - (time.monotonic() - since)
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), timeout=remaining)

    def close(self) -> None:
        """From now on nothing waits (the process is stopping)."""
        self.closing = True
        self._quiet.set()


class AfterAck:
    """Answers to Slack (ephemeral replies) sent as tasks of their own, ack-first."""

    def __init__(self, gate: AckFirst) -> None:
        self.gate = gate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps weak ones

    def spawn(self, answer: Awaitable[Any]) -> None:
        """Send an answer to Slack as a task of its own, ack-first like the changes."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._tasks = loop, set()
        task = asyncio.ensure_future(self._answer(answer, time.monotonic()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is pending now, without waiting for a quiet moment, before the process stops."""
        self.gate.close()
        if self._tasks and self._loop is asyncio.get_running_loop():
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def _answer(self, answer: Awaitable[Any], since: float) -> None:
        try:
            await self.gate.turn(since)
            await answer
        except Exception:  # the change is made; a lost ephemeral answer is only logged
            log.exception("answering a Slack interaction failed")
