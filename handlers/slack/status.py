"""Status from Slack: the card's Status… select, the resolve modal, checklist buttons, and human
replies in incident threads (they count as the update a quiet-thread reminder would ask for).

Thin as every listener: ack first, check the responder, call a service, answer on refusal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.guard import ensure_responder
from slackbot.core import Core
from slackbot.db.engine import session_scope
from slackbot.services import reminders
from slackbot.services.checklists import StepRef
from slackbot.services.incidents import Actor, IncidentError, Outcome
from slackbot.slack import card
from slackbot.slack.checklist import ACTION_PREFIX
from slackbot.slack.escape import escape

log = logging.getLogger(__name__)

RESOLVE_CALLBACK = "resolve_incident"
ROOT_CAUSE = "root_cause"


def resolve_modal(incident_id: int) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=RESOLVE_CALLBACK,
        private_metadata=json.dumps({"incident": incident_id}),
        title=f"Resolve INC-{incident_id}"[:24],
        submit="Resolve",
        close="Cancel",
        blocks=[
            SectionBlock(
                text=f"Resolving *INC-{incident_id}* closes it, cancels its timers and closes its bead. "
                "The root cause goes to the timeline and the bead."
            ),
            InputBlock(
                block_id=ROOT_CAUSE,
                label="Root cause",
                element=PlainTextInputElement(
                    action_id="value",
                    multiline=True,
                    max_length=2000,
                    placeholder="What failed, why, and what fixed it",
                ),
            ),
        ],
    ).to_dict()


def _incident_id(action: dict[str, Any]) -> int:
    raw = str(action.get("block_id", "")).removeprefix("incident:")
    if not raw.isdigit():
        raise IncidentError("this card is from an older version of the bot; use /triage status with the incident id")
    return int(raw)


def register(app: AsyncApp, core: Core) -> None:
    async def refuse(respond: AsyncRespond, text: str) -> None:
        await respond(text=text, response_type="ephemeral", replace_original=False)

    async def answer(respond: AsyncRespond, outcome: Outcome) -> None:
        if outcome.changed:
            core.notify_committed()
        else:
            await refuse(respond, outcome.message)

    @app.action(card.ACTION_STATUS)
    async def status(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        action = body["actions"][0]
        chosen = action["selected_option"]["value"]
        if not await ensure_responder(core, user, respond, "post status milestones"):
            return
        try:
            incident_id = _incident_id(action)
            if chosen == "resolved":
                # the trigger expires 3 s after the click: open the modal before anything slow
                await client.views_open(trigger_id=body["trigger_id"], view=resolve_modal(incident_id))
                return
            outcome = await core.after_ack.run(  # in order with the clicks and commands before it
                asyncio.to_thread,
                core.incidents.run,
                core.engine,
                "set_milestone",
                incident_id,
                Actor(user, "button"),
                milestone=chosen,
            )
        except IncidentError as exc:
            await refuse(respond, f"⚠️ {escape(str(exc))}")
            return
        await answer(respond, outcome)

    @app.view(RESOLVE_CALLBACK)
    async def resolve(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        root_cause = (view["state"]["values"][ROOT_CAUSE]["value"].get("value") or "").strip()
        if not root_cause:
            await ack(response_action="errors", errors={ROOT_CAUSE: "Say what the root cause was."})
            return
        user = body["user"]["id"]
        if not await core.responders.allowed(user):
            await ack(response_action="errors", errors={ROOT_CAUSE: "Only responders can resolve incidents."})
            return
        incident_id = int(json.loads(view["private_metadata"])["incident"])
        try:
            await asyncio.to_thread(
                core.incidents.run,
                core.engine,
                "set_milestone",
                incident_id,
                Actor(user, "button"),
                milestone="resolved",
                note=root_cause,
            )
        except IncidentError as exc:  # e.g. a flake without its bead: the modal stays open and says why
            await ack(response_action="errors", errors={ROOT_CAUSE: str(exc)[:300]})
            return
        await ack()
        core.notify_committed()

    @app.action(re.compile(rf"^{ACTION_PREFIX}:"))
    async def checklist_step(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await ensure_responder(core, user, respond, "record runbook steps"):
            return
        try:
            ref = StepRef.decode(str(body["actions"][0].get("value", "")))
            outcome = await core.after_ack.run(
                asyncio.to_thread, core.checklists.run, core.engine, ref, Actor(user, "button")
            )
        except IncidentError as exc:
            await refuse(respond, f"⚠️ {escape(str(exc))}")
            return
        await answer(respond, outcome)

    @app.middleware
    async def thread_activity(body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        """A person replying in an incident thread is the update a reminder would ask for. A
        middleware, not a listener: Bolt runs only the first matching listener, and message
        events also belong to the alert-source listener, which must still see every message."""
        event = body.get("event") or {}
        if body.get("type") == "event_callback" and _human_thread_reply(event):

            def work() -> bool:
                with session_scope(core.engine) as session:
                    return reminders.thread_reply(
                        session,
                        str(event.get("channel", "")),
                        str(event["thread_ts"]),
                        core.clock.now(),
                        core.runbook.policy.status_update_every,
                    )

            try:
                if await asyncio.to_thread(work):
                    core.notify_committed()
            except Exception:  # the reminder is a courtesy: never let it drop the event
                log.exception("could not record thread activity")
        return await next()


def _human_thread_reply(event: dict[str, Any]) -> bool:
    """Replies by people in a thread; the bot's own posts and edits have a bot_id or subtype."""
    thread_ts = event.get("thread_ts")
    return (
        event.get("type") == "message"
        and bool(thread_ts)
        and thread_ts != event.get("ts")
        and not event.get("subtype")
        and not event.get("bot_id")
    )
