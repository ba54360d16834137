"""Sending the bot what Slack never would, signed as if it had: raw bodies, hand-built clicks and
modal submissions, and what a person (or the database) would notice afterwards."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from slackbot.db.models import Incident, OutboxItem, TimelineEvent
from tests.slack.conftest import NIGHTLY, Bot, wait_for

FORM = "application/x-www-form-urlencoded"


def signed(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Slack's signature headers for any bytes (slack_sdk's signer only takes UTF-8)."""
    timestamp = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": f"v0={digest.hexdigest()}"}


def post(bot: Bot, body: bytes, content_type: str = FORM) -> Answer:
    """A body signed with the app's signing secret, POSTed to /slack/events over HTTP."""
    response = httpx.post(
        bot.url + "/slack/events",
        content=body,
        headers={"content-type": content_type, **signed(bot.emulator.signing_secret, body)},
        timeout=30,
    )
    try:
        parsed = response.json() if response.content else None
    except ValueError:
        parsed = None
    return Answer(response.status_code, response.text, parsed if isinstance(parsed, dict) else None)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    json: dict[str, Any] | None


def interaction(bot: Bot, payload: Any) -> Answer:
    """An interaction (``payload=<JSON>``); a ``str`` payload is sent as it is, unparsed."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return post(bot, f"payload={quote(text)}".encode())


def command(bot: Bot, user: str, text: str) -> Answer:
    """``/triage`` with a response URL the emulator shows as the user's ephemeral answer."""
    ws = bot.emulator.workspace
    with ws.lock:
        url = ws.issue_response_url(
            bot.emulator.actor.root_url(), kind="slash_command", user_id=user, channel_id=NIGHTLY
        ).url
    fields = {
        "team_id": ws.team_id,
        "channel_id": NIGHTLY,
        "channel_name": "integration-nightly",
        "user_id": user,
        "user_name": "someone",
        "command": "/triage",
        "text": text,
        "api_app_id": "A0TRIAGEBOT",
        "response_url": url,
        "trigger_id": "1.2.3",
    }
    return post(bot, urlencode(fields).encode())


def click(bot: Bot, user: str, action: dict[str, Any], *, card_ts: str | None = None, **extra: Any) -> dict[str, Any]:
    """A ``block_actions`` payload on the card (or no message), with a live response URL."""
    ws = bot.emulator.workspace
    with ws.lock:
        url = ws.issue_response_url(
            bot.emulator.actor.root_url(), kind="block_actions", user_id=user, channel_id=NIGHTLY, message_ts=card_ts
        ).url
        trigger = ws.issue_trigger(user)
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": ws.team_id},
        "api_app_id": "A0TRIAGEBOT",
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "container": {"type": "message", "message_ts": card_ts or "1.000001", "channel_id": NIGHTLY},
        "channel": {"id": NIGHTLY, "name": "integration-nightly"},
        "trigger_id": trigger,
        "response_url": url,
        "actions": [{"action_ts": "1700000000.000001", **action}],
    }
    payload.update(extra)
    return payload


def submission(user: str, view: dict[str, Any], **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": "T0TRIAGE", "domain": "triage"},
        "user": {"id": user, "username": "someone", "team_id": "T0TRIAGE"},
        "api_app_id": "A0TRIAGEBOT",
        "trigger_id": "1.2.3",
        "view": view,
        "response_urls": [],
    }
    payload.update(extra)
    return payload


def answers(bot: Bot, user: str) -> list[str]:
    return [str(e.get("text", "")) for e in bot.emulator.ephemerals(user)]


def next_answer(bot: Bot, user: str, before: int) -> str:
    found: str = wait_for(lambda: (a := answers(bot, user))[before:] and a[-1], what=f"an answer to {user}")
    return found


def snapshot(bot: Bot) -> tuple[Any, ...]:
    """What a change would touch: the incidents, their timeline and the effects queued for them."""
    with Session(bot.core.engine) as session:
        incidents = [
            (
                i.id,
                i.revision,
                i.status,
                i.failure_class,
                i.severity,
                i.escalation_level,
                i.assignee,
                i.bead_state,
                tuple(i.flags),
                i.milestone,
            )
            for i in session.exec(select(Incident).order_by(col(Incident.id)))
        ]
        timeline = session.exec(select(func.count()).select_from(TimelineEvent)).one()
        outbox = session.exec(select(func.count()).select_from(OutboxItem)).one()
    return tuple(incidents), timeline, outbox


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Exceptions and errors logged anywhere in the process (the bot runs in this process)."""
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
