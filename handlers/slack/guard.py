"""The one permission check every changing listener runs after ``ack()``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncRespond

from slackbot.runtime import Runtime


async def ensure_responder(
    runtime: Runtime, user_id: str, respond: AsyncRespond, what: str = "change incidents"
) -> bool:
    """True when the user may act; otherwise tells them so, ephemerally, and nothing changes."""
    if await runtime.responders.allowed(user_id):
        return True
    await respond(
        text=f"⛔ Only responders ({runtime.responders.describe()}) can {what}; nothing was changed.",
        response_type="ephemeral",
        replace_original=False,
    )
    return False
