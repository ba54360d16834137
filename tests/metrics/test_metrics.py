"""``GET /metrics`` as Prometheus scrapes it, while responders work the cards in Slack.

The end-to-end tests drive the real bot over HTTP (Slack emulator, fake PagerDuty) and scrape the
real endpoint; the service-level tests pin down the commit/rollback rule on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.domain.changes import Acknowledge, Actor, Classify, Escalate
from slackbot.incidents.core import IncidentCore
from slackbot.metrics import AppMetrics
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, report, result
from tests.slack.conftest import Bot, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(bot: Bot) -> Samples:
    response = httpx.get(f"{bot.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def settle(bot: Bot, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until ``name{labels}`` reaches ``expected`` (deliveries happen after commit)."""
    found: Samples = wait_for(
        lambda: (s := scrape(bot)) and value(s, name, **labels) == expected and s,
        what=f"{name}{labels} == {expected}",
    )
    return found


def test_a_fresh_bot_reports_zeroes_for_every_series_a_dashboard_needs(bot: Bot) -> None:
    samples = scrape(bot)
    assert value(samples, "triagebot_metrics_database_up") == 1
    for failure_class in ("infra_ci", "algorithm_regression", "flake_concurrency", "unclassified"):
        assert ("triagebot_open_incidents", (("failure_class", failure_class),)) in samples
    for reason in ("unclassified", "manual", "multi_prefix", "recurred"):
        assert value(samples, "triagebot_escalations_total", reason=reason) == 0
    for kind in ("dm", "pagerduty"):
        assert ("triagebot_pages_sent_total", (("kind", kind),)) in samples
        assert value(samples, "triagebot_pages_failed_total", kind=kind) == 0
    assert value(samples, "triagebot_outbox_oldest_age_seconds") == 0
    assert value(samples, "triagebot_outbox_dead_letters") == 0


def test_acknowledge_classify_resolve_move_the_gauges_and_histograms(bot: Bot) -> None:
    bot.send(report(result("API-001", "TENANT-003", test_file="tests/integration/api.test.ts")))
    bot.card("INC-1")
    samples = scrape(bot)
    assert value(samples, "triagebot_open_incidents", failure_class="unclassified") == 1
    assert value(samples, "triagebot_time_to_acknowledge_seconds_count", failure_class="algorithm_regression") == 0

    bot.clock.shift(minutes=5)
    bot.triage("ack INC-1")
    samples = scrape(bot)
    # API-* suggests Algorithm regression; acknowledged about 5 minutes after the card opened
    labels = {"failure_class": "algorithm_regression"}
    assert value(samples, "triagebot_time_to_acknowledge_seconds_count", **labels) == 1
    assert 300 <= value(samples, "triagebot_time_to_acknowledge_seconds_sum", **labels) < 360
    assert value(samples, "triagebot_time_to_acknowledge_seconds_bucket", le="300.0", **labels) == 0
    assert value(samples, "triagebot_time_to_acknowledge_seconds_bucket", le="600.0", **labels) == 1

    bot.clock.shift(minutes=10)
    bot.triage("classify INC-1 algorithm")
    samples = scrape(bot)
    assert value(samples, "triagebot_time_to_classify_seconds_count", **labels) == 1
    assert 900 <= value(samples, "triagebot_time_to_classify_seconds_sum", **labels) < 960
    assert value(samples, "triagebot_time_to_classify_seconds_bucket", le="1200.0", **labels) == 1  # within 20 min
    assert value(samples, "triagebot_open_incidents", failure_class="unclassified") == 0
    assert value(samples, "triagebot_open_incidents", **labels) == 1

    # a second acknowledgement (someone else takes over) is not a second time-to-acknowledge
    bot.triage("ack INC-1", user="U0BOB")
    assert value(scrape(bot), "triagebot_time_to_acknowledge_seconds_count", **labels) == 1

    bot.clock.shift(hours=2)
    bot.triage("resolve INC-1 off-by-one in the org filter")
    samples = scrape(bot)
    assert value(samples, "triagebot_time_to_resolve_seconds_count", **labels) == 1
    assert 2 * 3600 + 900 <= value(samples, "triagebot_time_to_resolve_seconds_sum", **labels) < 2 * 3600 + 960
    assert value(samples, "triagebot_open_incidents", **labels) == 0
    # everything the changes enqueued is delivered: the outbox drains
    settle(bot, "triagebot_outbox_oldest_age_seconds", 0)


