"""No request body in any log line, no secret in any log line (issue 18: one unsigned 400 MB POST to
/slack/events wrote a 419 MB log line)."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from tests.factories import report, result
from tests.http.conftest import ALERTMANAGER_TOKEN, API_TOKEN, INGEST_SECRET, WEBHOOK_SECRET, Server

MARKER = "BODY-MARKER-9f3a"


def test_bodies_and_secrets_never_reach_the_log(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack = server.url + "/slack/events"
    form = f"command=%2Ftriage&text={MARKER}&token={MARKER}".encode()
    now = str(int(time.time()))
    answers = [
        # unsigned, badly signed, stale and oversized Slack requests
        httpx.post(slack, content=form),
        httpx.post(
            slack, content=form, headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": now}
        ),
        httpx.post(
            slack, content=form, headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "1"}
        ),
        httpx.post(slack, content=MARKER.encode() * (6 * 1024 * 1024 // len(MARKER))),
        # every other route with bad credentials
        server.report(json.dumps(report(result(message=MARKER))).encode(), signature="sha256=" + "0" * 64),
        server.report(json.dumps(report(result(message=MARKER))).encode(), signature=None),
        server.github({"action": MARKER}, signature="sha256=" + "1" * 64),
        server.alertmanager({"version": MARKER}, token="wrong"),
        httpx.get(server.url + "/api/incidents", headers={"X-Forwarded-For": "198.51.100.7", "Authorization": "x"}),
    ]
    assert [r.status_code for r in answers] == [401, 401, 401, 413, 401, 401, 401, 401, 401]
    # and a good report whose content is not a log line either
    assert server.report(report(result(message=MARKER))).status_code == 202
    logged = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert MARKER not in logged
    for secret in (
        INGEST_SECRET,
        WEBHOOK_SECRET,
        ALERTMANAGER_TOKEN,
        API_TOKEN,
        server.emulator.signing_secret,
        server.emulator.bot_token,
    ):
        assert secret not in logged


def test_bolt_messages_that_carry_a_body_are_cut(caplog: pytest.LogCaptureFixture) -> None:
    from slack_bolt.logger import get_bolt_logger
    from slack_bolt.middleware.request_verification.async_request_verification import AsyncRequestVerification

    from slackbot.logs import bolt_logger

    caplog.set_level(logging.DEBUG)
    logger = get_bolt_logger(AsyncRequestVerification, base_logger=bolt_logger())
    logger.info(f"Invalid request signature detected (signature: x, timestamp: 1, body: {MARKER})")
    logger.warning(
        f"A global middleware (m) skipped calling next() without providing a response for the request ({MARKER})"
    )
    logger.warning("x" * 5000)
    assert MARKER not in caplog.text
    assert "<request body not logged>" in caplog.text
    assert max(len(r.getMessage()) for r in caplog.records) < 2100
