"""Outbox handlers for the weekly digest and the triage chart.

The digest is drawn at delivery time from the week its row names (``slackbot.incidents.digests``
scheduled it), so a digest delivered late after an outage still covers its own week. Its chart is
a second row in the same channel lane, so it follows the message. Both are posted once: a row
retried after an error, or taken over from a crashed worker, first looks for what an earlier
attempt may have posted (the message by its metadata, the file by its name in the channel).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine

from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.incidents.digests import chart_of, digest_view
from slackbot.outbox.slack_deliveries import find_posted, post_metadata
from slackbot.outbox.worker import Handler
from slackbot.slack.chart import render_png
from slackbot.slack.digest import digest_blocks, digest_text
from slackbot.slack.escape import truncate

TEXT_LIMIT = 3000  # the notification's fallback text; the blocks carry the rest
HISTORY_PAGES = 5  # a retry looks this far back (200 messages a page) for an earlier upload


class DigestDeliveries:
    def __init__(self, engine: Engine, client: AsyncWebClient, playbooks: Playbooks) -> None:
        self.engine = engine
        self.client = client
        self.playbooks = playbooks

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.DIGEST: self.digest, EffectKind.CHART: self.chart}

    def _digest(self, payload: dict[str, Any]) -> tuple[str, list[dict[str, object]]]:
        since, until = datetime.fromisoformat(payload["since"]), datetime.fromisoformat(payload["until"])
        with session_scope(self.engine) as session:
            view = digest_view(session, self.playbooks, payload["channel"], since, until, payload["zone"])
        return truncate(digest_text(view), TEXT_LIMIT), digest_blocks(view)

    async def digest(self, item: OutboxItem) -> dict[str, Any]:
        channel = str(item.payload["channel"])
        if item.result.get("takeover") or item.last_error:
            found = await find_posted(self.client, channel, item.id or 0)
            if found:
                return {"posted": found, "recovered": True}
        text, blocks = await asyncio.to_thread(self._digest, item.payload)
        response = await self.client.chat_postMessage(
            channel=channel, text=text, blocks=blocks, metadata=post_metadata(item), unfurl_links=False
        )
        return {"posted": str(response["ts"])}

    def _png(self, payload: dict[str, Any]) -> bytes | None:
        """None for a digest with nothing to draw (a quiet channel): two empty panels say nothing
        the digest's text does not. A chart someone asked for is drawn whatever it shows."""
        with session_scope(self.engine) as session:
            data = chart_of(session, self.playbooks, payload)
        if payload.get("scope") and not data.classes and not data.flaky:
            return None
        return render_png(data)

    async def chart(self, item: OutboxItem) -> dict[str, Any]:
        channel, filename = str(item.payload["channel"]), str(item.payload["filename"])
        if item.result.get("takeover") or item.last_error:
            found = await self._find_upload(channel, filename)
            if found:
                return {"file": found, "filename": filename, "recovered": True}
        png = await asyncio.to_thread(self._png, item.payload)
        if png is None:
            return {"skipped": "nothing to chart this week"}
        response = await self.client.files_upload_v2(
            channel=channel,
            content=png,
            filename=filename,
            title=str(item.payload.get("title") or filename),
            initial_comment=str(item.payload.get("comment") or ""),
        )
        files: list[dict[str, Any]] = list(response.get("files") or [])
        file_id = str(files[0]["id"]) if files else str((response.get("file") or {}).get("id", ""))
        return {"file": file_id, "filename": filename, "bytes": len(png)}

    async def _find_upload(self, channel: str, filename: str) -> str | None:
        """A chart's file name is its row's alone (the channel and the week, or the minute asked,
        which is also its dedup key), so a file of that name in the channel is this row's."""
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            response = await self.client.conversations_history(channel=channel, limit=200, cursor=cursor)
            messages: list[dict[str, Any]] = response.get("messages", []) or []
            for message in messages:
                for upload in message.get("files") or []:
                    if upload.get("name") == filename:
                        return str(upload["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None