def test_the_twenty_minute_rule_counts_an_escalation_and_the_pages_it_sends(bot: Bot) -> None:
    bot.send(report(result("NOS-003", "ASSIGN-002", test_file="tests/integration/noshow.test.ts")))
    bot.card("INC-1")
    bot.clock.shift(minutes=21)
    samples = settle(bot, "triagebot_escalations_total", 1, reason="unclassified")
    assert value(samples, "triagebot_escalations_total", reason="manual") == 0
    # level 1 pages the escalation target (@triage-leads): its on-call person is DMed
    settle(bot, "triagebot_pages_sent_total", 1, kind="dm")

    bot.triage("escalate INC-1 nobody answers")
    samples = settle(bot, "triagebot_escalations_total", 1, reason="manual")
    assert value(samples, "triagebot_escalations_total", reason="unclassified") == 1
    assert value(samples, "triagebot_time_to_classify_seconds_count", failure_class="algorithm_regression") == 0


def test_a_run_across_several_prefixes_counts_one_multi_prefix_escalation(bot: Bot) -> None:
    run = report(
        result("BID-001", "TENANT-001"),
        result("SCH-002", "STATE-001", test_file="tests/integration/s.test.ts"),
    )
    bot.send(run)
    samples = settle(bot, "triagebot_open_incidents", 2, failure_class="unclassified")
    assert value(samples, "triagebot_escalations_total", reason="multi_prefix") == 1
    bot.send(run)  # CI retries the upload: the same report changes nothing, and counts nothing
    assert value(scrape(bot), "triagebot_escalations_total", reason="multi_prefix") == 1


def test_slack_errors_by_method_and_a_page_that_cannot_be_delivered(bot: Bot) -> None:
    bot.emulator.fail_next("chat.postMessage", status=429, retry_after=1)
    bot.send(report(result("HLT-002", "NOTIF-002", test_file="tests/integration/health.test.ts")))
    bot.card("INC-1")  # posted after the 429's Retry-After
    samples = scrape(bot)
    assert value(samples, "triagebot_slack_api_errors_total", method="chat.postMessage", error="ratelimited") == 1
    assert value(samples, "triagebot_outbox_deliveries_total", kind="card", outcome="done") >= 1

    # the escalation target's DM cannot be delivered: that page is dead-lettered and the bot pages
    # the fallback instead, whose DM goes through
    bot.emulator.fail_next("conversations.open", status=200, error="user_not_found")
    bot.triage("escalate INC-1 please look")
    samples = settle(bot, "triagebot_pages_sent_total", 1, kind="dm")
    assert value(samples, "triagebot_pages_failed_total", kind="dm") == 1
    assert value(samples, "triagebot_slack_api_errors_total", method="conversations.open", error="user_not_found") == 1
    assert value(samples, "triagebot_outbox_deliveries_total", kind="dm", outcome="dead") == 1
    assert value(samples, "triagebot_outbox_dead_letters") == 1


