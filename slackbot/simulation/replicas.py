"""Several bot processes behind one address: the pieces a multi-replica run is made of.

* :class:`Replica` is one ``triagebot serve`` process (or any command that serves the bot on a
  port), started in a session of its own so that ``kill -9`` takes it alone.
* :class:`LoadBalancer` is what a deployment puts in front of them: each request goes to the next
  replica in turn; a replica that refuses the connection (dead) is skipped, as nginx's
  ``proxy_next_upstream error`` does. A request that reached a replica is never sent again (a
  report or a click is not idempotent at the proxy), so a crash mid-request is a 502 the sender
  sees, never a silent resend. It records every answer (status, route, replica) so a run can say
  what the senders were told. In front of any other server (an :class:`Upstream`, such as Slack's
  Web API) it is a slow network when told to ``hold`` requests: a run can keep deliveries in
  flight at the moment it stops the database.
* :class:`BdSwitch` is bd as an outage takes it away: the executable behind a link that disappears
  (a package upgrade gone wrong, an unmounted volume), the tracker's retryable failure. The
  single-process simulation and the multi-replica test both switch bd off this way.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slackbot.serving import free_port, serve

# Hop-by-hop headers (RFC 9110 7.6.1) and the ones httpx recomputes: never forwarded as they came.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


@dataclass
class Replica:
    """One bot process. ``command`` gets ``--port <port>`` appended."""

    name: str
    command: Sequence[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Replica:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} never became ready:\n{self.tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """``kill -9``: no shutdown hook runs, nothing in memory survives."""
        if self.process is not None and self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Upstream(Protocol):
    """What the balancer forwards to: a :class:`Replica`, or any server with a name and a URL."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class Server:
    name: str
    url: str


@dataclass(frozen=True)
class Answer:
    """One request through the balancer, as the sender saw it."""

    path: str
    status: int
    replica: str  # who answered; "" when none could be reached
    body: bytes
    asked: bytes = b""  # what the sender sent
    arrived: float = 0.0  # monotonic: when the request reached the balancer
    answered: float = 0.0  # monotonic: when its answer went back


class LoadBalancer:
    """Round robin over the replicas, skipping those that refuse connections."""

    def __init__(self, replicas: Sequence[Upstream]) -> None:
        self.replicas = list(replicas)
        self.answers: list[Answer] = []
        self.hold = 0.0  # seconds each request waits before it is forwarded (a slow network)
        self.in_flight: Counter[str] = Counter()  # requests that arrived and are not answered yet, by path
        self._client: httpx.AsyncClient | None = None  # one for all requests, made on the server's loop
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.url = ""

    async def _forward(self, request: Request) -> Response:
        arrived = time.monotonic()
        path = request.url.path
        with self._lock:
            self.in_flight[path] += 1
        try:
            return await self._forward_held(request, arrived)
        finally:
            with self._lock:
                self.in_flight[path] -= 1

    async def _forward_held(self, request: Request, arrived: float) -> Response:
        body = await request.body()
        if self.hold > 0:
            await asyncio.sleep(self.hold)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        first = next(self._turn)
        for n in range(len(self.replicas)):
            replica = self.replicas[(first + n) % len(self.replicas)]
            assert self._client is not None, "the balancer is not running"
            try:
                answer = await self._client.request(request.method, replica.url + target, content=body, headers=headers)
            except httpx.ConnectError:
                continue  # nothing reached this one: the next may take it
            except httpx.HTTPError:
                self._record(Answer(request.url.path, 502, replica.name, b"", body, arrived, time.monotonic()))
                return Response("the replica failed mid-request", status_code=502)
            self._record(
                Answer(
                    request.url.path, answer.status_code, replica.name, answer.content, body, arrived, time.monotonic()
                )
            )
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP | {"content-encoding"}}
            return Response(answer.content, status_code=answer.status_code, headers=kept)
        self._record(Answer(request.url.path, 502, "", b"", body, arrived, time.monotonic()))
        return Response("no replica is reachable", status_code=502)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def answered(self, path: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.path == path]

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        # One client: a new one per request loaded the CA bundle each time (tens of ms of CPU in
        # the process that also runs the senders). It drops an idle connection after 2 s, before
        # a replica's server does (uvicorn: 5 s), so no request goes out on a closing connection.
        limits = httpx.Limits(keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as client:
            self._client = client
            yield
        self._client = None

    @contextmanager
    def running(self) -> Iterator[LoadBalancer]:
        app = Starlette(
            routes=[Route("/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"])],
            lifespan=self._lifespan,
        )
        # nginx keeps an idle connection 75 s: its clients (httpx: 5 s) always close one first.
        # With uvicorn's 5 s both ends close at once, and a request sent on a connection
        # the balancer is closing is reset (a click 5 s after the last one failed that way).
        with serve(app, timeout_keep_alive=75) as base:
            self.url = base
            yield self


class BdSwitch:
    """``<directory>/bd``, a link to the real executable while bd is available, gone while not."""

    def __init__(self, target: Path, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.link = directory / "bd"
        self._parked = directory / "bd.unavailable"
        if not self.link.exists() and not self._parked.exists():
            self.link.symlink_to(target)

    @property
    def available(self) -> bool:
        return self.link.exists()

    def set_available(self, available: bool) -> None:
        if available and self._parked.exists():
            self._parked.rename(self.link)
        elif not available and self.link.exists():
            self.link.rename(self._parked)
