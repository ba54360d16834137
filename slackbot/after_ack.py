"""Work a Slack interaction triggers, run after its ack: in order, and never ahead of an ack.

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
- **In order.** One task applies queued changes in the order Slack delivered them, clicks and
  ``/triage`` changes alike, so a click never overtakes a command typed after it, and database
  writes never pile up in threads (SQLite has one writer anyway). Answers to Slack (ephemeral
  replies) go out beside that queue, so a slow response URL never delays the next change.
- **Small.** Listeners copy out the few values a change needs, queue it and return, so Bolt lets go
  of the request at once: a pending request holds its parsed payload (a card is hundreds of
  objects), and thousands of them made full garbage collections pause the acking loop 60-200 ms.
- **Nothing dropped on shutdown.** ``close`` applies what is still queued, without waiting for a
  quiet moment, before the process stops. (A crash still loses the changes not yet applied, like
  any Bolt listener: Slack interactions are not durable, the outbox is.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Job = tuple[float, Callable[..., Awaitable[Any]], tuple[Any, ...], "asyncio.Future[Any] | None"]


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
    """Changes applied one at a time in arrival order, answers sent beside them, both ack-first."""

    def __init__(self, gate: AckFirst) -> None:
        self.gate = gate
        self._queue: asyncio.Queue[Job] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # answers; strong references: the loop keeps weak ones
        self._drainer: asyncio.Task[None] | None = None

    def _queue_for_loop(self) -> asyncio.Queue[Job]:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._queue, self._loop, self._tasks = asyncio.Queue(), loop, set()
            self._drainer = loop.create_task(self._drain(self._queue), name="slack-after-ack")
        return self._queue

    def submit(self, job: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Queue a change; the listener returns at once."""
        self._queue_for_loop().put_nowait((time.monotonic(), job, args, None))

    async def run(self, job: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Queue a change in the same order as ``submit`` and wait for its result (a command's
        reply depends on it; commands are rare, so holding their request is harmless)."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue_for_loop().put_nowait((time.monotonic(), functools.partial(job, *args, **kwargs), (), done))
        return await done

    def spawn(self, answer: Awaitable[Any]) -> None:
        """Send an answer to Slack as a task of its own, ack-first like the changes."""
        self._keep(asyncio.ensure_future(self._answer(answer, time.monotonic())))

    async def close(self, timeout: float = 10.0) -> None:
        """Apply what is queued and send what is pending now, before the process stops."""
        self.gate.close()
        if self._queue is None or self._loop is not asyncio.get_running_loop():
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=timeout)
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=timeout)
        except TimeoutError:
            log.warning("stopping with %d Slack changes not applied", self._queue.qsize())

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, answer: Awaitable[Any], since: float) -> None:
        try:
            await self.gate.turn(since)
            await answer
        except Exception:  # the change is made; a lost ephemeral answer is only logged
            log.exception("answering a Slack interaction failed")

    async def _drain(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            since, job, args, done = await queue.get()
            try:
                await self.gate.turn(since)
                result = await job(*args)
            except Exception as exc:  # one failed change must not stop the others
                if done is None:
                    log.exception("change from a Slack interaction failed")
                elif not done.done():
                    done.set_exception(exc)
            else:
                if done is not None and not done.done():
                    done.set_result(result)
            finally:
                queue.task_done()
