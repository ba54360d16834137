"""A reclassify storm costs Slack one post and one checklist, and a card edit a second at most.

Under a virtual clock first (the outbox stepped while the storm runs, as its loop would), then
through the running bot with signed clicks against the emulator and its per-channel rate limit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import Session, col, select

from slackbot.db.models import OutboxItem, TimelineEvent
from slackbot.domain.changes import Acknowledge, Actor, Classify, SetSeverity
from slackbot.emulator.state import Message
from slackbot.incidents.coalescing import FIRST, LAST
from slackbot.incidents.core import IncidentCore
from slackbot.outbox import store
from slackbot.outbox.checklist_deliveries import CHECKLIST_EVENT, ChecklistDeliveries
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.worker import OutboxWorker
from tests.factories import report, result
from tests.outbox.rig import NIGHTLY, OPS, Rig, ingest
from tests.slack.conftest import RESPONDER, Bot, wait_for

CAROL, DAN = "U0CAROL", "U0DAN"
WINDOW = timedelta(seconds=2)
LABELS = {
    "infra_ci": "Infra/CI",
    "harness_diagnostics": "Harness/diagnostics",
    "algorithm_regression": "Algorithm regression",
    "data_schema_drift": "Data/schema drift",
}
STORM = [*LABELS] * 5  # 20 classifications; no flake, whose bead the rig has no tracker for


def worker(rig: Rig, name: str = "w1") -> OutboxWorker:
    client = AsyncWebClient(token=rig.emulator.bot_token, base_url=rig.emulator.base_url)
    outbox = OutboxWorker(rig.engine, rig.clock, {}, worker_id=name, ops_channel=OPS)
    outbox.handlers.update(SlackDeliveries(rig.engine, client, rig.playbooks, rig.clock, name).handlers())
    outbox.handlers.update(ChecklistDeliveries(rig.engine, client, rig.playbooks).handlers())
    return outbox


def step(rig: Rig, outbox: OutboxWorker, seconds: float, tick: float = 0.1) -> None:
    """Let the outbox run for ``seconds`` of virtual time, claiming every ``tick``."""

    async def go() -> None:
        for _ in range(round(seconds / tick)):
            await outbox.step()
            rig.clock.advance(tick)

    asyncio.run(go())


def thread(rig: Rig) -> list[Message]:
    card = rig.emulator.messages(NIGHTLY)[0]
    return [m for m in rig.emulator.replies(NIGHTLY, card.ts) if m.ts != card.ts]


def classified_posts(posts: list[Message]) -> list[str]:
    return [m.text.split("\n")[0] for m in posts if "classified this" in m.text or "Reclassified" in m.text]


def checklists(posts: list[Message]) -> dict[str, Message]:
    """The checklists in the thread by their key (one message each here: short runbooks)."""
    return {
        str((m.metadata or {}).get("event_payload", {}).get("checklist")): m
        for m in posts
        if (m.metadata or {}).get("event_type") == CHECKLIST_EVENT
    }


def has_buttons(message: Message) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks or [])


def card_edit_gaps(calls: list[Any], card_ts: str) -> list[float]:
    times = sorted(c.time for c in calls if c.body.get("ts") == card_ts)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def sequence_text(classes: list[str], actors: list[str]) -> str:
    """How the classified template names a run of classifications: the first ``FIRST`` and the
    last ``LAST`` by name, the ones between counted."""
    steps: list[tuple[str, str] | None] = list(zip(classes, actors, strict=True))
    if len(steps) > FIRST + LAST:
        steps = [*steps[:FIRST], None, *steps[-LAST:]]
    words, before = [], None
    for n, step in enumerate(steps):
        if step is None:
            words.append(f"then {len(classes) - FIRST - LAST} more reclassifications")
            before = None
            continue
        key, actor = step
        if n == 0:
            words.append(f"<@{actor}> classified this as *{LABELS[key]}*")
        elif actor != before:
            words.append(f"then <@{actor}> as *{LABELS[key]}*")
        else:
            words.append(f"then *{LABELS[key]}*")
        before = actor
    return ", ".join(words) + "."


def test_a_reclassify_storm_is_one_post_naming_the_sequence_one_checklist_and_paced_card_edits(any_rig: Rig) -> None:
    rig = any_rig
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    card = rig.emulator.messages(NIGHTLY)[0]
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    actors = [CAROL if n % 3 else DAN for n in range(len(STORM))]
    for key, actor in zip(STORM, actors, strict=True):
        core.run(rig.engine, 1, Actor(actor, "button"), Classify(key))
        step(rig, outbox, 0.2)  # the lane keeps delivering while the storm goes on
    step(rig, outbox, 30, tick=0.25)

    rows = rig.rows()
    assert not [r for r in rows if r.state in ("pending", "sending", "dead")]
    shown = str(rig.emulator.message(NIGHTLY, card.ts).blocks)  # type: ignore[union-attr]
    assert "Data/schema drift" in shown  # the card shows the last classification
    gaps = card_edit_gaps(rig.emulator.calls("chat.update"), card.ts)
    assert gaps and min(gaps) >= 1.0, gaps  # the card was redrawn during the storm, never twice in a second
    posts = thread(rig)
    (post,) = classified_posts(posts)
    assert post == "🏷️ " + sequence_text(STORM, actors)
    (only,) = checklists(posts).values()
    assert "Data/schema drift" in only.text and has_buttons(only)  # the class that stood
    superseded = [r for r in rows if r.state == "superseded"]
    assert sorted(r.kind for r in superseded) == ["checklist"] * 19 + ["thread_post"] * 19


def test_a_classification_that_stood_keeps_its_post_and_checklist(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    core.run(rig.engine, 1, Actor(CAROL, "button"), Classify("infra"))
    step(rig, outbox, 1)
    assert classified_posts(thread(rig)) == []  # waiting for a correction
    step(rig, outbox, 3)  # it stood longer than the window: posted, with its checklist
    assert classified_posts(thread(rig)) == ["🏷️ <@U0CAROL> classified this as *Infra/CI*."]
    (infra_key,) = checklists(thread(rig))

    core.run(rig.engine, 1, Actor(DAN, "button"), Classify("algorithm"))
    step(rig, outbox, 0.5)
    core.run(rig.engine, 1, Actor(DAN, "button"), Classify("schema"))
    step(rig, outbox, 10)

    posts = thread(rig)
    assert classified_posts(posts) == [
        "🏷️ <@U0CAROL> classified this as *Infra/CI*.",
        "🔁 Reclassified from *Infra/CI*: <@U0DAN> classified this as *Algorithm regression*, "
        "then *Data/schema drift*.",
    ]
    drawn = checklists(posts)
    assert len(drawn) == 2  # the algorithm checklist never went out
    assert not has_buttons(drawn[infra_key])  # the one that stood is struck out, not left clickable
    (schema,) = [m for key, m in drawn.items() if key != infra_key]
    assert "Data/schema drift" in schema.text and has_buttons(schema)


def test_a_post_another_replica_has_claimed_is_never_folded_and_goes_out_once(any_rig: Rig) -> None:
    rig = any_rig
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    core.run(rig.engine, 1, Actor(CAROL, "button"), Classify("infra"))
    rig.clock.advance(WINDOW)
    # w2 claims the post (and may be posting it right now) when the correction comes in
    (taken,) = store.claim(rig.engine, now=rig.clock.now(), worker="w2", kinds={"thread_post"}, skip_lanes=set())
    core.run(rig.engine, 1, Actor(CAROL, "button"), Classify("algorithm"))
    with Session(rig.engine) as session:
        assert session.get(OutboxItem, taken.id).state == "sending"  # type: ignore[union-attr]
    step(rig, outbox, 70, tick=1.0)  # w2 died: its lease runs out and w1 takes the row over

    # each classification went out exactly once (after a crash, in the order the takeover allows)
    assert sorted(classified_posts(thread(rig))) == [
        "🏷️ <@U0CAROL> classified this as *Infra/CI*.",
        "🔁 <@U0CAROL> reclassified this from *Infra/CI* to *Algorithm regression*.",
    ]


def test_only_classification_posts_fold_other_posts_in_the_storm_all_go_out(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    for change in (Classify("infra"), SetSeverity("SEV-1"), Classify("schema"), Acknowledge()):
        core.run(rig.engine, 1, Actor(CAROL, "button"), change)
    step(rig, outbox, 15, tick=0.25)
    with Session(rig.engine) as session:
        folded = session.exec(select(OutboxItem).where(col(OutboxItem.state) == "superseded")).all()
    assert sorted(r.kind for r in folded) == ["checklist", "thread_post"]
    firsts = [m.text.split()[0] for m in thread(rig)]
    # the page and the severity post went out; the classification post named both classes
    assert "🚨" in firsts and "🚦" in firsts and "👀" in firsts
    assert "🏷️ <@U0CAROL> classified this as *Infra/CI*, then *Data/schema drift*." in classified_posts(thread(rig))


# -- through the bot -------------------------------------------------------------------------------


def test_twenty_signed_clicks_through_the_bot_are_one_post_one_checklist_and_paced_card_edits(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001")))
    card = bot.card("INC-1")
    classes = [*LABELS] * 5
    for key in classes:  # the load: quick clicks spread over 3 s, so the card is redrawn while they come
        assert bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", key).status == 200
        time.sleep(0.15)
    started = time.monotonic()
    _wait_drained(bot, len(classes))
    drained = time.monotonic() - started

    posts = [m for m in bot.thread("INC-1") if m.ts != card.ts]
    assert classified_posts(posts) == ["🏷️ " + sequence_text(classes, [RESPONDER] * len(classes))]
    (only,) = checklists(posts).values()
    assert "Data/schema drift" in only.text and has_buttons(only)
    assert "Data/schema drift" in bot.card_text("INC-1")
    gaps = card_edit_gaps(bot.emulator.calls("chat.update"), card.ts)
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert drained < 30, drained

    # One that stands longer than the window has its own post and checklist; the last is struck out.
    assert bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "infra_ci").status == 200
    _wait_drained(bot, len(classes) + 1)
    posts = [m for m in bot.thread("INC-1") if m.ts != card.ts]
    assert classified_posts(posts)[-1] == (
        f"🔁 <@{RESPONDER}> reclassified this from *Data/schema drift* to *Infra/CI*."
    )
    drawn = checklists(posts)
    assert len(drawn) == 2 and not has_buttons(drawn[next(iter(drawn))])


def _wait_drained(bot: Bot, classifications: int) -> None:
    """Every click applied (changes follow their acks), then the channel's lane empty."""

    def applied() -> bool:
        with Session(bot.core.engine) as session:
            rows = session.exec(
                select(TimelineEvent.id).where(col(TimelineEvent.kind).in_(("classified", "reclassified")))
            ).all()
        return len(rows) >= classifications

    def drained() -> bool:
        with Session(bot.core.engine) as session:
            waiting = session.exec(
                select(OutboxItem.id).where(
                    col(OutboxItem.state).in_(("pending", "sending")), col(OutboxItem.lane) == NIGHTLY
                )
            ).all()
        return not waiting

    wait_for(applied, what=f"{classifications} classifications applied")
    wait_for(drained, timeout=60, what="the lane to drain")


