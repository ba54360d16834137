"""The card's File bead button: a modal prefilled from the defect template, then filing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack import unavailable
from handlers.slack.guard import ensure_responder, open_view, submitted
from handlers.slack.payloads import (
    BadPayload,
    first_action,
    incident_of,
    inputs,
    metadata_incident,
    refusal,
    request_key,
)
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident
from slackbot.documents.record import RecordTemplateError, render_record
from slackbot.domain.changes import IncidentError, RequestBead
from slackbot.inbox import Request
from slackbot.reads.record import record_inputs
from slackbot.runtime import Runtime
from slackbot.slack import card
from slackbot.slack.escape import escape, truncate

CALLBACK = "file_bead"


def bead_modal(incident: Incident, title: str, expected: str, observed: str) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=CALLBACK,
        private_metadata=json.dumps({"incident": incident.id}),
        title="File defect bead",
        submit="File bead",
        close="Cancel",
        blocks=[
            SectionBlock(text=f"*{escape(title)}*\nThe body follows the playbook's record template."),
            InputBlock(
                block_id="expected",
                label="Expected",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, initial_value=truncate(expected, 2900)
                ),
            ),
            InputBlock(
                block_id="observed",
                label="Observed",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, initial_value=truncate(observed, 2900)
                ),
            ),
        ],
    ).to_dict()


def register(app: AsyncApp, runtime: Runtime) -> None:
    @app.action(card.ACTION_BEAD)
    async def open_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await ensure_responder(runtime, user, respond, "file beads"):
            return
        try:
            incident_id = incident_of(first_action(body))
        except BadPayload as exc:
            await respond(text=f"⚠️ {escape(str(exc))}", response_type="ephemeral", replace_original=False)
            return

        def prefill() -> dict[str, Any]:
            with session_scope(runtime.engine) as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    raise IncidentError(f"no incident INC-{incident_id}")
                inputs = record_inputs(session, runtime.playbooks.get(incident.playbook), incident)
                try:
                    title = render_record(inputs).title
                except RecordTemplateError as exc:
                    raise IncidentError(str(exc)) from exc
                return bead_modal(incident, title, inputs.expected, inputs.observed)

        async with unavailable.after_ack(respond):
            try:
                view = await asyncio.to_thread(prefill)
            except IncidentError as exc:
                await respond(text=f"⚠️ {escape(str(exc))}", response_type="ephemeral", replace_original=False)
                return
            await open_view(client, body, view, respond)

    @app.view(CALLBACK)
    async def submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        # The same check as the button's (and as resolve's): a modal outlives its opener's
        # membership, and a submission can be replayed by someone who never opened it.
        if not await runtime.responders.allowed(user):
            refused = f"Only responders ({runtime.responders.describe()}) can file beads; nothing was changed."
            await ack(**refusal(view, refused, "expected"))
            return
        try:
            incident_id = metadata_incident(view)
        except BadPayload as exc:
            await ack(**refusal(view, str(exc), "expected"))
            return
        values = inputs(view)
        expected, observed = values.get("expected", ""), values.get("observed", "")
        errors = {
            k: "Say what should have happened." if k == "expected" else "Say what happened instead."
            for k, v in (("expected", expected), ("observed", observed))
            if not v
        }
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        asked = Request(request_key(body), incident_id, user, "modal", RequestBead(expected, observed))
        why = await submitted(runtime, asked)  # recorded before the ack, applied in order
        if why:
            await ack(**refusal(view, why, "expected"))
        else:
            await ack()
