"""A local PagerDuty Events API v2 endpoint over real HTTP: records events, can be told to fail.

It lives in the product (not only in tests) because ``triagebot simulate`` pages through it: the
simulation must run on a fresh clone without PagerDuty, and an outage ("PagerDuty down for an
hour") is something the bot has to weather, so the fake can be switched ``down``.
The tests import it from ``tests.fakes.pagerduty``; there is one implementation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from slackbot.serving import serve


class FakePagerDuty:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.received_at: list[datetime | None] = []  # parallel to ``events``: when each arrived
        self.failures: list[int] = []
        self.down = False  # while True every event is answered 503 (an outage)
        self.refused = 0  # events answered with an error (scripted failures and outages)
        self.clock = clock
        self.lock = threading.Lock()
        self.url = ""

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.failures.extend([status] * count)

    def triggers(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e.get("event_action") == "trigger"]

    async def enqueue(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ClientDisconnect:  # the sender died mid-request (a simulated crash): nothing arrived
            return Response(status_code=499)
        with self.lock:
            if self.down:
                self.refused += 1
                return JSONResponse({"status": "error", "message": "service unavailable"}, status_code=503)
            if self.failures:
                self.refused += 1
                status = self.failures.pop(0)
                return JSONResponse({"status": "error", "message": "injected failure"}, status_code=status)
            if not body.get("routing_key") or body.get("event_action") not in (
                "trigger",
                "acknowledge",
                "resolve",
            ):
                return JSONResponse({"status": "invalid event", "message": "Event object is invalid"}, status_code=400)
            self.events.append(body)
            self.received_at.append(self.clock() if self.clock else None)
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")},
            status_code=202,
        )


@contextmanager
def running_pagerduty(clock: Callable[[], datetime] | None = None) -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty(clock)
    app = Starlette(routes=[Route("/v2/enqueue", fake.enqueue, methods=["POST"])])
    with serve(app) as base:
        fake.url = base + "/v2/enqueue"
        yield fake
