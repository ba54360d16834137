"""The permission check listeners run after ``ack()``, opening a modal, and a form's change."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.inbox import Request
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


async def open_view(client: AsyncWebClient, body: dict[str, Any], view: dict[str, Any], respond: AsyncRespond) -> None:
    """Open a modal for a click; when Slack will not (no or an expired trigger), say so instead."""
    trigger = body.get("trigger_id")
    try:
        if not isinstance(trigger, str) or not trigger:
            raise ValueError("the click carried no trigger_id")
        await client.views_open(trigger_id=trigger, view=view)
    except (ValueError, SlackApiError) as exc:
        why = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        await respond(
            text=f"⚠️ Slack did not open the form ({why}); nothing was changed. Try again from the card.",
            response_type="ephemeral",
            replace_original=False,
        )


MODAL_WAIT = 2.0  # seconds a form waits for its outcome: Slack closes it with an error after 3


async def submitted(runtime: Runtime, request: Request) -> str | None:
    """Record a form's change, wait for it to be applied, and return why it was refused, if it
    was (the form shows it). Not applied in time (a burst ahead of it): the form closes and the
    change follows, from the inbox; a refusal then is only in the row and the log."""
    await runtime.inbox.record(request, urgent=True)
    applied = await runtime.inbox.outcome(request.key, MODAL_WAIT)
    return applied.message if applied is not None and applied.state == "refused" else None
