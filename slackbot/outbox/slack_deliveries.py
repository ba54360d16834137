"""Outbox handlers that talk to Slack: the card, thread posts and ops notices.

Posting a card exactly once across replicas and crashes:
1. claim the incident's card slot by compare-and-set (``card_ts`` NULL → ``claim:<expiry>:<worker>``);
2. post with message metadata naming the incident;
3. record the real ``ts`` where ``card_ts`` still holds our claim.
A worker that takes over an expired claim first looks in the channel for a message carrying that
metadata, so a crash between steps 2 and 3 does not produce a second card. Thread posts carry
their outbox id in metadata for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.incidents import reminders
from slackbot.outbox.worker import Handler, PermanentFailure, RetryLater
from slackbot.reads.cardview import load_card_view, load_incident_and_run
from slackbot.slack.card import CardView, render_card
from slackbot.slack.escape import escape
from slackbot.slack.posts import render_post

CARD_EVENT = "triagebot_card"
POST_EVENT = "triagebot_post"
CLAIM_SECONDS = 120


def _claim_token(now: float, worker: str, seconds: float = CLAIM_SECONDS) -> str:
    return f"claim:{int(now + seconds):012d}:{worker}"


def is_posted(card_ts: str | None) -> bool:
    return bool(card_ts) and not str(card_ts).startswith("claim:")


def _no_unlogged_dumps(logger: logging.Logger) -> None:
    """slack_sdk decides whether to format its DEBUG dump of every request and response (the
    blocks, the echoed message) from ``logger.level <= DEBUG``, which a logger without a level of
    its own (NOTSET, 0) always passes: each card edit formatted kilobytes that were then dropped.
    Pinning the level the logger has anyway keeps what is logged the same (DEBUG, if configured
    before the workers are built, still dumps) and skips the formatting otherwise."""
    if logger.level == logging.NOTSET:
        logger.setLevel(logger.getEffectiveLevel())


class SlackDeliveries:
    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        playbooks: Playbooks,
        clock: Clock,
        worker_id: str,
        *,
        claim_seconds: float = CLAIM_SECONDS,
    ) -> None:
        self.engine = engine
        self.client = client
        _no_unlogged_dumps(client.logger)
        self.playbooks = playbooks
        self.clock = clock
        self.worker_id = worker_id
        # How long a card slot stays claimed by a worker that may have died mid-post. It should
        # not outlast the outbox lease: the worker that takes the row over must not then wait
        # for the slot (with a 3 s lease and a 120 s slot, a crash held cards back two minutes).
        self.claim_seconds = claim_seconds

    def handlers(self) -> dict[str, Handler]:
        return {
            EffectKind.CARD: self.card,
            EffectKind.THREAD_POST: self.thread_post,
            EffectKind.OPS_NOTICE: self.ops_notice,
        }

    def load_view(self, incident_id: int) -> CardView:
        view = load_card_view(self.engine, self.playbooks, incident_id)
        if view is None:
            raise PermanentFailure(f"incident {incident_id} no longer exists")
        return view

    # -- the card ---------------------------------------------------------------------------------

    async def card(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        incident_id = item.incident_id
        view = await asyncio.to_thread(self.load_view, incident_id)
        text, blocks = render_card(view)
        incident = view.incident
        if is_posted(incident.card_ts):
            await self.client.chat_update(channel=incident.channel, ts=str(incident.card_ts), text=text, blocks=blocks)
            return {"updated": incident.card_ts, "revision": incident.revision}
        claim = await asyncio.to_thread(self._claim_card_slot, incident_id)
        if claim is None:
            raise RetryLater("another worker is posting this card", after=1.0)
        token, took_over = claim
        ts = await self._find_card(incident.channel, incident_id) if took_over else None
        if ts is None:
            try:
                response = await self.client.chat_postMessage(
                    channel=incident.channel,
                    text=text,
                    blocks=blocks,
                    metadata={"event_type": CARD_EVENT, "event_payload": {"incident": incident_id}},
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError:
                # Slack answered, so nothing was posted: free the slot for the retry. (A timeout
                # or dropped connection keeps the claim; the retry then searches the channel.)
                await asyncio.to_thread(self._release_card_slot, incident_id, token)
                raise
            ts = str(response["ts"])
        await asyncio.to_thread(self._record_card_ts, incident_id, token, ts)
        return {"posted": ts}

    def _claim_card_slot(self, incident_id: int) -> tuple[str, bool] | None:
        now = self.clock.now().timestamp()
        token = _claim_token(now, self.worker_id, self.claim_seconds)
        expired = f"claim:{int(now):012d}"
        with session_scope(self.engine) as session:
            current = session.get(Incident, incident_id)
            if current is None:
                raise PermanentFailure(f"incident {incident_id} no longer exists")
            held = str(current.card_ts or "")
            took_over = held.startswith("claim:")
            ours = took_over and held.endswith(f":{self.worker_id}")
            result = session.execute(
                update(Incident)
                .where(
                    col(Incident.id) == incident_id,
                    or_(
                        col(Incident.card_ts).is_(None),
                        col(Incident.card_ts) == (held if ours else None),
                        (col(Incident.card_ts).startswith("claim:")) & (col(Incident.card_ts) < expired),
                    ),
                )
                .values(card_ts=token)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            return token, took_over

    def _release_card_slot(self, incident_id: int, token: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(Incident)
                .where(col(Incident.id) == incident_id, col(Incident.card_ts) == token)
                .values(card_ts=None)
            )

    def _record_card_ts(self, incident_id: int, token: str, ts: str) -> None:
        with session_scope(self.engine) as session:
            recorded = session.execute(
                update(Incident)
                .where(col(Incident.id) == incident_id, col(Incident.card_ts) == token)
                .values(card_ts=ts)
            )
            if getattr(recorded, "rowcount", 0) == 1:
                # The thread exists from now on: start measuring its silence (status reminders).
                incident = session.get(Incident, incident_id)
                if incident is not None:
                    interval = self.playbooks.get(incident.playbook).policy.status_update_every
                    reminders.arm_first(session, incident_id, self.clock.now(), interval)

    async def _find_card(self, channel: str, incident_id: int) -> str | None:
        response = await self.client.conversations_history(channel=channel, limit=200, include_all_metadata=True)
        messages: list[dict[str, Any]] = response.get("messages", [])
        for message in messages:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == CARD_EVENT
                and (metadata.get("event_payload") or {}).get("incident") == incident_id
            ):
                return str(message["ts"])
        return None

    # -- thread posts -----------------------------------------------------------------------------

    async def thread_post(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        found = await asyncio.to_thread(load_incident_and_run, self.engine, item.incident_id)
        if found is None:
            raise PermanentFailure(f"incident {item.incident_id} no longer exists")
        incident, run = found
        if not is_posted(incident.card_ts):
            raise RetryLater("the card is not posted yet", after=1.0)
        thread_ts = str(incident.card_ts)
        if item.result.get("takeover"):
            existing = await self._find_post(incident.channel, thread_ts, item.id or 0)
            if existing:
                return {"posted": existing, "recovered": True}
        text = render_post(self.playbooks.get(incident.playbook), item.payload, incident, run)
        response = await self.client.chat_postMessage(
            channel=incident.channel,
            thread_ts=thread_ts,
            text=text,
            metadata={"event_type": POST_EVENT, "event_payload": {"outbox": item.id}},
            unfurl_links=False,
        )
        return {"posted": str(response["ts"])}

    async def _find_post(self, channel: str, thread_ts: str, outbox_id: int) -> str | None:
        return await find_posted(self.client, channel, outbox_id, thread_ts=thread_ts)

    async def ops_notice(self, item: OutboxItem) -> dict[str, Any]:
        if item.result.get("takeover"):
            existing = await find_posted(self.client, item.lane, item.id or 0)
            if existing:
                return {"posted": existing, "recovered": True}
        response = await self.client.chat_postMessage(
            channel=item.lane,
            text=f":warning: {escape(item.payload.get('text', 'triagebot notice'))}",
            metadata=post_metadata(item),
        )
        return {"posted": str(response["ts"]), "at": time.time()}


def post_metadata(item: OutboxItem) -> dict[str, Any]:
    """Message metadata naming the outbox row that posts it, so a retry can find the post."""
    return {"event_type": POST_EVENT, "event_payload": {"outbox": item.id}}


async def find_posted(
    client: AsyncWebClient, channel: str, outbox_id: int, *, thread_ts: str | None = None, pages: int = 50
) -> str | None:
    """The ts of the message an outbox row already posted (its metadata names the row), if any.

    A row taken over from a crashed worker may have reached Slack before the worker died; posting
    again would say it twice. A thread is read to its end: a quiet incident's thread collects a
    reminder an hour and outgrows one page of 200 within days, after which a post on the second
    page would not be found and would be posted again. Channel history is read newest first,
    where a post from the last lease period is.
    """
    cursor: str | None = None
    for _ in range(pages):
        if thread_ts is not None:
            response = await client.conversations_replies(
                channel=channel, ts=thread_ts, limit=200, cursor=cursor, include_all_metadata=True
            )
        else:
            response = await client.conversations_history(
                channel=channel, limit=200, cursor=cursor, include_all_metadata=True
            )
        page: list[dict[str, Any]] = response.get("messages", [])
        for message in page:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == POST_EVENT
                and (metadata.get("event_payload") or {}).get("outbox") == outbox_id
            ):
                return str(message["ts"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None