def test_two_apps_in_one_process_keep_their_own_numbers(bot: Bot, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(engine)
    other = AppMetrics(engine, FakeClock())
    bot.send(report(result("UI-004", "STATE-003", test_file="tests/integration/ui.test.ts")))
    bot.card("INC-1")
    bot.triage("ack INC-1")
    assert value(scrape(bot), "triagebot_time_to_acknowledge_seconds_count", failure_class="unclassified") == 1
    mine = parse(other.exposition().decode())
    assert value(mine, "triagebot_time_to_acknowledge_seconds_count", failure_class="unclassified") == 0
    assert value(mine, "triagebot_open_incidents", failure_class="unclassified") == 0


# -- the commit rule, on both databases ----------------------------------------------------------


def _open_incident(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> int:
    with session_scope(engine) as session:
        outcome = IngestService(playbooks, clock).ingest(session, parsed(result("BID-001", "TENANT-001")))
    incident_id: Any = outcome.incidents[0].id
    return int(incident_id)


def test_only_committed_transitions_are_observed(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    metrics = AppMetrics(engine, clock)
    incidents = IncidentCore(playbooks, clock)
    incident_id = _open_incident(engine, playbooks, clock)
    clock.advance(timedelta(minutes=3))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), session_scope(engine) as session:
        incidents.apply(session, incident_id, Actor("U0CAROL", "command"), Acknowledge())
        incidents.apply(session, incident_id, Actor("U0CAROL", "command"), Escalate("rolled back"))
        raise Abort  # the change is rolled back: nothing happened, nothing is counted
    samples = parse(metrics.exposition().decode())
    assert value(samples, "triagebot_time_to_acknowledge_seconds_count", failure_class="algorithm_regression") == 0
    assert value(samples, "triagebot_escalations_total", reason="manual") == 0

    incidents.run(engine, incident_id, Actor("U0CAROL", "command"), Acknowledge())
    incidents.run(engine, incident_id, Actor("U0CAROL", "command"), Escalate("for real"))
    clock.advance(timedelta(minutes=4))
    incidents.run(engine, incident_id, Actor("U0CAROL", "button"), Classify("flake"))
    samples = parse(metrics.exposition().decode())
    assert value(samples, "triagebot_time_to_acknowledge_seconds_count", failure_class="algorithm_regression") == 1
    assert value(samples, "triagebot_time_to_acknowledge_seconds_sum", failure_class="algorithm_regression") == 180
    assert value(samples, "triagebot_time_to_classify_seconds_sum", failure_class="flake_concurrency") == 420
    assert value(samples, "triagebot_escalations_total", reason="manual") == 1
    assert value(samples, "triagebot_open_incidents", failure_class="flake_concurrency") == 1
    # the flake's bead and the card redraws wait in the outbox, the oldest since the ingest 7 min ago
    assert value(samples, "triagebot_outbox_depth", kind="card") >= 1
    assert value(samples, "triagebot_outbox_oldest_age_seconds") == 420


def test_a_recurrence_of_many_open_incidents_leaves_no_attribute_state_behind(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    """Looking for transitions in every dirty incident must not build the ORM's per-column
    AttributeState objects: a recurrence of 8,000 open incidents left 424,000 of them, which the
    collector then walked in one go after the ingest, stalling the event loop 80-100 ms."""
    import gc

    from sqlalchemy.orm.state import AttributeState

    metrics = AppMetrics(engine, clock)
    service = IngestService(playbooks, clock)
    failures = [result(f"BID-{n:03d}", "TENANT-001", test_name=f"case {n}") for n in range(1, 201)]
    service.ingest_report(engine, parsed(*failures, run_id="1"))
    gc.collect()
    gc.disable()  # what the recurrence leaves for the collector, before it runs
    try:
        recurred = service.ingest_report(engine, parsed(*failures, run_id="2"))
        left = sum(isinstance(o, AttributeState) for o in gc.get_objects())
    finally:
        gc.enable()
    assert len(recurred.incidents) == 200 and not any(i.created for i in recurred.incidents)
    assert left == 0

    # The check still looks at every dirty incident: 200 acknowledged in one transaction are 200
    # observations, and leave no AttributeState either.
    incidents = IncidentCore(playbooks, clock)
    gc.collect()
    gc.disable()
    try:
        with session_scope(engine) as session:
            for incident in recurred.incidents:
                incidents.apply(session, incident.id, Actor("U0CAROL", "command"), Acknowledge())
        left = sum(isinstance(o, AttributeState) for o in gc.get_objects())
    finally:
        gc.enable()
    samples = parse(metrics.exposition().decode())
    acknowledged = [v for (name, _), v in samples.items() if name == "triagebot_time_to_acknowledge_seconds_count"]
    assert sum(acknowledged) == 200
    assert left == 0
