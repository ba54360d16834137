"""Destinations that are slow in the ways real ones are, over real sockets (127.0.0.1, a thread).

* :class:`Trickle`: answers 200 with a long ``Content-Length`` and then one byte per ``interval``
  (a storage host on a bad day): every read succeeds, so a per-read client timeout never fires.
* :class:`BlackHole`: accepts the connection, reads the request and never answers.
* :class:`StallingProxy`: forwards to a real server (the Slack emulator), except Web API calls whose
  ``channel`` is one of ``stalled``, which it holds without answering (a DM that merely names the
  channel in its text goes through).

Each counts the requests that reached it (``arrived``) and the ones it still holds (``active``), so a
test can say "the slow call is still in flight" without guessing at timings; closing a server
releases everything it holds.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx


def _channel(body: bytes) -> str:
    """The ``channel`` argument of a Web API call, sent as JSON or as a form."""
    try:
        data = json.loads(body)
    except ValueError:
        return parse_qs(body.decode("utf-8", "replace")).get("channel", [""])[0]
    return str(data.get("channel", "")) if isinstance(data, dict) else ""


class _Server:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.arrived = 0
        self.active = 0
        self.hung_up = 0  # held requests whose client went away first
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._http is not None
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        assert self._http is not None and self._thread is not None
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def _enter(self) -> None:
        with self.lock:
            self.arrived += 1
            self.active += 1

    def _leave(self, hung_up: bool) -> None:
        with self.lock:
            self.active -= 1
            self.hung_up += int(hung_up)

    def hold(self, h: BaseHTTPRequestHandler, *, trickle: float | None = None) -> None:
        """Keep the request open until the server closes or the client hangs up; with ``trickle``,
        send one byte of body every ``trickle`` seconds meanwhile."""
        self._enter()
        hung_up = False
        try:
            if trickle is None:
                # Without a write, a closed peer shows up as a readable socket with nothing in it.
                h.connection.settimeout(0.05)
                while not self.closing.is_set():
                    try:
                        if h.connection.recv(1, socket.MSG_PEEK) == b"":
                            hung_up = True
                            return
                    except TimeoutError:
                        continue
            else:
                while not self.closing.wait(trickle):
                    h.wfile.write(b"P")
                    h.wfile.flush()
        except OSError:
            hung_up = True
        finally:
            self._leave(hung_up)
            h.close_connection = True


class Trickle(_Server):
    def __init__(self, interval: float = 1.0, length: int = 1_000_000) -> None:
        super().__init__()
        self.interval, self.length = interval, length

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(server.length))
                self.end_headers()
                self.wfile.flush()
                server.hold(self, trickle=server.interval)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class BlackHole(_Server):
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.hold(self)

            do_GET = do_POST = do_PATCH = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class StallingProxy(_Server):
    def __init__(self, upstream: str, stalled: set[str]) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.stalled = stalled

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # slack_sdk reads conversations with GET
                self.do_POST(method="GET")

            def do_POST(self, method: str = "POST") -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = self.path.partition("?")[2].encode()
                if _channel(body or query) in server.stalled:
                    server.hold(self)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx.request(method, server.upstream + self.path, content=body, headers=headers, timeout=10)
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
