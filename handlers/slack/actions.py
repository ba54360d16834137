"""Card buttons and selects: one small listener per action, each acking before anything else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from handlers.slack import unavailable
from handlers.slack.payloads import BadPayload, chosen, first_action, incident_of, request_key
from handlers.slack.respond import PooledRespond
from slackbot.domain.changes import (
    Acknowledge,
    Change,
    Classify,
    Escalate,
    SetFlag,
    SetSeverity,
    ShowDetails,
)
from slackbot.domain.ids import IncidentRefError, parse_escalate_value
from slackbot.inbox import Request
from slackbot.reads.queries import QueryError
from slackbot.runtime import Runtime
from slackbot.slack import card, replies
from slackbot.slack.escape import escape

Wanted = Change | Callable[[dict[str, Any]], Change]


def suggested_class(action: dict[str, Any]) -> str:
    """The class a Confirm button confirms: its block names it (``card.SUGGESTION_BLOCK``)."""
    block = action.get("block_id")
    if not isinstance(block, str) or not block.startswith(card.SUGGESTION_BLOCK):
        raise BadPayload("this card is from an older version of the bot; use /triage classify")
    return block.removeprefix(card.SUGGESTION_BLOCK)


def register(app: AsyncApp, runtime: Runtime) -> None:
    inbox = runtime.inbox

    async def refuse(respond: AsyncRespond, message: str) -> None:
        await respond(text=f"⚠️ {escape(message)}", response_type="ephemeral", replace_original=False)

    async def answer(url: str, text: str, in_channel: bool) -> None:
        """How the inbox answers a request nobody waits for (a click, or one from before a restart)."""
        respond = PooledRespond(response_url=url, client=runtime.slack)
        await respond(text=text, response_type="in_channel" if in_channel else "ephemeral", replace_original=False)

    inbox.answer = answer

    async def change(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, wanted: Wanted) -> None:
        """Record what the click asks for, then ack: an acked click is never lost (slackbot.inbox).
        Only pure parsing comes first; who may act is checked when it is applied. ``wanted`` may
        read the action (a select's option)."""
        try:
            action = first_action(body)
            asked = wanted(action) if callable(wanted) else wanted
            if isinstance(asked, Escalate):
                incident_id, seen = parse_escalate_value(str(action.get("value") or ""))
                asked = Escalate(asked.reason, seen_level=seen)
            else:
                incident_id = incident_of(action)
        except (BadPayload, IncidentRefError) as exc:
            await ack()
            await refuse(respond, str(exc))
            return
        url = respond.response_url if isinstance(respond.response_url, str) else None
        await inbox.record(Request(request_key(body), incident_id, body["user"]["id"], "button", asked, url))
        await ack()

    @app.action(card.ACTION_ACK)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, Acknowledge())

    @app.action(card.ACTION_CLASSIFY)
    async def classify(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, lambda action: Classify(chosen(action)))

    # Confirm the suggestion: the same classification as the menu, with the class the card showed.
    @app.action(card.ACTION_CONFIRM)
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, lambda action: Classify(suggested_class(action)))

    @app.action(card.ACTION_SEVERITY)
    async def severity(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, lambda action: SetSeverity(chosen(action)))

    @app.action(card.ACTION_FLAG)
    async def flag(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, lambda action: SetFlag(chosen(action)))

    @app.action(card.ACTION_ESCALATE)
    async def escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, Escalate("escalated from the card"))

    # The card's details are its own state, kept by the core: the redraw that shows them is the
    # same outbox redraw every change makes, so a later change keeps them shown.
    @app.action(card.ACTION_DETAILS)
    async def show_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, ShowDetails(on=True))

    @app.action(card.ACTION_HIDE_DETAILS)
    async def hide_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await change(ack, body, respond, ShowDetails(on=False))

    @app.action(card.ACTION_RUNBOOK)
    async def runbook(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        async with unavailable.after_ack(respond):
            await show_runbook(body, respond)

    async def show_runbook(body: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            view = await asyncio.to_thread(runtime.card_view, incident_of(first_action(body)))
        except (BadPayload, QueryError) as exc:
            await refuse(respond, str(exc))
            return
        incident, playbook = view.incident, view.playbook
        topic = incident.owning_class
        parts = [replies.runbook_text(playbook, topic)] if topic else []
        for entry in (playbook.scenario_entry(incident.scenario_id), playbook.invariant_entry(incident.invariant_id)):
            if entry is not None:
                parts.append(replies.runbook_text(playbook, entry.prefix))
        text = "\n\n".join(parts) or replies.runbook_text(playbook, None)
        await respond(text=text, response_type="ephemeral", replace_original=False)
