"""Interactions nobody can act on, answered instead of dropped.

A middleware checks every interaction before the listeners match it (over HTTP and Socket Mode
alike): a click without an action, a modal without its state. Listeners registered last catch
the well-formed rest that no other listener knows (a button or a form from another app or an
older bot). Each answers the person, ephemerally or in the modal, and changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse

from handlers.slack.payloads import error_view, first_action, problem
from slackbot.domain.ids import echo
from slackbot.runtime import Runtime
from slackbot.slack.escape import escape

log = logging.getLogger(__name__)
ANYTHING = re.compile(r"(?s).*")


async def tell(respond: AsyncRespond, text: str) -> None:
    """An ephemeral answer, when the request came with somewhere to send one."""
    if respond.response_url:
        await respond(text=text, response_type="ephemeral", replace_original=False)


class AnswerMalformed(AsyncMiddleware):
    """A class, not a decorated function: Bolt builds every injectable argument for a function
    middleware on each request before its ``ack()``; this one only reads the body."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        found = problem(req.body)
        if found is None:
            return await next()
        log.info("answered a malformed Slack interaction from %s: %s", found.user, found.message)
        if found.modal:
            return BoltResponse(status=200, body={"response_action": "update", "view": error_view(found.message)})
        if found.user and found.response_url:
            respond = req.context.respond
            if respond is not None:
                self.runtime.after_ack.spawn(tell(respond, f"⚠️ {escape(found.message)}"))
                return BoltResponse(status=200, body="")
        return BoltResponse(status=400, body={"error": found.message})


def register(app: AsyncApp, runtime: Runtime) -> None:
    """The middleware; before the listeners' own middlewares (after acks are noted)."""
    app.use(AnswerMalformed(runtime))


def register_fallbacks(app: AsyncApp) -> None:
    """Last of all listeners: Bolt runs the first that matches, so these see only the unknown."""

    @app.action(ANYTHING)
    async def unknown_action(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action_id = str(first_action(body).get("action_id", ""))
        await tell(
            respond,
            f"⚠️ `{escape(echo(action_id))}` is not a button I know (the card may be from an older version of "
            "the bot); nothing was changed. `/triage help` lists what I can do.",
        )

    @app.view(ANYTHING)
    async def unknown_view(ack: AsyncAck, view: dict[str, Any]) -> None:
        callback = echo(view.get("callback_id", ""))
        await ack(
            response_action="update",
            view=error_view(
                f"'{callback}' is not a form I know (it may be from an older version of the bot); nothing was changed."
            ),
        )
