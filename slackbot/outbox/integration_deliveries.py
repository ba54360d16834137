"""Outbox handlers for the CI and alert integrations.

``GitHubRunJobs`` processes accepted GitHub deliveries (``github_run``): it needs GitHub and the
database, not Slack, so it is registered even when Slack is not configured. ``IntegrationPosts``
says things in Slack: notes in an incident's thread (``incident_note``: validation evidence,
an alert's runbook, alert updates) and answers in the thread of the Slack message that asked
(``source_reply``). Both carry their outbox id in message metadata, so a worker that takes over
a half-finished delivery finds the post instead of posting it twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from slackbot.clients.github_actions import GitHubActions, GitHubApiError
from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem
from slackbot.domain.effects import EffectKind
from slackbot.domain.ids import identity
from slackbot.outbox.slack_deliveries import is_posted
from slackbot.outbox.worker import GITHUB_RETRY_FOR, Handler, PermanentFailure, RetryLater
from slackbot.slack.escape import code
from slackbot.slack.posts import Mrkdwn, note_context, render_named
from slackbot.sources.github import GitHubRunService

NOTE_EVENT = "triagebot_note"


class GitHubRunJobs:
    """A failed run always ends as an incident: what retrying cannot fix is named on its card at
    once (the service does that), and an error a retry might fix (GitHub 5xx, the network) is
    retried at least ``attempts`` times and for at least ``retry_for`` since GitHub's delivery
    (inside the worker's budget for the kind, so the job is never dead-lettered for it), then
    named on the card too. The time matters more than the count: GitHub's outages last an hour
    or more, and five quick retries would spend themselves in its first minute, opening one
    "run failed without a report" card instead of the run's own failures.

    ``budget`` bounds one attempt (listing, downloads, parsing) below the worker's deadline for the
    kind: the worker's deadline cancels the job from outside, where only a retry and finally a dead
    letter follow, while a budget spent here counts as one retryable failure, so a run whose
    storage always stalls still ends as an incident naming that."""

    def __init__(
        self,
        engine: Engine,
        service: GitHubRunService,
        api: GitHubActions,
        *,
        attempts: int = 5,
        budget: float | None = None,
        retry_for: timedelta = GITHUB_RETRY_FOR,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.service = service
        self.api = api
        self.attempts = attempts
        self.budget = budget
        self.retry_for = retry_for
        self.clock = clock or api.clock

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.GITHUB_RUN: self.github_run}

    async def github_run(self, item: OutboxItem) -> dict[str, Any]:
        budget = asyncio.timeout(self.budget)
        try:
            async with budget:
                return await self.service.process(self.engine, self.api, item.payload)
        except TimeoutError as exc:
            spent = budget.expired() and self.budget is not None
            reason = f"reading the run took longer than {self.budget:g} s" if spent else f"TimeoutError: {exc}"
            return await self._retry_or_give_up(item, reason)
        except GitHubApiError as exc:
            if exc.retry_after is not None:
                # GitHub said when: wait that long without spending one of the row's attempts.
                raise RetryLater(str(exc), after=exc.retry_after) from exc
            if exc.retryable:
                return await self._retry_or_give_up(item, str(exc))
            return await self._give_up(item, str(exc))
        except (httpx.HTTPError, OSError) as exc:
            return await self._retry_or_give_up(item, f"{type(exc).__name__}: {exc}")

    async def _retry_or_give_up(self, item: OutboxItem, error: str) -> dict[str, Any]:
        waited = self.clock.now() - as_utc(item.created_at)
        if item.attempts + 1 < self.attempts or waited < self.retry_for:
            raise GitHubApiError(error, retryable=True)
        return await self._give_up(item, f"{error} (after {item.attempts + 1} attempts)")

    async def _give_up(self, item: OutboxItem, error: str) -> dict[str, Any]:
        done = await self.service.give_up(self.engine, item.payload, f"GitHub could not be read: {error}")
        if done is None:
            raise PermanentFailure(error)  # a green run's evidence: nothing to open, dead-letter it
        return done


class IntegrationPosts:
    def __init__(self, engine: Engine, client: AsyncWebClient, playbooks: Playbooks, clock: Clock) -> None:
        self.engine = engine
        self.client = client
        self.playbooks = playbooks
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.INCIDENT_NOTE: self.incident_note, EffectKind.SOURCE_REPLY: self.source_reply}

    # -- shared -----------------------------------------------------------------------------------

    async def _post(self, item: OutboxItem, channel: str, thread_ts: str, text: str) -> dict[str, Any]:
        if item.result.get("takeover"):
            existing = await self._find(channel, thread_ts, item.id or 0)
            if existing:
                return {"posted": existing, "recovered": True}
        response = await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=text,
            metadata={"event_type": NOTE_EVENT, "event_payload": {"outbox": item.id}},
            unfurl_links=False,
            unfurl_media=False,
        )
        return {"posted": str(response["ts"])}

    async def _find(self, channel: str, thread_ts: str, outbox_id: int) -> str | None:
        response = await self.client.conversations_replies(
            channel=channel, ts=thread_ts, limit=200, include_all_metadata=True
        )
        messages: list[dict[str, Any]] = response.get("messages", [])
        for message in messages:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == NOTE_EVENT
                and (metadata.get("event_payload") or {}).get("outbox") == outbox_id
            ):
                return str(message["ts"])
        return None

    # -- incident threads -------------------------------------------------------------------------

    def _incident(self, incident_id: int) -> Incident:
        with session_scope(self.engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise PermanentFailure(f"incident {incident_id} no longer exists")
            return incident

    async def incident_note(self, item: OutboxItem) -> dict[str, Any]:
        assert item.incident_id is not None
        incident = await asyncio.to_thread(self._incident, item.incident_id)
        if not is_posted(incident.card_ts):
            raise RetryLater("the card is not posted yet", after=1.0)
        playbook = self.playbooks.get(incident.playbook)
        context = note_context(playbook, dict(item.payload), incident)
        text = render_named(playbook, str(item.payload["template"]), **context)
        return await self._post(item, incident.channel, str(incident.card_ts), text)

    # -- answers to Slack messages ----------------------------------------------------------------

    def _reply_context(self, payload: dict[str, Any]) -> dict[str, Any]:
        wanted = [int(i["id"]) for i in payload.get("incidents", [])] + [int(i) for i in payload.get("validated", [])]
        with session_scope(self.engine) as session:
            rows = {i.id: i for i in session.exec(select(Incident).where(col(Incident.id).in_(wanted or [-1]))).all()}

        def describe(incident_id: int) -> dict[str, Any] | None:
            incident = rows.get(incident_id)
            if incident is None:
                return None
            return {
                "key": incident.key,
                "ids": Mrkdwn(code(identity(incident))),
                "channel": Mrkdwn(f"<#{incident.channel}>"),
                "status": incident.status,
                "class": incident.failure_class or "",
            }

        incidents = []
        for entry in payload.get("incidents", []):
            described = describe(int(entry["id"]))
            if described is not None:
                incidents.append({**described, "created": bool(entry.get("created"))})
        validated = [d for i in payload.get("validated", []) if (d := describe(int(i))) is not None]
        return {
            "incidents": incidents,
            "validated": validated,
            "duplicate": bool(payload.get("duplicate")),
            "note": str(payload.get("note", "")),
        }

    async def source_reply(self, item: OutboxItem) -> dict[str, Any]:
        payload = item.payload
        context = await asyncio.to_thread(self._reply_context, payload)
        text = render_named(self.playbooks.default, "alert_reply", **context)
        return await self._post(item, str(payload["channel"]), str(payload["thread_ts"]), text)
