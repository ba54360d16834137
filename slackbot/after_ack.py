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
- **Bounded.** A read (``/triage list``) holds a place in line until its answer is sent. Under a
  flood that outlasts the bound the line grew without end (16,405 answers still queued after a
  30 s bench run), each waiter a live task, and the acks slowed round after round as the
  collector walked them. Past ``backlog`` waiting reads, a new read is answered in its ack that the
  bot is busy (``busy``): a read lost nothing by being refused, and asking again costs one command.
  Changes are never refused this way: they are recorded durably before the ack.
- **Said once.** A click that changes nothing (the class the card already shows, picked again) is
  answered "already classified X" at its response URL. Clicked over and over during a burst, those
  answers all waited for the pause: 10,517 were still queued after the bench's same-class row,
  each telling the same person the same thing. An answer spawned with a ``key`` (who, which
  incident, what) replaces the one with that key still waiting: the person is told once, at the
  latest click's response URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Hashable
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

    def __init__(self, gate: AckFirst, *, at_once: int = 4, backlog: int = 200) -> None:
        self.gate = gate
        self.at_once = at_once
        self.backlog = backlog
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps weak ones
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._running = 0
        self._freed = asyncio.Event()
        self._releasing: asyncio.Task[None] | None = None
        self._latest: dict[Hashable, Awaitable[Any]] = {}  # keyed answers not yet started

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (a new server, in tests) starts empty
            self._loop, self._tasks, self._waiting, self._running = loop, set(), deque(), 0
            self._freed, self._releasing, self._latest = asyncio.Event(), None, {}
        return loop

    @property
    def waiting(self) -> int:
        """How many pieces of work wait for their place in line now."""
        return len(self._waiting) if self._loop is asyncio.get_running_loop() else 0

    @property
    def busy(self) -> bool:
        """The line is full: a read asked for now should be told to ask again instead of waiting."""
        return self.waiting >= self.backlog

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of ``at_once`` places that work after an ack runs in (a read's query and
        answer, an ephemeral reply). Given in arrival order, each only while requests pause (or
        past the bound): when a pause comes after a burst, the work queued behind it is let go a
        few at a time, rechecking the gate before each, so the acks of a burst that resumes do
        not wait behind a herd of answers all started in the same moment."""
        loop = self._bind()
        granted: asyncio.Future[None] = loop.create_future()
        self._waiting.append((time.monotonic(), granted))
        if self._releasing is None:
            self._releasing = loop.create_task(self._release(), name="after-ack")
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._free()  # granted as we were cancelled: give the place back
            raise
        try:
            yield
        finally:
            self._free()

    def _free(self) -> None:
        self._running -= 1
        self._freed.set()

    async def _release(self) -> None:
        try:
            while self._waiting:
                if self._running >= self.at_once:
                    self._freed.clear()
                    await self._freed.wait()
                    continue
                since, granted = self._waiting[0]
                await self.gate.turn(since)
                self._waiting.popleft()
                if granted.done():  # its waiter went away
                    continue
                self._running += 1
                granted.set_result(None)
                await asyncio.sleep(0)  # it starts before the gate is looked at again
        finally:
            self._releasing = None

    @property
    def idle(self) -> bool:
        """No answer is waiting or being sent."""
        return not self._tasks

    def spawn(self, answer: Awaitable[Any], key: Hashable | None = None) -> None:
        """Send an answer to Slack as a task of its own, ack-first like the changes. With a ``key``,
        an answer with the same key that has not started yet is dropped for this one."""
        self._bind()
        if key is not None:
            replaced = self._latest.get(key)
            self._latest[key] = answer
            if replaced is not None:
                _discard(replaced)
                return  # the task waiting for that one sends this one
        task = asyncio.ensure_future(self._answer(answer, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, timeout: float = 10.0) -> None:
        """Send what is pending now, without waiting for a quiet moment, before the process stops."""
        self.gate.close()
        if self._tasks and self._loop is asyncio.get_running_loop():
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def _answer(self, answer: Awaitable[Any], key: Hashable | None) -> None:
        try:
            async with self.slot():
                if key is not None:
                    answer = self._latest.pop(key, answer)
                await answer
        except asyncio.CancelledError:
            if key is not None and (latest := self._latest.pop(key, None)) is not None:
                _discard(latest)
            raise
        except Exception:  # the change is made; a lost ephemeral answer is only logged
            log.exception("answering a Slack interaction failed")


def _discard(answer: Awaitable[Any]) -> None:
    """Close an answer that will never be sent (a coroutine never awaited warns otherwise)."""
    if inspect.iscoroutine(answer):
        answer.close()
