"""A Slack request that cannot be recorded because the database is away is answered 503 (Slack
shows the person that the action failed, and they can click again), not Bolt's default 500 with
the stack trace in the log. The request was not acked, so nothing the person sees was promised."""

from __future__ import annotations

import json
import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from slackbot.db.engine import RETRY_AFTER_SECONDS, UNAVAILABLE


def register(app: AsyncApp) -> None:
    @app.error
    async def listener_failed(
        error: Exception, response: BoltResponse | None, logger: logging.Logger
    ) -> BoltResponse | None:
        if not isinstance(error, UNAVAILABLE):  # as Bolt's default handler, on its filtered logger
            logger.error("Failed to run listener function (error: %s)", error, exc_info=error)
            return None
        logger.warning("a Slack request was refused with 503, the database is unavailable: %s", error)
        if response is None:  # already acked: Slack has its answer
            return None
        body = {"error": "the database is unavailable; try again in a few seconds", "retryable": True}
        return BoltResponse(
            status=503,
            body=json.dumps(body),
            headers={"content-type": "application/json", "retry-after": str(RETRY_AFTER_SECONDS)},
        )
