"""``/triage stats`` with known answers: crafted incidents and audit rows on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.reads.stats import ClassStats, StatsService, nearest_rank, short, stats_text
from tests.factories import report, result
from tests.slack.conftest import Bot

MIN = 60
HOUR = 3600


def incident(
    number: int,
    created: datetime,
    *,
    failure_class: str | None = None,
    classified: float | None = None,
    acknowledged: float | None = None,
    resolved: float | None = None,
    contract: bool = False,
) -> Incident:
    """An incident opened at ``created``; the other times are seconds after it."""

    def after(seconds: float | None) -> datetime | None:
        return created + timedelta(seconds=seconds) if seconds is not None else None

    return Incident(
        fingerprint=f"fp-{number}",
        open_key=None if resolved is not None else f"fp-{number}",
        repository="acme/dispatch",
        scenario_id=f"BID-{number:03d}",
        invariant_id="TENANT-001",
        test_identity=f"test {number}",
        suite="nightly",
        channel="C0NIGHTLY",
        status="resolved" if resolved is not None else "open",
        failure_class=failure_class,
        class_source="contract" if contract else ("human" if failure_class else None),
        contract_violation=contract,
        first_seen=created,
        last_seen=created,
        classify_deadline=created + timedelta(minutes=20),
        classified_at=after(classified),
        acknowledged_at=after(acknowledged),
        resolved_at=after(resolved),
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
def service(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> StatsService:
    now = clock.now()
    day = timedelta(days=1)
    rows = [
        # Algorithm regression: three in the last 7 days, one more in the last 30
        incident(1, now - 1 * day, failure_class="algorithm_regression", classified=10 * MIN,
                 acknowledged=5 * MIN, resolved=2 * HOUR),
        incident(2, now - 2 * day, failure_class="algorithm_regression", classified=20 * MIN,
                 acknowledged=15 * MIN, resolved=4 * HOUR),
        incident(3, now - 3 * day, failure_class="algorithm_regression", classified=30 * MIN),
        incident(4, now - 10 * day, failure_class="algorithm_regression", classified=60 * MIN,
                 acknowledged=60 * MIN, resolved=10 * HOUR),
        # preclassified by the contract check: classified, but no human time to classify
        incident(5, now - timedelta(hours=1), failure_class="harness_diagnostics", classified=0,
                 acknowledged=2 * MIN, contract=True),
        incident(6, now - timedelta(minutes=30)),  # nobody has touched it yet
        incident(7, now - 40 * day, failure_class="flake_concurrency", classified=MIN, acknowledged=MIN),  # too old
    ]  # fmt: skip
    with session_scope(engine) as session:
        session.add_all(rows)
        session.flush()
        for number in (1, 7):  # INC-1 was first classified wrong; so was the old one
            session.add(
                TimelineEvent(
                    incident_id=rows[number - 1].id,
                    at=now - timedelta(days=1),
                    actor="U0CAROL",
                    source="button",
                    kind="reclassified",
                    message="Reclassified algorithm_regression (was flake_concurrency) by U0CAROL",
                )
            )
    return StatsService(playbooks, clock)


def by_key(stats: list[ClassStats]) -> dict[str, ClassStats]:
    return {s.key: s for s in stats}


def test_seven_days_per_class(service: StatsService, engine: Engine) -> None:
    week, _ = service.report(engine)
    assert week.days == 7
    algorithm = by_key(week.classes)["algorithm_regression"]
    assert (algorithm.opened, algorithm.classified, algorithm.acknowledged, algorithm.resolved) == (3, 3, 2, 2)
    assert algorithm.classify_median == 20 * MIN
    assert algorithm.classify_p90 == 30 * MIN
    assert algorithm.mtta == 10 * MIN  # (5 + 15) / 2
    assert algorithm.mttr == 3 * HOUR  # (2 h + 4 h) / 2
    assert algorithm.reclassification_rate == pytest.approx(1 / 3)

    harness = by_key(week.classes)["harness_diagnostics"]
    assert (harness.opened, harness.classified) == (1, 1)
    assert harness.classify_median is None  # the contract check's instant classification is not counted
    assert harness.mtta == 2 * MIN
    assert harness.reclassification_rate == 0

    unclassified = by_key(week.classes)["unclassified"]
    assert (unclassified.opened, unclassified.classified, unclassified.reclassification_rate) == (1, 0, None)
    assert "flake_concurrency" not in by_key(week.classes)  # no flake was opened this week

    assert (week.total.opened, week.total.classified, week.total.reclassified) == (5, 4, 1)
    assert week.total.classify_median == 20 * MIN
    assert week.total.mtta == pytest.approx((5 + 15 + 2) * MIN / 3)


def test_thirty_days_per_class(service: StatsService, engine: Engine) -> None:
    _, month = service.report(engine)
    assert month.days == 30
    algorithm = by_key(month.classes)["algorithm_regression"]
    assert (algorithm.opened, algorithm.classified, algorithm.resolved) == (4, 4, 3)
    assert algorithm.classify_median == 25 * MIN  # mean of the two middle values, 20 and 30 min
    assert algorithm.classify_p90 == 60 * MIN  # nearest rank: the 4th of 4
    assert algorithm.mtta == pytest.approx((5 + 15 + 60) * MIN / 3)
    assert algorithm.mttr == pytest.approx((2 + 4 + 10) * HOUR / 3)
    assert algorithm.reclassification_rate == 0.25
    assert month.total.opened == 6  # the 40-day-old flake is outside both windows
    assert "flake_concurrency" not in by_key(month.classes)


def test_the_window_follows_the_injected_clock(service: StatsService, engine: Engine, clock: FakeClock) -> None:
    clock.advance(timedelta(days=5, minutes=1))
    week, month = service.report(engine)
    assert week.total.opened == 3  # incidents 1, 5 and 6; 2 and 3 are now over 7 days old
    assert by_key(week.classes)["algorithm_regression"].mttr == 2 * HOUR
    assert month.total.opened == 6


def test_the_slack_answer(service: StatsService, engine: Engine, runbook: Playbook) -> None:
    text = stats_text(service.report(engine), runbook.policy.classify_within)
    assert "classification target: 20 min" in text
    week, month = text.split("*Last 30 days*")
    assert "*Last 7 days* (since 2026-11-15 03:00 UTC)" in week
    assert (
        "• *Algorithm regression:* 3 opened · classify median 20m, p90 30m (n=3) · MTTA 10m (n=2)"
        " · MTTR 3h 00m (n=2) · reclassified 1/3 (33%)"
    ) in week
    assert "• *Harness/diagnostics:* 1 opened · classify median —, p90 — (n=0) · MTTA 2m (n=1)" in week
    assert "• *All:* 5 opened" in week
    assert "• *Algorithm regression:* 4 opened · classify median 25m, p90 1h 00m (n=4)" in month
    assert "reclassified 1/4 (25%)" in month


def test_an_empty_window_says_so(playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock) -> None:
    text = stats_text(StatsService(playbooks, clock).report(engine), runbook.policy.classify_within)
    assert text.count("No incidents opened.") == 2


def test_helpers() -> None:
    assert nearest_rank([], 0.9) is None
    assert nearest_rank([5.0], 0.9) == 5.0
    assert nearest_rank([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert [short(v) for v in (None, 42, 60, 3599, 3600, 90000)] == ["—", "42s", "1m", "59m", "1h 00m", "1d 01h"]


def test_triage_stats_in_slack(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001")))
    bot.card("INC-1")
    bot.clock.shift(minutes=12)
    bot.triage("classify INC-1 algorithm")
    answer = bot.triage("stats", user="U0OUTSIDER")  # a read: anyone may ask
    assert "*Last 7 days*" in answer and "*Last 30 days*" in answer
    assert "• *Algorithm regression:* 1 opened · classify median 12m, p90 12m (n=1)" in answer
