"""The emulator's HTTP server and ``SlackEmulator``, the one object tests and the demo hold.

The server is the standard library's ``ThreadingHTTPServer`` on a daemon thread: no event loop to
share with the bot under test (which may run its own), and requests from the bot's async client,
slack_sdk's urllib client and the browser are handled concurrently. Routes:

- ``POST /api/<method>``              Web API (``api.WebApi``); any verb is accepted
- ``POST /response/<id>``             response_url answers from the bot
- ``POST /upload/v1/<file id>``       step 2 of ``files_upload_v2``
- ``GET /``, ``/channels/<id>?as=<user>``, ``/home/<user>``   pages a person can use (``ui.Ui``):
  clicks, selects, modals, a composer for ``/commands`` and messages, reactions, App Home
- ``GET /ui/state``, ``POST /ui/<gesture>``, ``GET /static/<file>``   what those pages call
- ``GET /api/state.json``             the whole workspace as JSON
- ``GET /archives/<channel>/p<ts>``   permalinks from ``chat.getPermalink``, redirected to the channel page

With ``socket_mode=True`` the emulator also answers ``apps.connections.open`` for the app token and
runs the Socket Mode WebSocket (``socket_mode.SocketModeServer``) on a port of its own; once the
bot connects, acting-as-a-user requests travel over that socket instead of HTTP.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from slackbot.emulator import html
from slackbot.emulator.actor import Actor, ActorResponse
from slackbot.emulator.api import BOT_SCOPES, ApiResponse, WebApi, decode_params
from slackbot.emulator.socket_mode import SocketModeServer
from slackbot.emulator.state import (
    BOT_ID,
    BOT_USER_ID,
    Message,
    RecordedCall,
    UploadedFile,
    View,
    Workspace,
    format_ts,
)
from slackbot.emulator.ui import Ui

MAX_BODY = 50 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: SlackEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a bot process that crashed mid-call) is not an emulator error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the Web API, the response_url sink, the upload sink or a page."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive for the bot's pooled clients
    # An answer goes out as two writes (headers, then body). On a kept-alive connection Nagle's
    # algorithm holds the body back until the client ACKs the headers, which it delays by ~40 ms:
    # every call over a pooled session took 44 ms instead of 0.4 ms (found by ``triagebot simulate``).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output stays readable; calls are recorded in ``SlackEmulator.calls``."""

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _route(self) -> None:
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-answer (a crashed bot): nobody to tell
        except Exception as exc:
            # Answer instead of dropping the connection: a dropped connection looks like a network
            # fault to slack_sdk (and gets retried), hiding the emulator bug behind it.
            traceback.print_exc(file=sys.stderr)
            detail = f"{type(exc).__name__}: {exc}"
            self._send(ApiResponse.json({"ok": False, "error": "emulator_error", "detail": detail}, status=500))

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items()}
        ui = emulator.ui.handle(self.command, path, parts.query, body)
        if ui is not None:
            self._send(ui)
        elif path == "/api/state.json":
            with emulator.workspace.lock:
                self._send(ApiResponse.text(html.state_json(emulator.workspace), content_type="application/json"))
        elif path.rstrip("/") == "/api/apps.connections.open" and emulator.socket is not None:
            self._send(emulator.connections_open(self.headers.get("content-type", ""), body, parts.query, headers))
        elif path.startswith("/api/"):
            method = path[len("/api/") :].strip("/")
            response = emulator.api.handle(
                method,
                content_type=self.headers.get("content-type", ""),
                raw=body,
                query=parts.query,
                headers=headers,
            )
            self._send(response)
        elif path.startswith("/response/"):
            self._send(emulator.api.receive_response(path[len("/response/") :], body, headers))
        elif path.startswith("/upload/v1/"):
            self._send(emulator.api.receive_upload(path[len("/upload/v1/") :], body))
        else:
            self._send(self._page(emulator, path, parts.query))

    def _page(self, emulator: SlackEmulator, path: str, query: str) -> ApiResponse:
        ws = emulator.workspace
        content_type = "text/html; charset=utf-8"
        with ws.lock:
            if path in ("", "/"):
                return ApiResponse.text(html.index_page(ws), content_type=content_type)
            segments = [s for s in path.split("/") if s]
            if len(segments) == 2 and segments[0] == "channels" and segments[1] in ws.channels:
                viewer = parse_qs(query).get("as", [html.default_user(ws) or ""])[-1]
                if viewer not in ws.users or ws.users[viewer].is_bot:
                    body = html.unknown_user(ws, viewer)
                    return ApiResponse.text(html.page("Unknown user", body), status=400, content_type=content_type)
                channel_page = html.channel_page(ws, ws.channels[segments[1]], viewer)
                return ApiResponse.text(channel_page, content_type=content_type)
            if len(segments) == 2 and segments[0] == "home":
                page = html.home_page(ws, segments[1])
                if page is not None:
                    return ApiResponse.text(page, content_type=content_type)
            if len(segments) == 3 and segments[0] == "archives" and segments[2].startswith("p"):
                digits = segments[2][1:]
                anchor = format_ts(int(digits)) if digits.isdigit() else ""
                response = ApiResponse.text("", status=302)
                response.headers["Location"] = f"/channels/{segments[1]}#m{anchor}"
                return response
        return ApiResponse.text(html.page("Not found", "<h1>Not found</h1>"), status=404, content_type=content_type)

    do_GET = do_POST = do_PUT = do_HEAD = _route


