"""``GET /metrics``: Prometheus text format from the app's own registry (no auth, like /healthz);
and the middleware that counts what the report and webhook endpoints answered."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slackbot.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    async def metrics(_: Request) -> Response:
        # A scrape reads the database (open incidents, outbox depth): keep it off the event loop.
        body = await asyncio.to_thread(runtime.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]


class CountIngest:
    """Counts each answer of the ingest and webhook routes by status class, at the edge: a 400
    for a bad report, a 401 for a bad signature, a 413 from the body limit and a 5xx are all seen,
    whichever layer produced them. Other paths pass through untouched."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        status = 500  # an exception before any answer is what the client sees as a 500

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            self.runtime.metrics.observe_ingest(path, status)
