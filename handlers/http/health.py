"""Liveness and readiness.

``/readyz`` names each dependency: the database and Slack decide readiness (without them nothing
reaches a responder); bd, PagerDuty and GitHub are reported, since the bot works around them
(beads stay pending, pages go to Slack only, run downloads wait).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from slackbot.config.targets import Target
from slackbot.db.engine import UNAVAILABLE
from slackbot.db.migrate import current_revision
from slackbot.runtime import Runtime
from slackbot.settings import secret

# A revoked token shows in /readyz within this long, without an auth.test per probe.
SLACK_RECHECK_SECONDS = 30.0


def _targets(value: Any) -> Iterator[Target]:
    if isinstance(value, Target):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _targets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _targets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _targets(item)


def _pagerduty(runtime: Runtime) -> str:
    models = [m for p in runtime.playbooks for m in (p.routing, p.policy)]
    keys = {t.pagerduty_routing_key for m in models for t in _targets(m) if t.pagerduty_routing_key}
    return f"configured ({len(keys)} routing key(s))" if keys else "not configured (pages go to Slack only)"


def routes(runtime: Runtime) -> list[Route]:
    pagerduty = _pagerduty(runtime)
    github = "token set" if secret(runtime.settings.github_token) else "no token (public repositories only)"
    slack_checked: dict[str, Any] = {"at": 0.0, "status": None}

    async def slack_status() -> str:
        if runtime.slack is None:
            return str(runtime.status.get("slack", "disabled (no SLACK_BOT_TOKEN)"))
        if time.monotonic() - slack_checked["at"] < SLACK_RECHECK_SECONDS and slack_checked["status"]:
            return str(slack_checked["status"])
        try:
            answer = await asyncio.wait_for(runtime.slack.auth_test(), timeout=5)
            status = f"ok: {answer.get('team', '')} ({answer.get('team_id', '')}) as @{answer.get('user', '')}"
        except SlackApiError as exc:
            status = f"error: auth.test: {exc.response.get('error', 'refused')}"
        except Exception as exc:  # unreachable Slack: not ready either, and say why
            status = f"error: auth.test: {type(exc).__name__}"
        slack_checked.update(at=time.monotonic(), status=status)
        return status

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        def probe() -> dict[str, object]:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return {"database": "ok", "schema": current_revision(runtime.engine)}

        try:
            checks = await asyncio.to_thread(probe)
        except UNAVAILABLE as exc:  # say what an operator checks first: which server, what it answered
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__]
            checks = {"database": f"error: unreachable: {reason[0][:200]}"}
        except Exception as exc:  # readiness reports any failure rather than raising it
            checks = {"database": f"error: {type(exc).__name__}"}
        checks.update(runtime.readiness_extras())
        checks["slack"] = await slack_status()
        checks.setdefault("bd", None)  # null until the start-up `bd version` has answered
        checks.update(pagerduty=pagerduty, github=github)
        ready = checks["database"] == "ok" and not str(checks["slack"]).startswith("error")
        return JSONResponse({"status": "ready" if ready else "unavailable", **checks}, 200 if ready else 503)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
