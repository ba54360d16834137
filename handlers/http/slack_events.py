"""``POST /slack/events``: cap the body, check Slack's signature, then hand the request to Bolt.

Bolt reads the whole body whatever its size and logs the bodies of requests it refuses, so
nothing reaches it unread past the cap or unsigned: an unauthenticated caller gets a 413 or a
401 from here, and never a line in the log with what it sent.
"""

from __future__ import annotations

import time

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from handlers.http.body import BodyTooLarge, problem, read_capped, too_large
from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.signing import slack_request_problem


def route(runtime: Runtime, handler: AsyncSlackRequestHandler) -> Route:
    signing_secret = secret(runtime.settings.slack_signing_secret) or ""

    async def slack_events(request: Request) -> Response:
        try:
            body = await read_capped(request, runtime.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return too_large(exc)
        refusal = slack_request_problem(
            body,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            signing_secret,
            time.time(),
        )
        if refusal is not None:
            return problem(401, refusal)

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        return await handler.handle(Request(request.scope, receive=replay))

    return Route("/slack/events", slack_events, methods=["POST"])
