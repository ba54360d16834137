"""A local PagerDuty Events API v2 endpoint over real HTTP: records events, can be told to fail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from slackbot.serving import serve


class FakePagerDuty:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures: list[int] = []
        self.lock = threading.Lock()
        self.url = ""

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.failures.extend([status] * count)

    def triggers(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e.get("event_action") == "trigger"]

    async def enqueue(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self.lock:
            if self.failures:
                status = self.failures.pop(0)
                return JSONResponse({"status": "error", "message": "injected failure"}, status_code=status)
            if not body.get("routing_key") or body.get("event_action") not in (
                "trigger",
                "acknowledge",
                "resolve",
            ):
                return JSONResponse({"status": "invalid event", "message": "Event object is invalid"}, status_code=400)
            self.events.append(body)
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")},
            status_code=202,
        )


@contextmanager
def running_pagerduty() -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty()
    app = Starlette(routes=[Route("/v2/enqueue", fake.enqueue, methods=["POST"])])
    with serve(
        app,
    ) as base:
        fake.url = base + "/v2/enqueue"
        yield fake
