"""``GET /metrics``: Prometheus text format from the app's own registry (no auth, like /healthz)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slackbot.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    async def metrics(_: Request) -> Response:
        # A scrape reads the database (open incidents, outbox depth): keep it off the event loop.
        body = await asyncio.to_thread(runtime.metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]
