"""Outbox handlers that upload files into incident threads: the postmortem.

A postmortem is a document, not a chat message: it is long, it has tables, people download it and
paste it into the tracker. So it goes into the card's thread as a Markdown file
(``files_upload_v2``: get an upload URL, send the bytes, complete the upload into the thread).

Rendering happens here, at delivery time, so the file shows the incident as it is when posted.
It waits (``RetryLater``) until the card exists, like every thread post.

Uploading once: only the final ``completeUploadExternal`` call shares the file, and it carries no
metadata we could search for. A row that is retried after an error or taken over from a crashed
worker therefore looks in the thread for a file with this name that no other postmortem row has
claimed; each channel is one outbox lane, so two postmortems of a thread never upload at once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem
from slackbot.documents.postmortem import Postmortem, render_postmortem
from slackbot.domain.effects import EffectKind
from slackbot.outbox.slack_deliveries import is_posted
from slackbot.outbox.worker import Handler, PermanentFailure, RetryLater
from slackbot.reads.postmortem import postmortem_inputs
from slackbot.slack.escape import escape

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class FileDeliveries:
    def __init__(self, engine: Engine, client: AsyncWebClient, playbooks: Playbooks, clock: Clock) -> None:
        self.engine = engine
        self.client = client
        self.playbooks = playbooks
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.POSTMORTEM: self.postmortem}

    def _render(self, incident_id: int) -> tuple[Incident, Postmortem]:
        with session_scope(self.engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise PermanentFailure(f"incident {incident_id} no longer exists")
            playbook = self.playbooks.get(incident.playbook)
            inputs = postmortem_inputs(session, playbook, incident, self.clock.now())
            return incident, render_postmortem(inputs)

    async def postmortem(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        incident, document = await asyncio.to_thread(self._render, item.incident_id)
        if not is_posted(incident.card_ts):
            raise RetryLater("the card is not posted yet", after=1.0)
        thread_ts = str(incident.card_ts)
        if item.result.get("takeover") or item.last_error:
            found = await self._find_upload(incident.channel, thread_ts, document.filename, item)
            if found:
                return {"file": found, "filename": document.filename, "recovered": True}
        actor = str(item.payload.get("actor") or "")
        who = f"<@{actor}>" if _USER_ID.match(actor) else escape(actor or "someone")
        kind = "Draft postmortem" if document.draft else "Postmortem"
        note = " (the incident is still open; ask again after it is resolved)" if document.draft else ""
        response = await self.client.files_upload_v2(
            channel=incident.channel,
            thread_ts=thread_ts,
            content=document.markdown,
            filename=document.filename,
            title=document.title,
            initial_comment=f"📝 {kind} of *{incident.key}*{note}, requested by {who}.",
        )
        files: list[dict[str, Any]] = list(response.get("files") or [])
        file_id = str(files[0]["id"]) if files else str((response.get("file") or {}).get("id", ""))
        return {"file": file_id, "filename": document.filename, "draft": document.draft}

    async def _find_upload(self, channel: str, thread_ts: str, filename: str, item: OutboxItem) -> str | None:
        claimed = await asyncio.to_thread(self._claimed_files, item)
        response = await self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
        messages: list[dict[str, Any]] = response.get("messages", []) or []
        for message in messages:
            for upload in message.get("files") or []:
                if upload.get("name") == filename and str(upload.get("id")) not in claimed:
                    return str(upload["id"])
        return None

    def _claimed_files(self, item: OutboxItem) -> set[str]:
        with session_scope(self.engine) as session:
            rows = session.exec(
                select(OutboxItem.result).where(
                    OutboxItem.incident_id == item.incident_id,
                    OutboxItem.kind == EffectKind.POSTMORTEM.value,
                    OutboxItem.id != item.id,
                )
            )
            return {str(result.get("file")) for result in rows if result and result.get("file")}
