"""Outbox handlers for runbook checklists: post once in the incident thread, then redraw in place.

``checklist`` posts the checklist (usually one message, more for a long runbook) as a reply to the
card, so it waits (``RetryLater``) until the card exists, exactly like thread posts. The posted
message timestamps are the row's result; every later redraw (``checklist_update``, one per click
or when a reclassification supersedes it) reads them from there and calls ``chat.update``.

Posting once: each message carries metadata naming its checklist and part. A row that is retried
after an error or taken over from a crashed worker first looks for parts already in the thread,
so a crash or a 429 between two parts never posts a part twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.domain.states import DeliveryState
from slackbot.incidents.checklists import failed_step_roles
from slackbot.outbox.slack_deliveries import is_posted
from slackbot.outbox.worker import Handler, PermanentFailure, RetryLater
from slackbot.reads.checklists import load_checklist_view
from slackbot.slack.checklist import ChecklistView, render_checklist

CHECKLIST_EVENT = "triagebot_checklist"


class ChecklistDeliveries:
    def __init__(self, engine: Engine, client: AsyncWebClient, playbooks: Playbooks) -> None:
        self.engine = engine
        self.client = client
        self.playbooks = playbooks

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.CHECKLIST: self.post, EffectKind.CHECKLIST_UPDATE: self.update}

    def _view(self, incident_id: int, key: str, failure_class: str) -> ChecklistView:
        view = load_checklist_view(self.engine, self.playbooks, incident_id, key, failure_class)
        if view is None:
            raise PermanentFailure(f"incident {incident_id} no longer exists")
        return view

    @staticmethod
    def _render(view: ChecklistView) -> list[tuple[str, list[dict[str, Any]]]]:
        return render_checklist(view, failed_step_roles(view.playbook))

    # -- posting ----------------------------------------------------------------------------------

    async def post(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        view = await asyncio.to_thread(self._view, item.incident_id, item.dedup_key, item.payload["class"])
        incident = view.incident
        if not is_posted(incident.card_ts):
            raise RetryLater("the card is not posted yet", after=1.0)
        thread_ts = str(incident.card_ts)
        parts = self._render(view)
        found: dict[int, str] = {}
        if item.result.get("takeover") or item.last_error:
            found = await self._find_parts(incident.channel, thread_ts, item.dedup_key)
        posted: list[str] = []
        for number, (text, blocks) in enumerate(parts):
            if number in found:
                posted.append(found[number])
                continue
            response = await self.client.chat_postMessage(
                channel=incident.channel,
                thread_ts=thread_ts,
                text=text,
                blocks=blocks,
                metadata={
                    "event_type": CHECKLIST_EVENT,
                    "event_payload": {"checklist": item.dedup_key, "part": number},
                },
                unfurl_links=False,
                unfurl_media=False,
            )
            posted.append(str(response["ts"]))
        return {"posted": posted, "channel": incident.channel}

    async def _find_parts(self, channel: str, thread_ts: str, key: str, pages: int = 5) -> dict[int, str]:
        """The parts of this checklist already in the thread (busy threads span several pages)."""
        found: dict[int, str] = {}
        cursor: str | None = None
        for _ in range(pages):
            response = await self.client.conversations_replies(
                channel=channel, ts=thread_ts, limit=200, cursor=cursor, include_all_metadata=True
            )
            messages: list[dict[str, Any]] = response.get("messages", []) or []
            for message in messages:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == CHECKLIST_EVENT and payload.get("checklist") == key:
                    found[int(payload.get("part", 0))] = str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return found

    # -- redrawing --------------------------------------------------------------------------------

    async def update(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        if "superseded_by" in item.payload:
            keys = await asyncio.to_thread(self._previous, item.incident_id, str(item.payload["superseded_by"]))
        else:
            key = str(item.payload["checklist"])
            if await asyncio.to_thread(self._superseded, item, key):
                return {"superseded": True}
            keys = [key]
        updated: list[str] = []
        for key in keys:
            origin = await asyncio.to_thread(self._origin, key)
            if origin is None:
                raise PermanentFailure(f"no checklist {key}")
            if origin.state in (DeliveryState.DEAD, DeliveryState.SUPERSEDED):
                continue  # never posted (or folded into a newer one unseen): nothing to redraw
            if origin.state != DeliveryState.DONE:
                raise RetryLater("the checklist is not posted yet", after=1.0)
            view = await asyncio.to_thread(self._view, item.incident_id, key, origin.payload["class"])
            parts = self._render(view)
            for ts, (text, blocks) in zip(origin.result.get("posted", []), parts, strict=False):
                await self.client.chat_update(channel=view.incident.channel, ts=ts, text=text, blocks=blocks)
                updated.append(ts)
        return {"updated": updated}

    def _origin(self, key: str) -> OutboxItem | None:
        with session_scope(self.engine) as session:
            return session.exec(
                select(OutboxItem).where(OutboxItem.dedup_key == key, OutboxItem.kind == EffectKind.CHECKLIST.value)
            ).first()

    def _previous(self, incident_id: int, newest: str) -> list[str]:
        """The checklist that was live until ``newest`` was queued: the only one to redraw. Every
        older one lost its buttons when it was superseded in turn, so a run of reclassifications
        costs one redraw each rather than one per earlier checklist (quadratic in Slack calls)."""
        with session_scope(self.engine) as session:
            newest_id = select(OutboxItem.id).where(OutboxItem.dedup_key == newest).scalar_subquery()
            key = session.exec(
                select(OutboxItem.dedup_key)
                .where(
                    OutboxItem.incident_id == incident_id,
                    OutboxItem.kind == EffectKind.CHECKLIST.value,
                    col(OutboxItem.id) < newest_id,
                    # one dropped unseen (coalescing) has nothing to strike out; the one before has
                    col(OutboxItem.state) != DeliveryState.SUPERSEDED.value,
                )
                .order_by(col(OutboxItem.id).desc())
                .limit(1)
            ).first()
            return [key] if key is not None else []

    def _superseded(self, item: OutboxItem, key: str) -> bool:
        """A newer redraw of the same checklist is queued: this one would only be overwritten."""
        with session_scope(self.engine) as session:
            newer = session.exec(
                select(OutboxItem.id).where(
                    OutboxItem.kind == EffectKind.CHECKLIST_UPDATE.value,
                    OutboxItem.state == DeliveryState.PENDING.value,
                    col(OutboxItem.dedup_key).startswith(f"checklist-update:{key}:"),
                    col(OutboxItem.id) > (item.id or 0),
                )
            ).first()
            return newer is not None
