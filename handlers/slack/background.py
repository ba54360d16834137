"""Work a Slack interaction triggers, run after its ack by a few long-lived tasks.

A Bolt listener that awaits its work keeps the whole request alive until the work is done: the
parsed payload (a card message is hundreds of objects), headers, context and kwargs. Under a burst
of clicks that is thousands of pending requests, and every full garbage collection walks all of
them: bench/ack_latency.py measured 60-200 ms pauses on the loop that acks Slack. Listeners here
ack, copy out the few values the work needs, queue it and return, so Bolt lets go of the request
at once. One worker applies the changes in the order Slack delivered them (two clicks by the same
person never overtake each other) and keeps database writes from piling up in threads that
compete with the event loop for the GIL; SQLite has one writer anyway. Answers to Slack go out
beside that queue, so a slow response URL never delays the next change. Like Bolt's own listener
tasks, work still queued when the process stops is not carried over: Slack interactions are not
durable, the outbox is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Job = tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]


class AfterAck:
    """Changes applied one at a time in arrival order, and their answers sent beside them.

    ``submit`` queues a change (only database work: one slow answer to Slack must never hold up
    the clicks behind it); ``spawn`` sends an answer as a task of its own. Both start on first use
    in the running loop; a new loop (a new server, in tests) gets a new queue.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Job] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: the loop keeps weak ones

    def submit(self, job: Callable[..., Awaitable[None]], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._queue = asyncio.Queue()
            self._loop = loop
            self._tasks = set()
            self._keep(loop.create_task(self._drain(self._queue), name="slack-after-ack"))
        self._queue.put_nowait((job, args))

    def spawn(self, answer: Awaitable[Any]) -> None:
        self._keep(asyncio.ensure_future(self._guarded(answer)))

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, answer: Awaitable[Any]) -> None:
        try:
            await answer
        except Exception:  # the change is made; a lost ephemeral answer is only logged
            log.exception("answering a Slack interaction failed")

    async def _drain(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            job, args = await queue.get()
            try:
                await job(*args)
            except Exception:  # one failed change must not stop the others
                log.exception("change from a Slack interaction failed")
            finally:
                queue.task_done()
