"""Liveness and readiness. Readiness means the database answers; the card says which part is down."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from slackbot.db.migrate import current_revision
from slackbot.runtime import Runtime


def routes(runtime: Runtime) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        def probe() -> dict[str, object]:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return {"database": "ok", "schema": current_revision(runtime.engine)}

        try:
            checks = await asyncio.to_thread(probe)
        except Exception as exc:  # readiness reports any failure rather than raising it
            return JSONResponse({"status": "unavailable", "database": f"error: {type(exc).__name__}"}, 503)
        checks.update(runtime.readiness_extras())
        return JSONResponse({"status": "ready", **checks})

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
