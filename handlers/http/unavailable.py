"""A database outage is the server's trouble, not the request's: 503 with Retry-After and a
sentence, never a 500 with a stack trace. Senders retry; a report or delivery sent twice is
recorded once (runs and deliveries are deduplicated), so retrying is safe."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from slackbot.db.engine import RETRY_AFTER_SECONDS, UNAVAILABLE

log = logging.getLogger(__name__)

MESSAGE = "the database is unavailable; nothing is lost by sending the request again (a repeat is recorded once)"


async def database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s answered 503, the database is unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": MESSAGE, "retryable": True},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    return dict.fromkeys(UNAVAILABLE, database_unavailable)