def test_a_storm_longer_than_a_minute_still_reaches_the_thread_once_a_minute(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    storm = [*LABELS] * 17  # one a second for 68 s: none stands for the window
    for key in storm:
        core.run(rig.engine, 1, Actor(CAROL, "button"), Classify(key))
        step(rig, outbox, 1.0, tick=1.0)
    step(rig, outbox, 10, tick=0.5)

    posts = classified_posts(thread(rig))
    assert len(posts) == 2  # held back at most MAX_HOLD (60 s), then the rest
    assert posts[0].startswith("🏷️ <@U0CAROL> classified this as *Infra/CI*, then *Harness/diagnostics*")
    assert posts[1].startswith("🔁 Reclassified from ")
    assert posts[1].endswith(f"then *{LABELS[storm[-1]]}*.")


def test_a_classification_whose_post_went_out_keeps_its_checklist(rig: Rig) -> None:
    ingest(rig, result("BID-001", "TENANT-001"))
    outbox = worker(rig)
    step(rig, outbox, 2)
    core = IncidentCore(rig.playbooks, rig.clock, coalesce=WINDOW)
    core.run(rig.engine, 1, Actor(CAROL, "button"), Classify("infra"))
    rig.clock.advance(WINDOW)
    posts_only = rig.worker("w2")  # delivers posts, not checklists: the checklist is still waiting
    asyncio.run(posts_only.step())
    assert classified_posts(thread(rig)) == ["🏷️ <@U0CAROL> classified this as *Infra/CI*."]
    assert checklists(thread(rig)) == {}

    core.run(rig.engine, 1, Actor(CAROL, "button"), Classify("algorithm"))
    step(rig, outbox, 10, tick=0.25)

    posts = thread(rig)
    assert classified_posts(posts) == [
        "🏷️ <@U0CAROL> classified this as *Infra/CI*.",
        "🔁 <@U0CAROL> reclassified this from *Infra/CI* to *Algorithm regression*.",
    ]
    drawn = list(checklists(posts).values())  # the post promised the Infra/CI checklist: it follows
    assert ["Infra/CI" in m.text for m in drawn] == [True, False]
    assert [has_buttons(m) for m in drawn] == [False, True]  # struck out once the next one is live
