"""Failure alerts already in Slack: CI notifier messages, the triage reaction, ``@triagebot triage``.

Thin: pick the message out of the event (fetching it when the event only points at it), check
who may ask, and hand it to ``slackbot.sources.slack_alerts``. The answer is written by the service as
an outbox row and posted in the source message's thread. Bolt acks events before these run, and
Slack's retries were already dropped by the middleware in ``events.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.sources.github import GitHubRunService
from slackbot.sources.slack_alerts import AlertService, SlackMessage, Trigger

log = logging.getLogger(__name__)

# Message subtypes that are somebody saying something (others are edits, joins, deletions …).
SPOKEN_SUBTYPES = frozenset({None, "bot_message", "thread_broadcast", "file_share"})
MENTION_HELP = (
    "Say `@triagebot triage` in the thread of a failure message (or react with :{reaction}:) "
    "and I open a triage card from it."
)


async def fetch_message(client: AsyncWebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """The message at ``ts``: a channel message from ``conversations.history``, else a thread
    reply from ``conversations.replies`` (history does not list replies)."""
    try:
        history = await client.conversations_history(channel=channel, latest=ts, inclusive=True, limit=1)
        latest: list[dict[str, Any]] = history.get("messages", [])
        for message in latest:
            if message.get("ts") == ts:
                return dict(message)
        replies = await client.conversations_replies(channel=channel, ts=ts, limit=200)
    except SlackApiError as exc:
        log.warning("cannot read message %s in %s: %s", ts, channel, exc.response.get("error"))
        return None
    thread: list[dict[str, Any]] = replies.get("messages", [])
    return next((dict(m) for m in thread if m.get("ts") == ts), None)


def register(app: AsyncApp, runtime: Runtime) -> None:
    github = None
    if secret(runtime.settings.github_token):
        github = GitHubRunService(
            runtime.playbooks, runtime.clock, runtime.ingest, report_artifact=runtime.settings.github_report_artifact
        )
    service = AlertService(runtime.playbooks, runtime.clock, runtime.ingest, github)
    reaction = runtime.playbooks.workspace.triage_reaction

    async def handle(message: SlackMessage, trigger: Trigger, actor: str | None) -> None:
        outcome = await asyncio.to_thread(service.handle, runtime.engine, message, trigger=trigger, actor=actor)
        if outcome.action != "ignored":
            runtime.notify_committed()

    async def refuse(client: AsyncWebClient, channel: str, user: str, thread_ts: str | None) -> None:
        await client.chat_postEphemeral(
            channel=channel,
            user=user,
            thread_ts=thread_ts,
            text=f"⛔ Only responders ({runtime.responders.describe()}) can open triage cards; nothing was changed.",
        )

    @app.event("message")
    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("subtype") not in SPOKEN_SUBTYPES or event.get("hidden"):
            return
        if event.get("bot_id") and event.get("bot_id") == context.bot_id:
            return  # our own posts
        message = SlackMessage.from_api(str(event.get("channel", "")), event)
        if service.should_consider(message):
            await handle(message, "alert_source", message.user or message.bot_id)

    @app.event("reaction_added")
    async def on_reaction(event: dict[str, Any], client: AsyncWebClient) -> None:
        item = event.get("item") or {}
        if event.get("reaction") != reaction or item.get("type") != "message":
            return
        channel, ts, user = str(item.get("channel", "")), str(item.get("ts", "")), str(event.get("user", ""))
        if not await runtime.responders.allowed(user):
            await refuse(client, channel, user, ts)
            return
        found = await fetch_message(client, channel, ts)
        if found is not None:
            await handle(SlackMessage.from_api(channel, found), "reaction", user)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        ts, thread_ts = str(event.get("ts", "")), event.get("thread_ts")
        words = SlackMessage.from_api(channel, event).text.split()
        asked = [w for w in words if not (w.startswith("<@") and w.endswith(">"))]
        if not asked or asked[0].lower() != "triage":
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts or ts, text=MENTION_HELP.format(reaction=reaction)
            )
            return
        if not await runtime.responders.allowed(user):
            await refuse(client, channel, user, thread_ts or ts)
            return
        if thread_ts and thread_ts != ts:
            root = await fetch_message(client, channel, str(thread_ts))
            if root is None:
                return
            await handle(SlackMessage.from_api(channel, root), "mention", user)
        else:
            # Not in a thread: the mention itself describes the failure ("@triagebot triage BID-001 …").
            await handle(SlackMessage.from_api(channel, {**event, "text": " ".join(asked[1:])}), "mention", user)
