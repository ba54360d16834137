"""Card buttons and selects: one small listener per action, each acking before anything else."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from handlers.slack.guard import ensure_responder
from slackbot.domain.changes import Acknowledge, Actor, Change, Classify, Escalate, IncidentError, SetFlag, SetSeverity
from slackbot.runtime import Runtime
from slackbot.slack import card, replies
from slackbot.slack.escape import escape


def _incident_id(action: dict[str, Any]) -> int:
    """Buttons carry the id in ``value``; selects in the block id ``incident:<id>``."""
    raw = action.get("value") or str(action.get("block_id", "")).removeprefix("incident:")
    if not raw.isdigit():
        raise IncidentError("this card is from an older version of the bot; use /triage with the incident id")
    return int(raw)


def register(app: AsyncApp, runtime: Runtime) -> None:
    after_ack = runtime.after_ack

    async def change(body: dict[str, Any], respond: AsyncRespond, wanted: Change) -> None:
        """Queue the change with only the ids it needs, so Bolt can drop the request (see after_ack)."""
        user = body["user"]["id"]
        action = body["actions"][0]
        ids = {"value": action.get("value"), "block_id": action.get("block_id")}
        if not await ensure_responder(runtime, user, respond):  # cached: no I/O on the usual path
            return
        after_ack.submit(apply, user, ids, respond, wanted)

    async def apply(user: str, action: dict[str, Any], respond: AsyncRespond, wanted: Change) -> None:
        try:
            outcome = await asyncio.to_thread(runtime.change, _incident_id(action), Actor(user, "button"), wanted)
        except IncidentError as exc:
            after_ack.spawn(respond(text=f"⚠️ {escape(str(exc))}", response_type="ephemeral", replace_original=False))
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
        chosen = body["actions"][0]["selected_option"]["value"]
        await change(body, respond, Classify(chosen))

    @app.action(card.ACTION_SEVERITY)
    async def severity(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        chosen = body["actions"][0]["selected_option"]["value"]
        await change(body, respond, SetSeverity(chosen))

    @app.action(card.ACTION_FLAG)
    async def flag(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        chosen = body["actions"][0]["selected_option"]["value"]
        await change(body, respond, SetFlag(chosen))

    @app.action(card.ACTION_ESCALATE)
    async def escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, Escalate("escalated from the card"))

    @app.action(card.ACTION_RUNBOOK)
    async def runbook(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        view = await asyncio.to_thread(runtime.card_view, _incident_id(body["actions"][0]))
        incident, playbook = view.incident, view.playbook
        topic = incident.owning_class
        parts = [replies.runbook_text(playbook, topic)] if topic else []
        for entry in (playbook.scenario_entry(incident.scenario_id), playbook.invariant_entry(incident.invariant_id)):
            if entry is not None:
                parts.append(replies.runbook_text(playbook, entry.prefix))
        text = "\n\n".join(parts) or replies.runbook_text(playbook, None)
        await respond(text=text, response_type="ephemeral", replace_original=False)
