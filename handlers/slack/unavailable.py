"""A Slack request the database outage stops is answered in words, never Bolt's default 500.

A person who clicks or types ``/triage`` is told within Slack's 3 seconds that nothing was
recorded and to try again: Slack shows a 503 to a click or a command only as a generic failure
("dispatch_failed"), which says nothing of what happened or what to do. A click is acked (200)
and answered ephemerally at its response URL; ``/triage`` answers there too, then acks
(``handlers.slack.commands``). Events stay 503: Slack redelivers them itself, later. A modal
stays 503 too (Slack keeps it open with what was typed). Nothing unrecorded is acked as if it
had been recorded: the person reads that it was not."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse

from slackbot.db.engine import RETRY_AFTER_SECONDS, UNAVAILABLE

log = logging.getLogger(__name__)

MESSAGE = (
    "⚠️ triagebot cannot reach its database right now, so nothing was recorded or changed. Please try again in a minute."
)
# How long the ack may wait for the message to reach the response URL (Slack allows 3 s in all).
TELL_WITHIN = 1.0
_telling: set[asyncio.Task[Any]] = set()  # messages still on their way after the ack


async def tell(respond: AsyncRespond | None, error: BaseException) -> None:
    """Say the request met a database outage: ephemerally at its response URL, waiting at most
    TELL_WITHIN so the ack still comes in time (a slower post finishes after it)."""
    log.warning("a Slack request met a database outage and was not recorded: %s", error)
    if respond is None or not isinstance(getattr(respond, "response_url", None), str):
        return
    task = asyncio.ensure_future(respond(text=MESSAGE, response_type="ephemeral", replace_original=False))
    _telling.add(task)
    task.add_done_callback(_telling.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a lost answer is not an error
    await asyncio.wait({task}, timeout=TELL_WITHIN)


@asynccontextmanager
async def after_ack(respond: AsyncRespond) -> AsyncIterator[None]:
    """Work a listener does after its ack (a read, a modal's prefill): an outage in it is told
    here. Raised out of the listener, Bolt's runner would replace the ack with the error handler's
    answer (None, the request being acked) before it had read it; it then waits out Slack's 3 s,
    says the listener never acked and hands the click to the next listener that matches, the
    fallback, which answered "not a button I know" after the outage message."""
    try:
        yield
    except UNAVAILABLE as exc:
        await tell(respond, exc)


def register(app: AsyncApp) -> None:
    @app.error
    async def listener_failed(
        error: Exception,
        body: dict[str, Any],
        respond: AsyncRespond | None,
        response: BoltResponse | None,
        logger: logging.Logger,
    ) -> BoltResponse | None:
        if not isinstance(error, UNAVAILABLE):  # as Bolt's default handler, on its filtered logger
            logger.error("Failed to run listener function (error: %s)", error, exc_info=error)
            return None
        if response is None:
            # Raised after the ack. The person is told at the URL, but Bolt may drop that ack and
            # pass the request on to the next listener (see after_ack): listeners wrap what they
            # do after acking in after_ack, and this is only the last resort.
            await tell(respond, error)
            return None
        if isinstance(body, dict) and body.get("type") == "block_actions":
            await tell(respond, error)
            return BoltResponse(status=200, body="")
        log.warning("a Slack request was refused with 503, the database is unavailable: %s", error)
        refusal = {"error": "the database is unavailable; try again in a few seconds", "retryable": True}
        return BoltResponse(
            status=503,
            body=json.dumps(refusal),
            headers={"content-type": "application/json", "retry-after": str(RETRY_AFTER_SECONDS)},
        )
