"""The card's File bead button: a modal prefilled from the defect template, then filing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.guard import ensure_responder
from slackbot.core import Core
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident
from slackbot.services.beads import title_for
from slackbot.services.incidents import Actor, IncidentError
from slackbot.slack import card
from slackbot.slack.escape import escape, truncate

CALLBACK = "file_bead"


def bead_modal(incident: Incident, expected: str, observed: str) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=CALLBACK,
        private_metadata=json.dumps({"incident": incident.id}),
        title="File defect bead",
        submit="File bead",
        close="Cancel",
        blocks=[
            SectionBlock(text=f"*{escape(title_for(incident))}*\nThe body follows the runbook's defect template."),
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


def register(app: AsyncApp, core: Core) -> None:
    @app.action(card.ACTION_BEAD)
    async def open_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        if not await ensure_responder(core, user, respond, "file beads"):
            return
        incident_id = int(body["actions"][0]["value"])

        def prefill() -> dict[str, Any]:
            with session_scope(core.engine) as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    raise IncidentError(f"no incident INC-{incident_id}")
                expected, observed = core.beads.defaults(session, incident)
                return bead_modal(incident, expected, observed)

        try:
            view = await asyncio.to_thread(prefill)
        except IncidentError as exc:
            await respond(text=f"⚠️ {escape(str(exc))}", response_type="ephemeral", replace_original=False)
            return
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(CALLBACK)
    async def submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        expected = (values["expected"]["value"].get("value") or "").strip()
        observed = (values["observed"]["value"].get("value") or "").strip()
        errors = {
            k: "Say what should have happened." if k == "expected" else "Say what happened instead."
            for k, v in (("expected", expected), ("observed", observed))
            if not v
        }
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        incident_id = int(json.loads(view["private_metadata"])["incident"])
        try:
            await asyncio.to_thread(
                core.incidents.run,
                core.engine,
                "request_bead",
                incident_id,
                Actor(body["user"]["id"], "button"),
                expected=expected,
                observed=observed,
            )
        except IncidentError as exc:
            await ack(response_action="errors", errors={"expected": str(exc)[:150]})
            return
        await ack()
        core.notify_committed()