class SlackEmulator:
    """A local Slack: Web API, workspace state, a user to act as, and read-only pages.

    ``start()`` serves on a daemon thread; use it as a context manager in tests::

        with SlackEmulator() as slack:
            slack.add_channel("C0TRIAGE", "triage")
            client = WebClient(token=slack.bot_token, base_url=slack.base_url)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_token: str = "xoxb-emulator",
        signing_secret: str = "emulator-signing-secret",
        bot_url: str | None = None,
        team_id: str = "T0TRIAGE",
        rate_limit_per_channel: float = 1.0,
        burst: int = 5,
        clock: Callable[[], float] = time.time,
        socket_mode: bool = False,
        app_token: str = "xapp-emulator",
        scopes: str = BOT_SCOPES,
        commands: tuple[str, ...] = ("/triage",),
    ) -> None:
        self.host = host
        self.port = port
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.bot_url = bot_url
        self.team_id = team_id
        self.commands = commands  # the app's slash commands; the composer answers any other one as Slack does
        self.bot_user_id = BOT_USER_ID
        self.bot_id = BOT_ID
        self.workspace = Workspace(team_id=team_id, clock=clock)
        self.api = WebApi(
            self.workspace,
            bot_token=bot_token,
            root_url=lambda: self.web_url,
            rate_limit_per_channel=rate_limit_per_channel,
            burst=burst,
            scopes=scopes,
        )
        self.actor = Actor(
            self.workspace, signing_secret=signing_secret, bot_url=lambda: self.bot_url, root_url=lambda: self.web_url
        )
        self.ui = Ui(self.workspace, self.actor, commands)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.app_token = app_token
        self.socket: SocketModeServer | None = None
        if socket_mode:
            self.socket = SocketModeServer(app_token=app_token, bot_token=bot_token, host=host, clock=clock)
            self.actor.socket = self.socket

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> SlackEmulator:
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-emulator", daemon=True
        )
        self._thread.start()
        if self.socket is not None:
            self.socket.start()
        return self

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.actor.close()

    def __enter__(self) -> SlackEmulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def page_url(self, channel_id: str, user_id: str | None = None) -> str:
        """The page of a channel to open in a browser, acting as ``user_id`` (default: the first person)."""
        return f"{self.web_url}channels/{channel_id}" + (f"?as={user_id}" if user_id else "")

    @property
    def base_url(self) -> str:
        return f"{self.web_url}api/"

    # -- seeding ----------------------------------------------------------------------------------

    def add_user(
        self, user_id: str, name: str, *, real_name: str | None = None, is_bot: bool = False, tz: str = "UTC"
    ) -> None:
        with self.workspace.lock:
            self.workspace.add_user(user_id, name, real_name=real_name, is_bot=is_bot, tz=tz)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> None:
        with self.workspace.lock:
            self.workspace.add_channel(channel_id, name, is_private=is_private)

    def add_usergroup(self, group_id: str, handle: str, user_ids: list[str]) -> None:
        with self.workspace.lock:
            self.workspace.add_usergroup(group_id, handle, user_ids)

    def archive_channel(self, channel_id: str) -> None:
        """Posting there then fails with ``is_archived``, as it does on Slack."""
        with self.workspace.lock:
            self.workspace.channels[channel_id].is_archived = True

    # -- inspection (copies, so callers never race the server) ------------------------------------

    def channel_ids(self) -> list[str]:
        with self.workspace.lock:
            return list(self.workspace.channels)

    def messages(self, channel_id: str) -> list[Message]:
        """Top-level messages (and thread broadcasts), oldest first."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.top_level(channel_id))

    def replies(self, channel_id: str, thread_ts: str) -> list[Message]:
        """Replies in the thread under ``thread_ts``, oldest first (the parent excluded)."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.thread(channel_id, thread_ts))

    def message(self, channel_id: str, ts: str) -> Message | None:
        """One message or reply by ``ts``."""
        with self.workspace.lock:
            channel = self.workspace.channels.get(channel_id)
            found = channel.find(ts) if channel else None
            return copy.deepcopy(found)

    def ephemerals(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages (chat.postEphemeral, response_url, command acks), optionally for one user."""
        with self.workspace.lock:
            return [copy.deepcopy(e) for e in self.workspace.ephemerals if user_id is None or e["user"] == user_id]

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded Web API calls (and ``"response_url"`` posts), oldest first."""
        with self.workspace.lock:
            return [copy.deepcopy(c) for c in self.workspace.calls if method is None or c.method == method]

    def views(self, user_id: str | None = None) -> list[View]:
        """Every view opened, pushed or published (closed modals included, with ``closed=True``)."""
        with self.workspace.lock:
            return [copy.deepcopy(v) for v in self.workspace.views.values() if user_id in (None, v.user_id)]

    def open_modals(self, user_id: str) -> list[View]:
        """The user's modal stack, root first."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.open_modals(user_id))

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab last published for the user, as ``views.publish`` returned it."""
        with self.workspace.lock:
            view = self.workspace.views.get(self.workspace.home_views.get(user_id, ""))
            return view.to_api(team_id=self.team_id) if view else None

    def files(self) -> list[UploadedFile]:
        """Uploaded files with their content (``.content`` bytes, ``.text``)."""
        with self.workspace.lock:
            return [copy.deepcopy(f) for f in self.workspace.files.values() if f.content is not None]

    def issue_trigger(self, user_id: str) -> str:
        """A fresh ``trigger_id`` as an interaction would carry, for driving ``views.open`` directly."""
        with self.workspace.lock:
            return self.workspace.issue_trigger(user_id)

    def dm_channel_id(self, user_id: str) -> str:
        """The id ``conversations.open`` returns for a DM with ``user_id``."""
        return f"D{user_id}"

    def transcript(self, channel_id: str | None = None) -> str:
        """The channel(s) as a person reads them: blocks as text lines, threads indented."""
        with self.workspace.lock:
            return html.transcript(self.workspace, channel_id)

    def thread_transcript(self, channel_id: str, ts: str) -> str:
        """One message and its thread as a person reads them."""
        with self.workspace.lock:
            return html.thread_transcript(self.workspace, channel_id, ts)

    def summary(self, channel_id: str) -> str:
        """One line per top-level message: the first line a reader sees."""
        with self.workspace.lock:
            channel = self.workspace.channels[channel_id]
            out = [f"#{channel.name} ({channel.id})"]
            for message in channel.timeline:
                if message.is_reply:
                    continue
                body = html.message_lines(message, self.workspace)
                replies = len(channel.threads.get(message.ts, []))
                thread = f"  [{replies} in thread]" if replies else ""
                out.append(f"  • {(body[0] if body else '').strip()}{thread}")
            return "\n".join(out) + "\n"

    # -- Socket Mode ------------------------------------------------------------------------------

    def connections_open(self, content_type: str, raw: bytes, query: str, headers: dict[str, str]) -> ApiResponse:
        """``apps.connections.open``, recorded like any Web API call."""
        assert self.socket is not None
        response = self.socket.connections_open(content_type=content_type, raw=raw, query=query, headers=headers)
        with self.workspace.lock:
            self.workspace.calls.append(
                RecordedCall(
                    method="apps.connections.open",
                    headers={k.lower(): v for k, v in headers.items()},
                    body=decode_params(content_type, raw, query),
                    time=self.workspace.now(),
                    status=response.status,
                    response=response.data,
                )
            )
        return response

    def wait_for_socket(self, timeout: float = 15.0, *, opened: int = 1) -> None:
        """Block until the bot holds a Socket Mode connection (``opened``: total accepted so far)."""
        if self.socket is None:
            raise RuntimeError("the emulator was started without socket_mode=True")
        self.socket.wait_connected(timeout, opened=opened)

    # -- fault injection --------------------------------------------------------------------------

    def fail_next(
        self, method: str, *, status: int = 429, count: int = 1, retry_after: int = 1, error: str | None = None
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail: 429 + Retry-After, 5xx HTML, or 200 ok:false."""
        self.api.fail_next(method, status=status, count=count, retry_after=retry_after, error=error)

    # -- acting as a user (see actor.Actor) -------------------------------------------------------

    def slash_command(self, user_id: str, channel_id: str, text: str, command: str = "/triage") -> ActorResponse:
        return self.actor.slash_command(user_id, channel_id, text, command)

    def click_button(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, value: str | None = None
    ) -> ActorResponse:
        return self.actor.click_button(user_id, channel_id, message_ts, action_id, value)

    def select_option(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, option_value: str
    ) -> ActorResponse:
        return self.actor.select_option(user_id, channel_id, message_ts, action_id, option_value)

    def submit_view(self, user_id: str, view_id: str, values: dict[str, dict[str, Any]]) -> ActorResponse:
        return self.actor.submit_view(user_id, view_id, values)

    def send_event(
        self,
        event: dict[str, Any],
        *,
        retry_num: int | None = None,
        event_id: str | None = None,
        retry_reason: str = "http_timeout",
    ) -> ActorResponse:
        return self.actor.send_event(event, retry_num=retry_num, event_id=event_id, retry_reason=retry_reason)

    def post_as_user(
        self, user_id: str, channel_id: str, text: str, thread_ts: str | None = None, *, bot_id: str | None = None
    ) -> tuple[str, ActorResponse | None]:
        return self.actor.post_as_user(user_id, channel_id, text, thread_ts, bot_id=bot_id)

    def add_reaction(self, user_id: str, channel_id: str, ts: str, name: str) -> ActorResponse:
        return self.actor.add_reaction(user_id, channel_id, ts, name)

    def mention_bot(self, user_id: str, channel_id: str, text: str, thread_ts: str | None = None) -> ActorResponse:
        return self.actor.mention_bot(user_id, channel_id, text, thread_ts)

    def open_home(self, user_id: str) -> ActorResponse:
        return self.actor.open_home(user_id)
