"""The bot's own health in /metrics and its log: what the shipped Prometheus rules alert on.

Each number is produced the way it would be in production: a delivery that Slack refuses, a
report with a bad signature, a timer that fires late because the clock jumped past it.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from slackbot.outbox.worker import DEAD_LETTER_REASONS, PERMANENT_SLACK_ERRORS, SLACK_AUTH_ERRORS, slack_reason
from slackbot.signing import sign
from tests.factories import report, result
from tests.metrics.test_metrics import scrape, settle, value
from tests.slack.conftest import NIGHTLY, SECRET, Bot, wait_for


def _dead_letter_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "slackbot.outbox.worker" and "dead-lettered" in r.getMessage()]


def test_a_card_slack_refuses_for_a_bad_token_is_logged_at_error_and_counted(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="slackbot.outbox.worker")
    # the token was revoked between two calls: Slack answers the card's post with invalid_auth
    bot.emulator.fail_next("chat.postMessage", status=200, error="invalid_auth")
    bot.send(report(result("HLT-002", "NOTIF-002", test_file="tests/integration/health.test.ts")))
    samples = settle(bot, "triagebot_outbox_dead_lettered_total", 1, kind="card", reason="slack_auth")
    assert value(samples, "triagebot_slack_auth_failures_total", error="invalid_auth") == 1
    assert value(samples, "triagebot_slack_auth_failures_total", error="token_revoked") == 0
    assert value(samples, "triagebot_outbox_dead_letters") == 1
    [line] = wait_for(lambda: _dead_letter_lines(caplog), what="the dead-letter log line")
    assert line.levelno == logging.ERROR
    message = line.getMessage()
    assert message.startswith("outbox card dead-lettered (slack_auth): row ")
    assert ", key card:1:" in message and ", incident INC-1: Slack error: invalid_auth" in message
    assert bot.cards() == []  # and indeed nothing was posted


def test_a_thread_post_into_a_deleted_channel_counts_as_a_target_problem(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="slackbot.outbox.worker")
    bot.send(report(result("API-001", "TENANT-003", test_file="tests/integration/api.test.ts")))
    bot.card("INC-1")
    bot.emulator.fail_next("chat.postMessage", status=200, error="channel_not_found")
    bot.triage("escalate INC-1 nobody answers")
    samples = wait_for(
        lambda: (
            (s := scrape(bot))
            and sum(v for (n, labels), v in s.items() if n == "triagebot_outbox_dead_lettered_total") >= 1
            and s
        ),
        what="a dead letter",
    )
    dead = {
        dict(labels)["kind"]: (dict(labels)["reason"], v)
        for (n, labels), v in samples.items()
        if n == "triagebot_outbox_dead_lettered_total"
    }
    assert set(reason for reason, _ in dead.values()) == {"slack_target"}
    assert value(samples, "triagebot_slack_auth_failures_total", error="invalid_auth") == 0
    [line] = wait_for(lambda: _dead_letter_lines(caplog), what="the dead-letter log line")
    assert line.levelno == logging.ERROR
    assert "(slack_target)" in line.getMessage() and "incident INC-1: Slack error: channel_not_found" in (
        line.getMessage()
    )


def test_ingest_answers_are_counted_by_endpoint_and_status_class(bot: Bot) -> None:
    body = json.dumps(report(result("UI-004", "STATE-003", test_file="tests/integration/ui.test.ts"))).encode()
    url = f"{bot.url}/ingest/report"
    forged = httpx.post(url, content=body, headers={"X-Triage-Signature": sign(body, "not-the-secret")})
    assert forged.status_code == 401
    garbage = b'{"schemaVersion": true}'
    bad = httpx.post(url, content=garbage, headers={"X-Triage-Signature": sign(garbage, SECRET)})
    assert bad.status_code == 400
    assert bot.send(json.loads(body))["incidents"]
    samples = scrape(bot)
    assert value(samples, "triagebot_ingest_requests_total", endpoint="report", code="4xx") == 2
    assert value(samples, "triagebot_ingest_requests_total", endpoint="report", code="2xx") == 1
    assert value(samples, "triagebot_ingest_requests_total", endpoint="report", code="5xx") == 0
    assert value(samples, "triagebot_ingest_requests_total", endpoint="junit", code="2xx") == 0
    # a request to another route is not an ingest
    assert httpx.get(f"{bot.url}/healthz").status_code == 200
    assert sum(v for (n, _), v in scrape(bot).items() if n == "triagebot_ingest_requests_total") == 3


def test_a_timer_that_fires_late_is_observed_with_its_lateness(bot: Bot) -> None:
    bot.send(report(result("NOS-003", "ASSIGN-002", test_file="tests/integration/noshow.test.ts")))
    bot.card("INC-1", NIGHTLY)
    assert value(scrape(bot), "triagebot_timers_overdue_seconds") == 0  # armed, not due yet
    # the clock jumps 25 minutes: the 20-minute rule is 5 minutes overdue when a tick sees it
    bot.clock.shift(minutes=25)
    samples = settle(bot, "triagebot_timer_lateness_seconds_count", 1, kind="classify")
    late = value(samples, "triagebot_timer_lateness_seconds_sum", kind="classify")
    assert 300 <= late < 330
    assert value(samples, "triagebot_timer_lateness_seconds_bucket", kind="classify", le="120.0") == 0
    assert value(samples, "triagebot_timer_lateness_seconds_bucket", kind="classify", le="600.0") == 1


def test_every_permanent_slack_error_has_a_bounded_reason() -> None:
    reasons = {error: slack_reason(error) for error in PERMANENT_SLACK_ERRORS}
    assert set(reasons.values()) <= set(DEAD_LETTER_REASONS)
    assert {e for e, r in reasons.items() if r == "slack_auth"} == SLACK_AUTH_ERRORS
    assert reasons["missing_scope"] == "slack_scope" and reasons["msg_too_long"] == "slack_payload"
    assert reasons["channel_not_found"] == reasons["user_not_found"] == "slack_target"
