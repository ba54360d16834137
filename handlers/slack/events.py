"""Every Slack request is noted (acks go first); Events API: de-duplicate Slack's retries, App Home.

Slack retries an event (same ``event_id``, ``x-slack-retry-num`` set) when we were slow or it
could not tell we answered. Bolt leaves de-duplication to us; a unique row per event id does it
across replicas.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.after_ack import AckFirst
from slackbot.reads.home import load_home
from slackbot.reads.snapshot import read_session
from slackbot.runtime import Runtime
from slackbot.slack.home import render_home_view

log = logging.getLogger(__name__)


class NoteArrivals(AsyncMiddleware):
    """Tells the after-ack scheduler a Slack request came in, so queued work yields to its ack
    (``slackbot.after_ack``). First of our middlewares, over HTTP and Socket Mode alike."""

    def __init__(self, gate: AckFirst) -> None:
        self.gate = gate

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        self.gate.arrived()
        return await next()


class DropDuplicateEvents(AsyncMiddleware):
    """Answers a repeated ``event_id`` with 200 and runs no listener for it.

    A middleware class, not a decorated function: Bolt builds every injectable argument for a
    function middleware on each request, commands and clicks included, before their ``ack()``;
    this one reads the body and, for anything but an event, only passes the request on.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await asyncio.to_thread(self.runtime.first_delivery, "slack_event", str(event_id)):
            log.info("dropping duplicate Slack event %s", event_id)
            return BoltResponse(status=200, body="")
        return await next()


def register(app: AsyncApp, runtime: Runtime) -> None:
    app.use(NoteArrivals(runtime.after_ack.gate))
    app.use(DropDuplicateEvents(runtime))

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event["user"]

        def work() -> dict[str, Any]:
            with read_session(runtime.engine) as session:  # a snapshot: no writer waits on App Home
                return render_home_view(load_home(session, user, runtime.clock.now()), runtime.playbooks)

        await client.views_publish(user_id=user, view=await asyncio.to_thread(work))
