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
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest, AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.guard import ensure_responder, open_view, submitted
from handlers.slack.payloads import (
    BadPayload,
    chosen,
    first_action,
    incident_of,
    inputs,
    metadata,
    metadata_incident,
    refusal,
    request_key,
)
from slackbot.config import Playbook
from slackbot.config.policy import Milestone
from slackbot.db.engine import session_scope
from slackbot.domain.changes import IncidentError, RecordStep, SetMilestone
from slackbot.domain.checklists import StaleButton, StepRef
from slackbot.inbox import Request
from slackbot.incidents import reminders
from slackbot.runtime import Runtime
from slackbot.slack import card
from slackbot.slack.checklist import ACTION_PREFIX
from slackbot.slack.escape import escape

log = logging.getLogger(__name__)

MILESTONE_CALLBACK = "incident_milestone"


def milestone_modal(incident_id: int, playbook: Playbook, milestone: Milestone) -> dict[str, Any]:
    """One input per record field the milestone asks for (resolving always asks the root cause)."""
    intro = (
        f"Resolving *INC-{incident_id}* closes it, cancels its timers and closes its bead. "
        "What you write goes to the timeline, the incident record and the bead."
        if milestone.resolves
        else f"*{escape(milestone.label)}* for *INC-{incident_id}*: what you write goes to the timeline and "
        "the incident record."
    )
    blocks: list[Any] = [SectionBlock(text=intro)]
    for spec in milestone.asks:
        blocks.append(
            InputBlock(
                block_id=spec.key,
                label=spec.label[:2000],
                optional=spec.optional,
                element=PlainTextInputElement(
                    action_id="value",
                    multiline=spec.key == "root_cause" or milestone.resolves,
                    max_length=2000,
                    placeholder="What failed, why, and what fixed it" if spec.key == "root_cause" else None,
                ),
            )
        )
    return View(
        type="modal",
        callback_id=MILESTONE_CALLBACK,
        private_metadata=json.dumps({"incident": incident_id, "milestone": milestone.key}),
        title=f"{milestone.label} INC-{incident_id}"[:24],
        submit="Resolve" if milestone.resolves else "Post",
        close="Cancel",
        blocks=blocks,
    ).to_dict()


def register(app: AsyncApp, runtime: Runtime) -> None:
    async def refuse(respond: AsyncRespond, text: str) -> None:
        await respond(text=text, response_type="ephemeral", replace_original=False)

    @app.action(card.ACTION_STATUS)
    async def status(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        user = body["user"]["id"]
        try:
            action = first_action(body)
            wanted = chosen(action)
            incident_id = incident_of(action, value=False)
            # Read before the ack: whether this milestone needs a form decides what is recorded.
            playbook = await asyncio.to_thread(runtime.playbook_of, incident_id)
            milestone = playbook.milestone(wanted)
            if milestone is None:
                raise IncidentError("this card's status menu is from an older runbook; use /triage status")
        except (IncidentError, BadPayload) as exc:
            await ack()
            await refuse(respond, f"⚠️ {escape(str(exc))}")
            return
        if milestone.asks:
            await ack()
            if await ensure_responder(runtime, user, respond, "post status milestones"):
                # the trigger expires 3 s after the click: open the modal before anything slow
                await open_view(client, body, milestone_modal(incident_id, playbook, milestone), respond)
            return
        url = respond.response_url if isinstance(respond.response_url, str) else None
        asked = SetMilestone(milestone.key)
        await runtime.inbox.record(
            Request(request_key(body), incident_id, user, "button", asked, url, "post status milestones")
        )
        await ack()

    @app.view(MILESTONE_CALLBACK)
    async def milestone_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        fields = inputs(view)
        user = body["user"]["id"]
        if not await runtime.responders.allowed(user):
            refused = f"Only responders ({runtime.responders.describe()}) can change incidents; nothing was changed."
            await ack(**refusal(view, refused))
            return
        try:
            incident_id = metadata_incident(view)
            milestone = metadata(view).get("milestone")
            if not isinstance(milestone, str) or not milestone:
                raise BadPayload("this form is from an older version of the bot; open it again from the card")
        except BadPayload as exc:
            await ack(**refusal(view, str(exc)))
            return
        asked = SetMilestone(milestone, "", {k: v for k, v in fields.items() if v})
        why = await submitted(runtime, Request(request_key(body), incident_id, user, "modal", asked))
        if why:
            await ack(**refusal(view, why))
        else:
            await ack()

    @app.action(re.compile(rf"^{ACTION_PREFIX}:"))
    async def checklist_step(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            ref = StepRef.decode(str(first_action(body).get("value") or ""))
        except (StaleButton, BadPayload) as exc:
            await ack()
            await refuse(respond, f"⚠️ {escape(str(exc))}")
            return
        url = respond.response_url if isinstance(respond.response_url, str) else None
        user = body["user"]["id"]
        asked = Request(request_key(body), ref.incident, user, "button", RecordStep(ref), url, "record runbook steps")
        await runtime.inbox.record(asked)
        await ack()

    app.use(ThreadActivity(runtime))


@dataclass(frozen=True)
class ThreadActivity(AsyncMiddleware):
    """A person replying in an incident thread is the update a reminder would ask for. A
    middleware, not a listener: Bolt runs only the first matching listener, and message events
    also belong to the alert-source listener, which must still see every message. A class, not a
    decorated function: Bolt builds every injectable argument for a function middleware on each
    request, clicks and commands included, before their ``ack()``."""

    runtime: Runtime

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        event = req.body.get("event") or {}
        if req.body.get("type") == "event_callback" and _human_thread_reply(event):
            runtime = self.runtime

            def work() -> bool:
                with session_scope(runtime.engine) as session:
                    return reminders.thread_reply(
                        session,
                        str(event.get("channel", "")),
                        str(event["thread_ts"]),
                        runtime.clock.now(),
                        lambda incident: runtime.playbooks.get(incident.playbook).policy.status_update_every,
                    )

            try:
                if await asyncio.to_thread(work):
                    runtime.notify_committed()
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
