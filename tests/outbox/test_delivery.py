"""Outbox delivery against the emulator under a virtual clock: retries, dead letters, restarts."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlmodel import Session, select

from slackbot.db.models import TimelineEvent
from slackbot.outbox import store
from slackbot.outbox.slack_deliveries import SlackDeliveries
from tests.factories import result
from tests.outbox.rig import NIGHTLY, OPS, Rig, ingest


def test_server_errors_are_retried_with_backoff_and_counted(rig: Rig) -> None:
    rig.emulator.fail_next("chat.postMessage", status=500, count=2)
    ingest(rig, result("BID-001", "TENANT-001"))
    worker = rig.worker("w1")
    asyncio.run(worker.step())
    (row,) = rig.rows()
    assert row.state == "pending" and row.attempts == 1 and "HTTP 500" in (row.last_error or "")
    assert row.next_attempt_at > rig.clock.now()  # backs off instead of hammering Slack
    rig.drain(worker)
    (row,) = rig.rows()
    assert row.state == "done" and row.attempts == 3
    assert len(rig.emulator.messages(NIGHTLY)) == 1


def test_a_429_waits_for_retry_after_and_does_not_count_as_a_failure(rig: Rig) -> None:
    rig.emulator.fail_next("chat.postMessage", status=429, count=1, retry_after=30)
    ingest(rig, result("BID-001", "TENANT-001"))
    worker = rig.worker("w1")
    asyncio.run(worker.step())
    (row,) = rig.rows()
    assert row.attempts == 0 and row.next_attempt_at >= rig.clock.now() + timedelta(seconds=29)
    rig.clock.advance(10)
    asyncio.run(worker.step())
    assert rig.emulator.messages(NIGHTLY) == []  # still honouring Retry-After
    rig.drain(worker)
    assert len(rig.emulator.messages(NIGHTLY)) == 1


def test_permanent_errors_are_dead_lettered_with_a_notice_in_the_ops_channel(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    with Session(rig.engine) as session:  # the channel was archived/deleted on Slack's side
        rig.emulator.archive_channel(NIGHTLY)
        session.commit()
    worker = rig.worker("w1")
    rig.drain(worker)
    card, notice = rig.rows()
    assert card.kind == "card" and card.state == "dead" and "is_archived" in (card.last_error or "")
    assert notice.kind == "ops_notice" and notice.state == "done"
    (posted,) = rig.emulator.messages(OPS)
    assert "dead-lettered" in posted.text and "is_archived" in posted.text
    with Session(rig.engine) as session:
        failed = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "delivery_failed")).one()
    assert "is_archived" in failed.message


def test_repeated_failures_stop_after_the_attempt_limit(rig: Rig) -> None:
    rig.emulator.fail_next("chat.postMessage", status=503, count=50)
    ingest(rig, result("BID-001", "TENANT-001"))
    worker = rig.worker("w1", max_attempts=3)
    rig.drain(worker, seconds=3600)
    card = rig.rows()[0]
    assert card.state == "dead" and card.attempts == 3 and "after 3 attempts" in (card.last_error or "")


def test_a_restart_resumes_delivery_and_posts_each_card_once(rig: Rig) -> None:
    ingest(rig, *(result(f"API-00{n}", "TENANT-002") for n in range(1, 4)))
    # a worker claims the channel's next row and dies before delivering it (its lease stays behind)
    (claimed,) = store.claim(rig.engine, now=rig.clock.now(), worker="dead-worker", kinds={"card"}, skip_lanes=set())
    survivor = rig.worker("w2")
    rig.drain(survivor, seconds=30)
    assert len(rig.emulator.messages(NIGHTLY)) == 2  # the others go out; the claimed one waits for its lease
    assert next(r for r in rig.rows() if r.id == claimed.id).state == "sending"
    rig.clock.advance(store.LEASE)
    rig.drain(survivor)
    assert all(r.state == "done" for r in rig.rows())
    titles = sorted(m.blocks[0]["text"]["text"] for m in rig.emulator.messages(NIGHTLY))
    assert len(titles) == 3 and len(set(titles)) == 3


def test_a_card_posted_by_a_worker_that_died_before_recording_it_is_found_not_reposted(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    worker = rig.worker("w1")

    async def crash_after_post() -> None:
        deliveries = SlackDeliveries(
            rig.engine,
            AsyncWebClient(token=rig.emulator.bot_token, base_url=rig.emulator.base_url),
            rig.playbooks,
            rig.clock,
            "w0",
        )
        (item,) = store.claim(rig.engine, now=rig.clock.now(), worker="w0", kinds={"card"}, skip_lanes=set())
        deliveries._record_card_ts = lambda *args: None  # type: ignore[method-assign]  # dies here
        await deliveries.card(item)

    asyncio.run(crash_after_post())
    assert len(rig.emulator.messages(NIGHTLY)) == 1
    rig.clock.advance(timedelta(minutes=5))
    rig.drain(worker)
    assert len(rig.emulator.messages(NIGHTLY)) == 1  # recovered from the channel, not posted again


def test_a_burst_of_changes_is_one_card_edit_that_shows_the_last_and_every_thread_post(rig: Rig) -> None:
    from slackbot.domain.changes import Acknowledge, Actor, Classify, SetSeverity
    from slackbot.incidents.core import IncidentCore

    ingest(rig, result("BID-001", "TENANT-001"))
    worker = rig.worker("w1")
    rig.drain(worker)
    (card,) = rig.emulator.messages(NIGHTLY)
    edits_before = len(rig.emulator.calls("chat.update"))

    service = IncidentCore(rig.playbooks, rig.clock)
    carol = Actor("U0CAROL", "button")
    for change in [Classify("algorithm"), SetSeverity("SEV-2"), Classify("schema"), Acknowledge()]:
        service.run(rig.engine, 1, carol, change)
    assert len([r for r in rig.rows() if r.kind == "card" and r.state == "pending"]) == 1

    rig.drain(worker)
    assert len(rig.emulator.calls("chat.update")) == edits_before + 1
    (card,) = rig.emulator.messages(NIGHTLY)
    shown = str(card.blocks)
    assert "data_schema_drift" in shown and "SEV-2" in shown and "<@U0CAROL>" in shown
    posts = [m.text for m in rig.emulator.replies(NIGHTLY, card.ts) if m.ts != card.ts]
    # every thread post went out, in order, but the card's redraws were merged, and so was the first
    # classification, replaced before its post went out: the one post names both, in order
    assert [p.split()[0] for p in posts] == ["🚨", "🚦", "🏷️", "👀"]
    assert posts[2].startswith("🏷️ <@U0CAROL> classified this as *Algorithm regression*, then *Data/schema drift*.")


def test_a_change_while_the_card_is_being_drawn_queues_a_new_redraw(rig: Rig) -> None:
    from slackbot.domain.changes import Acknowledge, Actor, SetSeverity
    from slackbot.incidents.core import IncidentCore

    ingest(rig, result("BID-001", "TENANT-001"))
    rig.drain(rig.worker("w1"))
    IncidentCore(rig.playbooks, rig.clock).run(rig.engine, 1, Actor("U0CAROL", "button"), Acknowledge())
    (taken,) = store.claim(rig.engine, now=rig.clock.now(), worker="w2", kinds={"card"}, skip_lanes=set())
    # w2 may already have read the incident: the next change must not count on its redraw
    IncidentCore(rig.playbooks, rig.clock).run(rig.engine, 1, Actor("U0CAROL", "button"), SetSeverity("SEV-1"))
    pending = [r for r in rig.rows() if r.kind == "card" and r.state == "pending"]
    assert len(pending) == 1 and pending[0].id != taken.id


def test_an_idle_claim_does_not_wait_for_the_write_lock(rig: Rig) -> None:
    """An idle worker claims every half second. On SQLite a claim that found nothing must not queue
    for the one write lock behind an ingest's transaction, nor take it from the acks' commits."""
    ingest(rig, result("BID-001", "TENANT-001"))
    rig.drain(rig.worker("w1"))
    assert all(r.state == "done" for r in rig.rows())
    answered: list[int] = []
    with rig.engine.connect() as writer:  # BEGIN IMMEDIATE: the write lock, held meanwhile
        writer.execute(text("UPDATE outbox SET attempts = attempts"))

        def idle_claim() -> None:
            found = store.claim(rig.engine, now=rig.clock.now(), worker="w1", kinds={"card"}, skip_lanes=set())
            answered.append(len(found))

        claim = threading.Thread(target=idle_claim)
        claim.start()
        claim.join(timeout=2.0)
        assert answered == [0], "the idle claim waited for the write lock"
        writer.rollback()
    ingest(rig, result("BID-002", "TENANT-001"), run_id="2")  # work again: claimed as before
    (taken,) = store.claim(rig.engine, now=rig.clock.now(), worker="w1", kinds={"card"}, skip_lanes=set())
    assert taken.state == "sending"
