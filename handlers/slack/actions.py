"""Card buttons and selects: one small listener per action, each acking before anything else."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from handlers.slack.guard import ensure_responder
from slackbot.core import Core
from slackbot.services.incidents import Actor, IncidentError
from slackbot.slack import card, replies
from slackbot.slack.escape import escape


def _incident_id(action: dict[str, Any]) -> int:
    """Buttons carry the id in ``value``; selects in the block id ``incident:<id>``."""
    raw = action.get("value") or str(action.get("block_id", "")).removeprefix("incident:")
    if not raw.isdigit():
        raise IncidentError("this card is from an older version of the bot; use /triage with the incident id")
    return int(raw)


def register(app: AsyncApp, core: Core) -> None:
    after_ack = core.after_ack

    async def change(body: dict[str, Any], respond: AsyncRespond, operation: str, **kwargs: Any) -> None:
        """Queue the change with only the ids it needs, so Bolt can drop the request (see after_ack)."""
        user = body["user"]["id"]
        action = body["actions"][0]
        ids = {"value": action.get("value"), "block_id": action.get("block_id")}
        if not await ensure_responder(core, user, respond):  # cached: no I/O on the usual path
            return
        after_ack.submit(apply, user, ids, respond, operation, kwargs)

    async def apply(
        user: str, action: dict[str, Any], respond: AsyncRespond, operation: str, kwargs: dict[str, Any]
    ) -> None:
        try:
            outcome = await asyncio.to_thread(
                core.incidents.run,
                core.engine,
                operation,
                _incident_id(action),
                Actor(user, "button"),
                **kwargs,
            )
        except IncidentError as exc:
            after_ack.spawn(respond(text=f"⚠️ {escape(str(exc))}", response_type="ephemeral", replace_original=False))
            return
        if outcome.changed:
            core.notify_committed()  # only a change wrote outbox rows; waking the worker costs a claim
        else:
            after_ack.spawn(respond(text=outcome.message, response_type="ephemeral", replace_original=False))

    @app.action(card.ACTION_ACK)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, "acknowledge")

    @app.action(card.ACTION_CLASSIFY)
    async def classify(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        chosen = body["actions"][0]["selected_option"]["value"]
        await change(body, respond, "classify", failure_class=chosen)

    @app.action(card.ACTION_SEVERITY)
    async def severity(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        chosen = body["actions"][0]["selected_option"]["value"]
        await change(body, respond, "set_severity", severity=chosen)

    @app.action(card.ACTION_ESCALATE)
    async def escalate(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await change(body, respond, "escalate", reason="escalated from the card")

    @app.action(card.ACTION_RUNBOOK)
    async def runbook(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        incident = (await asyncio.to_thread(core.card_view, _incident_id(body["actions"][0]))).incident
        topic = incident.failure_class or incident.suggested_class
        parts = [replies.runbook_text(core.runbook, topic)] if topic else []
        for ident in (incident.scenario_id, incident.invariant_id):
            if ident and "-" in ident:
                parts.append(replies.runbook_text(core.runbook, ident.split("-", 1)[0]))
        text = "\n\n".join(parts) or replies.runbook_text(core.runbook, None)
        await respond(text=text, response_type="ephemeral", replace_original=False)
