"""Quiet-thread reminders: service level under a fake clock on SQLite and PostgreSQL, then end to
end through the emulator (the real scheduler firing the real timer, the post in the thread)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident
from slackbot.domain.changes import Acknowledge, Actor, Assign, Classify, Resolve
from slackbot.incidents import reminders
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.timers import TimerService
from slackbot.slack.posts import render_post
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, RESPONDER, Bot, wait_for
from tests.status.support import (
    card_posted,
    incident,
    ingest_one,
    outbox,
    reminder_timer,
    timeline,
)

CAROL = Actor(RESPONDER, "command")


def reminder_posts(engine: Engine, incident_id: int) -> list[dict[str, object]]:
    return [o.payload for o in outbox(engine, "thread_post", incident_id) if o.payload.get("template") == "reminder"]


def fire(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> int:
    return TimerService(playbooks, clock).fire_due(engine, "test").fired


def test_a_quiet_thread_gets_a_reminder_each_interval_until_resolved(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    interval = runbook.policy.status_update_every
    iid = ingest_one(engine, playbooks, clock)
    assert reminder_timer(engine, iid) is None  # no thread yet, so no silence to measure
    IncidentCore(playbooks, clock).run(engine, iid, CAROL, Classify("algorithm"))
    card_posted(engine, playbooks, clock, iid)

    clock.advance(interval - timedelta(minutes=1))
    fire(engine, playbooks, clock)
    assert reminder_posts(engine, iid) == []
    clock.advance(timedelta(minutes=1))
    fire(engine, playbooks, clock)
    assert len(reminder_posts(engine, iid)) == 1
    (reminded,) = timeline(engine, iid, "reminded")
    assert reminded.source == "timer" and "@domain-owners" in reminded.message  # nobody assigned: the owner group

    clock.advance(interval)  # still nobody says anything: it asks again
    fire(engine, playbooks, clock)
    assert len(reminder_posts(engine, iid)) == 2

    IncidentCore(playbooks, clock).run(engine, iid, CAROL, Resolve("reverted the scoring change"))
    timer = reminder_timer(engine, iid)
    assert timer is not None and timer.state == "cancelled"
    clock.advance(interval * 5)
    fire(engine, playbooks, clock)
    assert len(reminder_posts(engine, iid)) == 2  # resolved: no more reminders


def test_every_change_pushes_the_reminder_back(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    interval = runbook.policy.status_update_every
    iid = ingest_one(engine, playbooks, clock)
    card_posted(engine, playbooks, clock, iid)
    service = IncidentCore(playbooks, clock)

    clock.advance(timedelta(minutes=50))
    service.run(engine, iid, CAROL, Acknowledge())  # a thread post: the silence starts over
    timer = reminder_timer(engine, iid)
    assert timer is not None and timer.due_at == clock.now() + interval
    clock.advance(timedelta(minutes=50))  # 100 minutes after the card, 50 after the last activity
    fire(engine, playbooks, clock)
    assert reminder_posts(engine, iid) == []

    clock.advance(timedelta(minutes=5))
    ingest_one(engine, playbooks, clock, run_id="9188")  # a recurrence posts in the thread too
    clock.advance(timedelta(minutes=59))
    fire(engine, playbooks, clock)
    assert reminder_posts(engine, iid) == []
    clock.advance(timedelta(minutes=1))
    fire(engine, playbooks, clock)
    assert len(reminder_posts(engine, iid)) == 1

    # A person replying in the thread is activity as well (the Slack message event).
    def interval_of(found: Incident) -> timedelta | None:  # as the Slack handler asks: the incident's playbook
        return playbooks.get(found.playbook).policy.status_update_every

    with session_scope(engine) as session:
        assert reminders.thread_reply(session, NIGHTLY, "1795000000.000100", clock.now(), interval_of)
        assert not reminders.thread_reply(session, NIGHTLY, "1795000000.999999", clock.now(), interval_of)
    timer = reminder_timer(engine, iid)
    assert timer is not None and timer.due_at == clock.now() + interval and timer.state == "pending"


def test_the_reminder_mentions_the_assignee_or_else_the_owner_group(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock)
    IncidentCore(playbooks, clock).run(engine, iid, CAROL, Classify("schema"))
    card_posted(engine, playbooks, clock, iid)
    clock.advance(runbook.policy.status_update_every)
    fire(engine, playbooks, clock)
    (payload,) = reminder_posts(engine, iid)
    unassigned = render_post(runbook, dict(payload), incident(engine, iid), None)
    assert "<!subteam^S0SCHEMA>" in unassigned and "quiet for 1h" in unassigned
    assert f"/triage status INC-{iid} MILESTONE" in unassigned

    IncidentCore(playbooks, clock).run(engine, iid, CAROL, Assign("U0DAN"))
    assigned = render_post(runbook, dict(payload), incident(engine, iid), None)
    assert "<@U0DAN>" in assigned and "S0SCHEMA" not in assigned


def test_a_reopened_flake_is_reminded_again(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock, "ADV-002")
    service = IncidentCore(playbooks, clock)
    service.run(engine, iid, CAROL, Classify("flake"))
    card_posted(engine, playbooks, clock, iid)
    with session_scope(engine) as session:  # the flake's bead was filed (the tracker is not under test here)
        row = session.get(Incident, iid)
        assert row is not None
        row.bead_id, row.bead_state = "tb-1", "filed"
    service.run(engine, iid, CAROL, Resolve("made the retry idempotent"))
    clock.advance(timedelta(hours=2))
    again = ingest_one(engine, playbooks, clock, "ADV-002", run_id="9300")
    assert again == iid and incident(engine, iid).status == "open"
    clock.advance(runbook.policy.status_update_every)
    fire(engine, playbooks, clock)
    assert len(reminder_posts(engine, iid)) == 1


# -- end to end -------------------------------------------------------------------------------------


def _reminders_in_thread(bot: Bot) -> list[str]:
    return [m.text for m in bot.thread("INC-1") if "has been quiet" in m.text]


def _fire_now(bot: Bot) -> None:
    """Fire whatever is due right now (the running scheduler may have done it already: timers fire
    exactly once, so both together still fire each one once) and wake the outbox."""
    TimerService(bot.core.playbooks, bot.core.clock).fire_due(bot.core.engine, "test")
    bot.core.notify_committed()


def test_end_to_end_the_assignee_is_asked_in_the_thread_and_replies_push_it_back(bot: Bot) -> None:
    bot.send(report(result("BID-002", "ASSIGN-001")))
    card = bot.card("INC-1")
    bot.triage("classify INC-1 algorithm")
    bot.triage("ack INC-1")
    # the card says when the bot will ask for an update
    wait_for(lambda: "asks for a status update" in bot.card_text("INC-1"), what="the pending reminder on the card")
    before = len(bot.thread("INC-1"))

    bot.clock.shift(minutes=61)
    _fire_now(bot)
    (first,) = wait_for(lambda: _reminders_in_thread(bot), what="the reminder")
    assert first.startswith(f"⏰ <@{RESPONDER}>") and "quiet for 1h" in first

    bot.clock.shift(minutes=61)  # nobody answered: it asks again
    _fire_now(bot)
    wait_for(lambda: len(_reminders_in_thread(bot)) == 2, what="the second reminder")

    # A person answers in the thread: the next reminder is an hour after that, not before.
    bot.emulator.post_as_user(RESPONDER, NIGHTLY, "bisecting the scoring change now", thread_ts=card.ts)
    wait_for(
        lambda: (
            (t := reminder_timer(bot.core.engine, 1)) is not None
            and t.due_at >= bot.clock.now() + timedelta(minutes=59)
        ),
        what="the reply to push the reminder back",
    )
    bot.clock.shift(minutes=40)
    _fire_now(bot)
    assert len(timeline(bot.core.engine, 1, "reminded")) == 2  # fired synchronously above: none due

    assert "resolved" in bot.triage("resolve INC-1 reverted the scoring change")
    wait_for(lambda: any("Resolved" in m.text for m in bot.thread("INC-1")), what="the resolved post")
    bot.clock.shift(hours=3)
    _fire_now(bot)
    assert len(timeline(bot.core.engine, 1, "reminded")) == 2  # reminders stop with the incident
    assert len(_reminders_in_thread(bot)) == 2
    assert len(bot.thread("INC-1")) > before
