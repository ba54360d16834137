"""Parsing user-sized input without stalling the event loop.

A worker thread is not enough on its own: ``json.loads``, expat and pydantic validation are single
C calls that hold the GIL for as long as they run, so a thread parsing a 16 MB report (8M ``{}``)
stalls the loop for about 0.5 s, and a whole artifact for tens of seconds. So:

* input up to :data:`SMALL_INPUT` bytes is parsed in a thread: every C call on it is short;
* anything larger (and every artifact, whose zip can expand 1000-fold) is parsed in a child
  process forked from a ``forkserver`` (cheap: the parsing modules are preloaded there). The child
  has a deadline and a memory limit, and exits afterwards, so a hostile input costs neither the
  bot's memory nor its loop. It sends its answer back in pieces (the results in chunks of
  :data:`CHUNK` each), and the parent unpickles them one chunk per call, in a thread: one call
  stays a few milliseconds long even for 100,000 results.

The parse function must be a module-level function (or a ``functools.partial`` of one) whose
answer is picklable; an answer with a ``results`` list (a Report, the results of an artifact) is
sent in chunks. Errors come back as the exception the function raised (documented ones are
``ValueError`` subclasses with a message); a child that runs out of time or memory is a
``ValueError`` naming that.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver, spawn
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from slackbot.clients import forkserver_main

log = logging.getLogger(__name__)

T = TypeVar("T")

SMALL_INPUT = 256 * 1024
CHUNK = 1000
DEADLINE_SECONDS = 30.0  # 100,000 testcases take about 4 s; the outbox gives a GitHub job 45 s
MEMORY_LIMIT_BYTES = 2 * 1024 * 1024 * 1024
# What the forkserver imports once, so a forked child starts parsing at once.
PRELOAD = ["slackbot.sources.junit", "slackbot.sources.report", "slackbot.sources.artifact_reader"]

_context: Any = None
_starting = threading.Lock()


def preload(*modules: str) -> None:
    """Also import ``modules`` in the forkserver (a parse function's own module, say), so a child
    does not import them anew for each parse. Takes effect if called before the first parse."""
    PRELOAD.extend(m for m in modules if m not in PRELOAD)


class ParseFailed(ValueError):
    """The child did not answer: out of time, out of memory, or killed."""


def _forkserver() -> Any:
    global _context
    with _starting:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([forkserver_main.__name__, *PRELOAD])
            main_path = spawn.get_preparation_data("ignore").get("init_main_from_path")
            # Only the forkserver reads it (slackbot.clients.forkserver_main): set while it starts.
            if main_path:
                os.environ[forkserver_main.MAIN_ENV] = f"{os.getpid()}:{main_path}"
            try:
                forkserver.ensure_running()
            finally:
                os.environ.pop(forkserver_main.MAIN_ENV, None)
            _context = context
    return _context


def _limit_memory(limit: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform, or already lower
        pass


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory_limit: int) -> None:
    _limit_memory(memory_limit)
    try:
        value = fn(*args)
    except MemoryError:
        conn.send(("error", ParseFailed("the input needs more memory than a parse may use")))
        return
    except BaseException as exc:  # everything goes back to the parent, typed
        try:
            pickle.dumps(exc)
        except Exception:
            exc = ValueError(f"{type(exc).__name__}: {exc}")
        conn.send(("error", exc))
        return
    results = getattr(value, "results", None)
    if isinstance(results, list) and len(results) > CHUNK:
        value.results = []
        conn.send(("value", value, len(results)))
        for start in range(0, len(results), CHUNK):
            conn.send_bytes(pickle.dumps(results[start : start + CHUNK]))
    else:
        conn.send(("value", value, 0))
    conn.close()


def _receive(conn: Connection, deadline: float) -> Any:
    if not conn.poll(max(0.0, deadline - time.monotonic())):
        raise ParseFailed(f"reading the input took longer than {DEADLINE_SECONDS:.0f} s")
    return conn.recv()


def _receive_results(receiver: Connection, count: int, deadline: float, deadline_seconds: float) -> list[Any]:
    """The results, a chunk per call. The collector is paused meanwhile and what exists is then
    frozen (``gc.freeze``): otherwise creating 100,000 results triggers full collections that
    walk the whole heap in one call, which stalled the loop 110-200 ms in measurements. Frozen
    objects are still freed by reference counting when the results are dropped; only reference
    cycles alive at this moment wait for a later ``gc.unfreeze``."""
    results: list[Any] = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while len(results) < count:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                raise ParseFailed(f"reading the input took longer than {deadline_seconds:.0f} s")
            results.extend(pickle.loads(receiver.recv_bytes()))
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return results


def run_in_child(
    fn: Callable[..., T],
    *args: Any,
    deadline_seconds: float = DEADLINE_SECONDS,
    memory_limit: int = MEMORY_LIMIT_BYTES,
) -> T:
    """``fn(*args)`` in a forked child; blocking (call it from a thread)."""
    context = _forkserver()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, args, memory_limit), daemon=True)
    process.start()
    sender.close()
    deadline = time.monotonic() + deadline_seconds
    try:
        try:
            head = _receive(receiver, deadline)
            if head[0] == "error":
                raise head[1]
            _, value, count = head
            if count:
                value.results = _receive_results(receiver, count, deadline, deadline_seconds)
        except (EOFError, OSError):
            process.join(5)
            raise ParseFailed(
                f"the parser stopped without an answer (exit code {process.exitcode}): "
                "the input needs more memory or time than a parse may use"
            ) from None
        return value
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(5)


async def off_loop(fn: Callable[..., T], *args: Any, size: int, isolate: bool = False) -> T:
    """``fn(*args)`` without blocking the loop: in a thread for small input (``size`` bytes), in a
    child process for large input or when ``isolate`` (the input expands, like a zip)."""
    if size <= SMALL_INPUT and not isolate:
        return await asyncio.to_thread(fn, *args)
    return await asyncio.to_thread(run_in_child, fn, *args)


def free_in_pieces(items: list[Any], piece: int = CHUNK) -> None:
    """Empty ``items`` from the end, ``piece`` at a time. Dropping a list's last reference frees
    all it holds in one C call that never lets go of the GIL (100,000 results: 35 ms, longer on a
    busy machine); a piece at a time, other threads and the event loop run in between."""
    while items:
        del items[-piece:]
