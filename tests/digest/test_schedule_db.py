"""The digest schedule on both databases: replicas racing to fire it, a restart, a long outage."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Digest, OutboxItem, Timer
from slackbot.incidents.digests import digest_channels, ensure_timers
from slackbot.incidents.timers import TimerService

BERLIN = ZoneInfo("Europe/Berlin")


def rows(engine: Engine) -> tuple[list[tuple[str, datetime]], list[tuple[str, str]], dict[str, datetime]]:
    with Session(engine) as session:
        weeks = [(d.channel, d.week_end.replace(tzinfo=UTC)) for d in session.exec(select(Digest))]
        effects = [(o.kind, o.lane) for o in session.exec(select(OutboxItem).order_by(col(OutboxItem.id)))]
        timers = {
            t.subject: t.due_at.replace(tzinfo=UTC)
            for t in session.exec(select(Timer).where(Timer.kind == "digest", Timer.state == "pending"))
        }
    return sorted(weeks), effects, timers


def test_replicas_after_an_outage_schedule_one_digest_per_channel_for_the_latest_week(
    engine: Engine, playbooks: Playbooks
) -> None:
    channels = digest_channels(playbooks)
    assert "C0NIGHTLY" in channels and len(channels) > 3
    clock = FakeClock(datetime(2027, 1, 6, 10, 0, tzinfo=BERLIN))
    ensure_timers(engine, playbooks, clock)
    ensure_timers(engine, playbooks, clock)  # a second replica starting: still one timer each
    monday = datetime(2027, 1, 11, 9, 0, tzinfo=BERLIN)
    assert rows(engine)[2] == {f"digest:{c}": monday for c in channels}

    service = TimerService(playbooks, clock)
    clock.set(monday - timedelta(seconds=1))
    assert service.fire_due(engine, "replica-a").fired == 0

    # Down for three weeks; back on a Monday at 10:30, two replicas restart and race.
    back = datetime(2027, 1, 25, 10, 30, tzinfo=BERLIN)
    clock.set(back)
    ensure_timers(engine, playbooks, clock)  # an overdue timer is left due, not moved to next week
    with ThreadPoolExecutor(2) as pool:
        fired = sum(r.fired for r in pool.map(lambda w: service.fire_due(engine, w), ["replica-a", "replica-b"]))
    assert fired == len(channels)

    latest = datetime(2027, 1, 25, 9, 0, tzinfo=BERLIN)
    weeks, effects, timers = rows(engine)
    assert weeks == sorted((c, latest) for c in channels)  # one week each: the latest, not three
    assert sorted(effects) == sorted([("digest", c) for c in channels] + [("chart", c) for c in channels])
    assert timers == {f"digest:{c}": latest + timedelta(days=7) for c in channels}
    assert service.fire_due(engine, "replica-b").fired == 0
    assert len(rows(engine)[1]) == 2 * len(channels)
