"""The weekly digest and the triage chart, over real HTTP with the Slack emulator.

The clock is set to a Wednesday in Berlin, incidents are opened and worked there, and then moved
to the following Monday 09:00 Berlin time, when the shipped schedule (runbooks/workspace.yml)
posts each channel's digest and its chart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from slackbot.db.models import Digest, Timer
from slackbot.emulator.state import Message, UploadedFile
from tests.digest.conftest import Site
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, Bot, wait_for

BERLIN = ZoneInfo("Europe/Berlin")
PNG = b"\x89PNG\r\n\x1a\n"
WEDNESDAY = datetime(2027, 1, 6, 10, 0, tzinfo=BERLIN)
MONDAY_9 = datetime(2027, 1, 11, 9, 0, tzinfo=BERLIN)  # the shipped schedule: Monday 09:00 Europe/Berlin
# Early on the Monday: the incidents' escalations and reminders of a few hours, not of five days,
# are what the channel's lane posts before the digest (at Slack's one post a second).
EARLY = MONDAY_9 - timedelta(hours=2)


def run(run_id: str, *results: dict[str, Any]) -> dict[str, Any]:
    sent = report(*results, run_id=run_id)
    sent["run"]["sha"] = f"{int(run_id):040x}"  # a new commit per run: flips, not one sha's retries
    return sent


def digests(bot: Bot, channel: str = NIGHTLY) -> list[Message]:
    return [m for m in bot.emulator.messages(channel) if m.blocks and m.blocks[0].get("block_id") == "digest_head"]


def charts(bot: Bot, channel: str = NIGHTLY, prefix: str = "triage-digest-") -> list[UploadedFile]:
    return [f for f in bot.emulator.files() if f.channel == channel and f.name.startswith(prefix)]


def digest_timer_due(bot: Bot, channel: str = NIGHTLY) -> datetime | None:
    with Session(bot.core.engine) as session:
        timer = session.exec(
            select(Timer).where(Timer.subject == f"digest:{channel}", Timer.state == "pending")
        ).first()
        return timer.due_at.replace(tzinfo=UTC) if timer else None


def scheduled(bot: Bot, channel: str = NIGHTLY) -> list[tuple[str, datetime]]:
    """The weeks scheduled for the channel (channel, the moment each was due)."""
    with Session(bot.core.engine) as session:
        weeks = session.exec(select(Digest).where(Digest.channel == channel).order_by(col(Digest.id))).all()
        return [(w.channel, w.week_end.replace(tzinfo=UTC)) for w in weeks]


def test_monday_digest_posts_the_weeks_numbers_and_a_chart_once(site: Site) -> None:
    site.clock.set(EARLY)
    with site.bot() as bot:
        assert digest_timer_due(bot) == MONDAY_9  # armed at start for the next Monday 09:00 Berlin
        bot.send(
            run("101", result("BID-001", "TENANT-001"), result("BID-002", "NOTIF-001"), result("BID-003", "TENANT-002"))
        )
        for key in ("INC-1", "INC-2", "INC-3"):
            bot.card(key)
        bot.clock.shift(minutes=5)
        assert "Infra/CI" in bot.triage("classify INC-1 infra")  # within the 20-minute rule
        bot.clock.shift(minutes=25)
        bot.triage("classify INC-2 algorithm")  # 30 minutes: late
        bot.clock.shift(minutes=5)
        bot.triage("classify INC-2 drift")  # the first classification was wrong
        for run_id, outcomes in (("102", "pfp"), ("103", "fpp")):
            statuses = ["passed" if o == "p" else "failed" for o in outcomes]
            bot.send(
                run(
                    run_id,
                    result("BID-001", "TENANT-001", status=statuses[0]),
                    result("BID-002", "NOTIF-001", status=statuses[1]),
                    result("BID-003", "TENANT-002", status=statuses[2]),
                )
            )
            bot.clock.shift(minutes=1)
        wait_for(lambda: "2 flips" in bot.triage("stats"), what="the history of the third run")

        # Sunday night: nothing yet. Monday 09:00 Berlin: one digest and one chart per channel.
        bot.clock.set(MONDAY_9 - timedelta(seconds=3))
        assert digests(bot) == []
        bot.clock.set(MONDAY_9)
        posted = wait_for(lambda: digests(bot), what="the digest")
        chart = wait_for(lambda: charts(bot), what="the chart")
        wait_for(lambda: digest_timer_due(bot) == MONDAY_9 + timedelta(days=7), what="next week's timer")

        text = json.dumps(posted[0].blocks)
        assert "Weekly triage digest" in posted[0].text and "<#C0NIGHTLY>" in posted[0].text
        assert "Mon 04 Jan 09:00 – Mon 11 Jan 09:00 (Europe/Berlin)" in posted[0].text
        assert "*3* new incidents · *2* recurring" in posted[0].text  # INC-2, then INC-1 failed again
        assert "classification target 20 min" in posted[0].text
        assert "(n=2, 1/2 within 20 min)" in posted[0].text  # INC-1 at 5 min, INC-2 at 30
        assert "reclassified 1/2 (50%)" in posted[0].text
        assert "*Infra/CI:* 1 opened · classify median 5m" in posted[0].text
        assert "`BID-001 / TENANT-001` flake rate 100% (2 flips in 3 runs on main), fails 67% (2/3)" in posted[0].text
        assert "BID-002 / NOTIF-001" not in posted[0].text  # broke, then fixed: one flip is not flaky
        assert "BID-003 / TENANT-002" not in posted[0].text
        drift_owner = bot.core.playbooks.default.owner_target("data_schema_drift").describe()
        assert f"• {drift_owner}: " in posted[0].text
        assert "digest_flaky" in text and "digest_owners" in text

        (png,) = chart
        assert png.content is not None and png.content.startswith(PNG)
        assert 10_000 < len(png.content) < 500_000
        assert png.name == "triage-digest-C0NIGHTLY-2027-01-11.png"
        other = wait_for(lambda: digests(bot, "C0SMOKE"), what="the digest of another channel")
        assert "*0* new incidents" in other[0].text and "No incidents opened this week." in other[0].text

        # Once: the week has one row, its two deliveries, and the timer is next week's already.
        assert scheduled(bot) == [("C0NIGHTLY", MONDAY_9)]
        assert len(digests(bot)) == 1 and len(charts(bot)) == 1


def test_a_restart_after_three_weeks_down_posts_one_digest_and_a_second_replica_none(site: Site) -> None:
    site.clock.set(WEDNESDAY)
    with site.bot() as bot:
        for run_id, status in (("201", "failed"), ("202", "passed"), ("203", "failed")):
            bot.send(run(run_id, result("BID-001", "TENANT-001", status=status)))  # flaky, and open
        bot.card("INC-1")
    # Down from Wednesday until three Mondays later, 10:30; then two replicas start at once.
    back = MONDAY_9 + timedelta(days=14, hours=1, minutes=30)
    site.clock.set(back)
    with site.bot() as first, site.bot() as second:
        posted = wait_for(lambda: digests(first), what="the missed digest")
        wait_for(lambda: charts(first), what="its chart")
        wait_for(
            lambda: digest_timer_due(second) == back.replace(hour=9, minute=0) + timedelta(days=7), what="the timer"
        )
        # Only the latest week, posted once though two replicas were ready to fire it.
        assert len(posted) == 1 and len(charts(second)) == 1
        assert "Mon 18 Jan 09:00 – Mon 25 Jan 09:00" in posted[0].text
        assert scheduled(first) == [(NIGHTLY, datetime(2027, 1, 25, 9, 0, tzinfo=BERLIN))]
    with site.bot() as again:  # and a restart the same morning does not post it again
        wait_for(lambda: digest_timer_due(again) is not None, what="the timer after the restart")
        assert scheduled(again) == [(NIGHTLY, datetime(2027, 1, 25, 9, 0, tzinfo=BERLIN))]
        assert len(digests(again)) == 1 and len(charts(again)) == 1


def test_stats_shows_flake_rates_and_uploads_the_chart_on_demand(site: Site) -> None:
    site.clock.set(WEDNESDAY)
    with site.bot() as bot:
        for run_id, status in (("301", "failed"), ("302", "passed"), ("303", "failed")):
            bot.send(run(run_id, result("SCH-001", "TENANT-001", status=status, message="<!channel> timed out")))
            bot.clock.shift(minutes=1)
        bot.card("INC-1")
        answer = wait_for(lambda: (a := bot.triage("stats")) and "2 flips" in a and a, what="the flaky test")
        assert "*Flakiest tests*" in answer
        assert "`SCH-001 / TENANT-001` flake rate 100% (2 flips in 3 runs on main), fails 67% (2/3)" in answer

        bot.emulator.fail_next("files.completeUploadExternal", status=500)  # the first upload fails
        reply = bot.triage("stats chart")
        assert "uploaded to this channel in a moment" in reply
        assert "already on its way" in bot.triage("stats chart")  # the same minute: one upload
        (chart,) = wait_for(lambda: charts(bot, prefix="triage-stats-"), what="the chart")
        assert chart.content is not None and chart.content.startswith(PNG) and len(chart.content) > 10_000
        assert [c.status for c in bot.emulator.calls("files.completeUploadExternal")] == [500, 200]
        message = next(m for m in bot.emulator.messages(NIGHTLY) if m.files)
        assert "requested by <@U0CAROL>" in message.text
        assert "usage: `/triage stats [chart]`" in bot.triage("stats pie")
