"""The bounded, aggregating reads answer exactly what loading every incident into Python did, on a
realistic history (bench/history.py's fill) on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from slackbot.clock import FakeClock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, TimelineEvent
from slackbot.reads.home import load_home
from slackbot.reads.queries import first_incidents, list_incidents
from slackbot.reads.stats import StatsService, stats_text
from slackbot.slack import replies
from slackbot.slack.home import home_data, render_home_view
from tests.pgserver import PostgresServer
from tests.reads.conftest import fill_history

CLOCK = FakeClock()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'history.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database("reads_results")
    engine = make_engine(url)
    upgrade(engine)
    fill_history(engine, CLOCK, incidents=6_000, occurrences=30_000, open_incidents=120)
    yield engine
    engine.dispose()


def reference_stats(engine: Engine, days: int) -> dict[str, tuple[object, ...]]:
    """The previous /triage stats: every incident of the window loaded and counted in Python."""
    since = CLOCK.now() - timedelta(days=days)
    with session_scope(engine) as session:
        incidents = list(session.exec(select(Incident).where(col(Incident.created_at) >= since)))
        reclassified = set(
            session.exec(select(TimelineEvent.incident_id).where(TimelineEvent.kind == "reclassified").distinct())
        )
    groups: dict[str, list[Incident]] = {}
    for incident in incidents:
        groups.setdefault(incident.failure_class or "unclassified", []).append(incident)
        groups.setdefault("all", []).append(incident)

    def seconds(incident: Incident, end: object) -> float:
        return max(0.0, (as_utc(end) - as_utc(incident.created_at)).total_seconds())  # type: ignore[arg-type]

    answer = {}
    for key, rows in groups.items():
        classify = sorted(seconds(i, i.classified_at) for i in rows if i.classified_at and not i.contract_violation)
        ack = [seconds(i, i.acknowledged_at) for i in rows if i.acknowledged_at]
        res = [seconds(i, i.resolved_at) for i in rows if i.resolved_at and i.status == "resolved"]
        classified = [i for i in rows if i.failure_class]
        answer[key] = (
            len(rows),
            len(classified),
            sum(1 for i in classified if i.id in reclassified),
            len(ack),
            len(res),
            len(classify),
            statistics.median(classify) if classify else None,
            classify[max(1, math.ceil(0.9 * len(classify))) - 1] if classify else None,
            statistics.fmean(ack) if ack else None,
            statistics.fmean(res) if res else None,
        )
    return answer


def test_stats_aggregated_in_the_database_match_counting_every_incident(history: Engine, playbooks: Playbooks) -> None:
    windows = StatsService(playbooks, CLOCK).report(history)
    assert windows[0].total.opened > 50  # the week is not trivially empty
    for window in windows:
        got = {
            s.key: (s.opened, s.classified, s.reclassified, s.acknowledged, s.resolved, s.classify_n,
                    s.classify_median, s.classify_p90, s.mtta, s.mttr)
            for s in [*window.classes, window.total]
        }  # fmt: skip
        expected = reference_stats(history, window.days)
        assert got.keys() == expected.keys()
        for key, row in expected.items():
            assert got[key][:8] == row[:8], key  # counts and order statistics: the same durations, exactly
            for mean, expected_mean in zip(got[key][8:], row[8:], strict=True):  # means: summed in another order
                assert mean == (None if expected_mean is None else pytest.approx(expected_mean, rel=1e-12)), key
    text = stats_text(windows, playbooks.default.policy.classify_within)
    assert "*Last 7 days*" in text and "reclassified" in text


def test_app_home_from_a_few_queries_is_the_home_from_every_open_incident(
    history: Engine, playbooks: Playbooks
) -> None:
    now = CLOCK.now()
    with session_scope(history) as session:
        every_open = list_incidents(session, status="open", limit=100_000)
        busiest = max(
            {i.assignee for i in every_open if i.assignee}, key=lambda u: sum(i.assignee == u for i in every_open)
        )
        for user in (busiest, "U0NOBODY"):
            bounded = render_home_view(load_home(session, user, now), playbooks)
            assert bounded == render_home_view(home_data(user, every_open, now), playbooks)
        overdue = sum(
            1 for i in every_open if not i.failure_class and i.classify_deadline and as_utc(i.classify_deadline) <= now
        )
        assert overdue > 15  # more than a screenful: the "…and N more" line is compared too
        assert f"Overdue for classification ({overdue})" in str(bounded)


def test_triage_list_shows_the_first_thirty_and_counts_them_all(history: Engine, playbooks: Playbooks) -> None:
    with session_scope(history) as session:
        every_open = list_incidents(session, status="open", limit=100_000)
        listing = first_incidents(session, replies.LIST_LINES, status="open")
        bounded = replies.incident_list("Open incidents", listing.incidents, playbooks, total=listing.total)
    assert bounded == replies.incident_list("Open incidents", every_open, playbooks)
    assert f"Open incidents ({len(every_open)})" in bounded and f"…and {len(every_open) - 30} more" in bounded
