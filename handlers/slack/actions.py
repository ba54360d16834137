"""Card buttons and selects: one small listener per action, each acking before anything else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from handlers.slack.guard import ensure_responder
from handlers.slack.payloads import BadPayload, chosen, first_action, incident_of
from slackbot.domain.changes import (
    Acknowledge,
    Actor,
    Change,
    Classify,
    Escalate,
    IncidentError,
    SetFlag,
    SetSeverity,
    ShowDetails,
)
from slackbot.domain.ids import IncidentRefError, parse_escalate_value
from slackbot.reads.queries import QueryError
from slackbot.runtime import Runtime
from slackbot.slack import card, replies
from slackbot.slack.escape import escape

Wanted = Change | Callable[[dict[str, Any]], Change]


def register(app: AsyncApp, runtime: Runtime) -> None:
    after_ack = runtime.after_ack

    async def refuse(respond: AsyncRespond, message: str) -> None:
        await respond(text=f"⚠️ {escape(message)}", response_type="ephemeral", replace_original=False)

    async def change(body: dict[str, Any], respond: AsyncRespond, wanted: Wanted) -> None:
        """Queue the change with only the ids it needs, so Bolt can drop the request (see after_ack).
        ``wanted`` may read the action (a select's option) once the clicker is known to be a responder."""
        user = body["user"]["id"]
        action = first_action(body)
        ids = {"value": action.get("value"), "block_id": action.get("block_id")}
        if not await ensure_responder(runtime, user, respond):  # cached: no I/O on the usual path
            return
        try:
            asked = wanted(action) if callable(wanted) else wanted
        except BadPayload as exc:
            await refuse(respond, str(exc))
            return
        after_ack.submit(apply, user, ids, respond, asked)

    async def apply(user: str, action: dict[str, Any], respond: AsyncRespond, wanted: Change) -> None:
        try:
            if isinstance(wanted, Escalate):
                incident_id, seen = parse_escalate_value(str(action.get("value") or ""))
                wanted = Escalate(wanted.reason, seen_level=seen)
            else:
                incident_id = incident_of(action)
            outcome = await asyncio.to_thread(runtime.change, incident_id, Actor(user, "button"), wanted)
        except (IncidentError, IncidentRefError, BadPayload) as exc:
            after_ack.spawn(refuse(respond, str(exc)))
            return
        if outcome.changed:
            runtime.notify_committed()  # only a change wrote outbox rows; waking the worker costs a claim
        else:
            after_ack.spawn(respond(text=outcome.message, response_type="ephemeral", replace_original=False))

    @app.action(card.ACTION_ACK)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, Acknowledge())

    @app.action(card.ACTION_CLASSIFY)
    async def classify(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, lambda action: Classify(chosen(action)))

    @app.action(card.ACTION_SEVERITY)
    async def severity(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, lambda action: SetSeverity(chosen(action)))

    @app.action(card.ACTION_FLAG)
    async def flag(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, lambda action: SetFlag(chosen(action)))

    @app.action(card.ACTION_ESCALATE)
    async def escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, Escalate("escalated from the card"))

    # The card's details are its own state, kept by the core: the redraw that shows them is the
    # same outbox redraw every change makes, so a later change keeps them shown.
    @app.action(card.ACTION_DETAILS)
    async def show_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, ShowDetails(on=True))

    @app.action(card.ACTION_HIDE_DETAILS)
    async def hide_details(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, ShowDetails(on=False))

    @app.action(card.ACTION_RUNBOOK)
    async def runbook(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
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
