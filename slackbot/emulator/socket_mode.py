"""Socket Mode for the local Slack: ``apps.connections.open`` and the WebSocket it hands out.

A bot in Socket Mode has no public Request URL. It calls ``apps.connections.open`` with its
app-level token (``xapp-…``), opens the ``wss://`` URL it gets back and then receives every slash
command, interaction and event as a JSON envelope over that socket, acknowledging each one with
``{"envelope_id": …, "payload": …}``. This module plays Slack's side of that exchange so the real
``slack_sdk`` Socket Mode client (under Bolt's ``AsyncSocketModeHandler``) can be tested end to
end without a network:

- ``connections_open()`` answers the Web API call: ``{"ok": true, "url": "ws://127.0.0.1:PORT/link/<ticket>"}``
  for the right app token, Slack's errors otherwise (a bot token gets ``not_allowed_token_type``);
- ``/link/<ticket>`` accepts the WebSocket, greets with ``hello`` and routes acks back to whoever
  is waiting for them;
- ``deliver()`` sends one envelope (``slash_commands``, ``interactive`` or ``events_api``) and waits
  for its ack, so the emulator's acting-as-a-user methods work the same over the socket as over HTTP;
- ``disconnect()`` sends Slack's ``disconnect`` message (``refresh_requested``, ``warning`` …), after
  which a well-behaved client opens a fresh connection.

The protocol follows the description of slack_sdk's own test server in the reference notes
(shared/reference/slack-platform.md §1.6); the code is our own. The server runs aiohttp on its own
event loop and thread, because the emulator's HTTP side is a threaded stdlib server and the bot
under test has an event loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from slackbot.emulator.actor import ActorResponse
from slackbot.emulator.api import ApiResponse, decode_params
from slackbot.emulator.state import APP_ID

ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
# Slack only reads a response payload in the ack of these interactions (a command's reply, a
# modal's response_action, an options list); for anything else the ack is an empty receipt.
_ACCEPTS_PAYLOAD = {"slash_commands", "view_submission", "block_suggestion"}


class SocketModeUnavailable(RuntimeError):
    """No bot holds an open Socket Mode connection."""


@dataclass
class Envelope:
    """One delivery over the socket and what came back, for assertions."""

    type: str
    envelope_id: str
    payload: dict[str, Any]
    connection: int
    acked: bool = False
    ack_payload: dict[str, Any] | None = None
    sent_at: float = 0.0


@dataclass
class _Connection:
    number: int
    socket: web.WebSocketResponse
    ticket: str
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class SocketModeServer:
    """Slack's Socket Mode side: issues connection URLs, holds the sockets, delivers envelopes."""

    def __init__(
        self,
        *,
        app_token: str,
        bot_token: str,
        host: str = "127.0.0.1",
        ack_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_token = app_token
        self.bot_token = bot_token
        self.host = host
        self.port = 0
        # Slack gives up on an ack after 3 s; the default here is longer so a loaded test machine
        # does not turn a slow first request (auth.test, imports) into a flaky failure.
        self.ack_timeout = ack_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._envelopes: list[Envelope] = []
        self._opened = 0
        self._next = 0
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to start() instead of dying silently on the thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=run, name="slack-emulator-socket-mode", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        if failure:
            raise RuntimeError(f"Socket Mode server did not start: {failure[0]!r}")
        return self

    async def _start_site(self) -> None:
        app = web.Application()
        app.router.add_get("/link/{ticket}", self._link)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop_site(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.socket.close(code=1001, message=b"emulator stopping")
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        self._loop = None
        self._thread = None

    # -- apps.connections.open --------------------------------------------------------------------

    def connections_open(self, *, content_type: str, raw: bytes, query: str, headers: dict[str, str]) -> ApiResponse:
        """Answer ``apps.connections.open``: a one-connection URL for the app token, or Slack's error."""
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        if not token:
            token = str(decode_params(content_type, raw, query).get("token") or "")
        if not token:
            return ApiResponse.json({"ok": False, "error": "not_authed"})
        if token == self.bot_token or token.startswith(("xoxb-", "xoxp-")):
            # An app-level token is required; Slack refuses bot and user tokens this way.
            return ApiResponse.json({"ok": False, "error": "not_allowed_token_type"})
        if token != self.app_token:
            return ApiResponse.json({"ok": False, "error": "invalid_auth"})
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return ApiResponse.json({"ok": True, "url": f"ws://{self.host}:{self.port}/link/{ticket}"})

    # -- the socket ---------------------------------------------------------------------------------

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)  # a URL from apps.connections.open serves one connection
        if not known:
            return web.Response(status=401, text="invalid or used ticket: call apps.connections.open again")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        with self._lock:
            self._opened += 1
            connection = _Connection(number=self._opened, socket=socket, ticket=ticket)
            self._connections.append(connection)
            count = len(self._connections)
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {"host": "applink-emulator", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }
        await socket.send_str(json.dumps(hello))
        with self._changed:
            self._changed.notify_all()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._receive(connection, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            with self._changed:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._changed.notify_all()
            for waiter in connection.acks.values():
                if not waiter.done():
                    waiter.set_exception(SocketModeUnavailable("the connection closed before the ack"))
        return socket

    def _receive(self, connection: _Connection, data: str) -> None:
        """An ack from the app: ``{"envelope_id": …}`` with an optional ``payload``."""
        try:
            frame = json.loads(data)
        except ValueError:
            return  # Slack ignores what it cannot parse; so do we
        if not isinstance(frame, dict):
            return
        waiter = connection.acks.get(str(frame.get("envelope_id", "")))
        if waiter is not None and not waiter.done():
            payload = frame.get("payload")
            waiter.set_result(payload if isinstance(payload, dict) else {})

    # -- state --------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._lock:
            return any(not c.socket.closed for c in self._connections)

    @property
    def connection_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._connections if not c.socket.closed)

    @property
    def connections_opened(self) -> int:
        """How many sockets were ever accepted (a reconnect adds one)."""
        with self._lock:
            return self._opened

    def wait_connected(self, timeout: float = 15.0, *, opened: int = 1) -> None:
        """Block until a connection is open and at least ``opened`` were accepted in total."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (self._opened >= opened and any(not c.socket.closed for c in self._connections)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no Socket Mode connection within {timeout} s (opened: {self._opened})")
                self._changed.wait(timeout=min(remaining, 0.1))

    def envelopes(self, type: str | None = None) -> list[Envelope]:
        """Envelopes delivered so far, oldest first, with the ack each got."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._envelopes if type is None or e.type == type]

    # -- delivering ---------------------------------------------------------------------------------

    def deliver(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> ActorResponse:
        """Send one envelope to a connected app and wait for its ack (from any thread but the server's).

        The answer has the shape of the HTTP delivery's: status 200 and the ack payload as the body
        (``json``); status 504 when no ack came in time, which a user sees as Slack's timeout error.
        """
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}; one of {ENVELOPE_TYPES}")
        loop = self._loop
        if loop is None:
            raise SocketModeUnavailable("the Socket Mode server is not running")
        envelope_id = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        frame: dict[str, Any] = {"envelope_id": envelope_id, "payload": payload, "type": type}
        kind = payload.get("type") if type == "interactive" else type
        frame["accepts_response_payload"] = kind in _ACCEPTS_PAYLOAD
        if type == "events_api":
            frame["retry_attempt"] = retry_attempt
            frame["retry_reason"] = retry_reason
        future = asyncio.run_coroutine_threadsafe(self._exchange(frame), loop)
        try:
            ack = future.result(timeout=self.ack_timeout + 5)
        except (FutureTimeout, TimeoutError):
            future.cancel()
            ack = None
        if ack is None:
            detail = f"no ack for envelope {envelope_id} within {self.ack_timeout} s"
            return ActorResponse(status=504, body=detail, json=None, sent=payload)
        return ActorResponse(status=200, body=json.dumps(ack) if ack else "", json=ack or None, sent=payload)

    async def _exchange(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        connection = self._pick()
        envelope_id = str(frame["envelope_id"])
        record = Envelope(
            type=str(frame["type"]),
            envelope_id=envelope_id,
            payload=frame["payload"],
            connection=connection.number,
            sent_at=self.clock(),
        )
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        connection.acks[envelope_id] = waiter
        with self._lock:
            self._envelopes.append(record)
        try:
            await connection.socket.send_str(json.dumps(frame))
            ack = await asyncio.wait_for(waiter, timeout=self.ack_timeout)
        except (TimeoutError, SocketModeUnavailable, ConnectionError):
            return None
        finally:
            connection.acks.pop(envelope_id, None)
        with self._lock:
            record.acked = True
            record.ack_payload = ack or None
        return ack

    def _pick(self) -> _Connection:
        """Round robin over open connections, as Slack spreads envelopes over an app's sockets."""
        with self._lock:
            live = [c for c in self._connections if not c.socket.closed]
            if not live:
                raise SocketModeUnavailable("no app is connected over Socket Mode")
            self._next += 1
            return live[self._next % len(live)]

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every connected app to reconnect, as Slack does before it recycles a socket."""
        loop = self._loop
        if loop is None:
            return
        message = json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}})

        async def send_all() -> None:
            with self._lock:
                live = [c for c in self._connections if not c.socket.closed]
            for connection in live:
                with contextlib.suppress(ConnectionError):
                    await connection.socket.send_str(message)

        asyncio.run_coroutine_threadsafe(send_all(), loop).result(timeout=10)
