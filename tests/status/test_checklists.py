"""Runbook checklists with an audit trail (seed 004): posted on classification, Done / Failed /
Skip per step, each click a ``runbook_executions`` row, a failed step escalates."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem, RunbookExecution
from slackbot.domain.changes import Actor, Classify, IncidentError, RecordStep, Resolve
from slackbot.domain.checklists import RESPONSE, StepRef, steps_for
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.incidents.checklists import failed_step_roles
from slackbot.incidents.core import IncidentCore
from slackbot.outbox import store
from slackbot.outbox.checklist_deliveries import ChecklistDeliveries
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.worker import OutboxWorker, RetryLater
from slackbot.slack.checklist import ChecklistView, render_checklist
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, wait_for
from tests.status.support import (
    card_posted,
    executions,
    incident,
    ingest_one,
    outbox,
    reminder_timer,
    timeline,
)

CAROL = Actor(RESPONDER, "button")
LEADS_ONCALL = "U0GRACE"  # @triage-leads, the first escalation level's target for every class


def classify(engine: Engine, playbooks: Playbooks, clock: FakeClock, iid: int, failure_class: str) -> str:
    """Classify and return the key of the checklist that was queued for it."""
    IncidentCore(playbooks, clock).run(engine, iid, Actor(RESPONDER, "command"), Classify(failure_class))
    return outbox(engine, "checklist", iid)[-1].dedup_key


def ref(
    iid: int, key: str, failure_class: str, runbook_name: str, index: int, result: str, version: int = 1
) -> StepRef:
    return StepRef(iid, key, failure_class, runbook_name, index, version, result)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


# -- posting ----------------------------------------------------------------------------------------


def test_classifying_queues_the_checklist_after_the_classified_post(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock)
    first = classify(engine, playbooks, clock, iid, "algorithm")
    (checklist,) = outbox(engine, "checklist", iid)
    assert checklist.payload == {"class": "algorithm_regression"} and checklist.lane == NIGHTLY
    (classified,) = [o for o in outbox(engine, "thread_post", iid) if o.payload["template"] == "classified"]
    assert classified.id is not None and checklist.id is not None and classified.id < checklist.id  # posted in order
    with session_scope(engine) as session:  # they went out (one replaced unseen is folded: tests/outbox)
        for row in session.exec(select(OutboxItem).where(OutboxItem.incident_id == iid)):
            row.state = "done"

    second = classify(engine, playbooks, clock, iid, "schema")
    assert second != first
    assert [o.payload for o in outbox(engine, "checklist", iid)] == [
        {"class": "algorithm_regression"},
        {"class": "data_schema_drift"},
    ]
    (superseding,) = outbox(engine, "checklist_update", iid)
    assert superseding.payload == {"superseded_by": second}  # the older checklist loses its buttons


def test_a_contract_violation_gets_the_harness_checklist_at_ingest(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    outcome = IngestService(playbooks, clock).ingest_report(
        engine, parsed(result(None, None, test_file="tests/integration/harness/reset.test.ts", test_name="reset db"))
    )
    (item,) = outcome.incidents
    (checklist,) = outbox(engine, "checklist", item.id)
    assert checklist.payload == {"class": "harness_diagnostics"}


# -- clicks -----------------------------------------------------------------------------------------


def test_each_click_is_a_runbook_execution_with_who_what_when_and_version(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock)
    key = classify(engine, playbooks, clock, iid, "algorithm")
    card_posted(engine, playbooks, clock, iid)
    core = IncidentCore(playbooks, clock)
    clock.advance(timedelta(minutes=30))

    core.run(engine, iid, CAROL, RecordStep(ref(iid, key, "algorithm_regression", "algorithm_regression", 1, "done")))
    core.run(
        engine, iid, Actor("U0DAN", "button"), RecordStep(ref(iid, key, "algorithm_regression", RESPONSE, 3, "skipped"))
    )
    done, skipped = executions(engine, iid)
    route = runbook.classes["algorithm_regression"]
    assert (done.actor, done.runbook, done.step_index, done.result) == (RESPONDER, "algorithm_regression", 1, "done")
    assert done.step_text == route.first_response[0] and done.runbook_version == runbook.routing.version
    assert done.at == clock.now()
    assert (skipped.actor, skipped.runbook, skipped.step_index, skipped.result) == ("U0DAN", RESPONSE, 3, "skipped")
    assert skipped.step_text == runbook.policy.response_steps[2].text
    assert skipped.runbook_version == runbook.policy.version

    audit = timeline(engine, iid, "runbook_step")
    assert [(e.actor, e.source, e.data["step"], e.data["result"]) for e in audit] == [
        (RESPONDER, "button", 1, "done"),
        ("U0DAN", "button", 3, "skipped"),
    ]
    # each click redraws the checklist, and counts as activity in the thread
    assert len(outbox(engine, "checklist_update", iid)) == 2
    timer = reminder_timer(engine, iid)
    assert timer is not None and timer.due_at == clock.now() + runbook.policy.status_update_every

    # the same person pressing the same button again records nothing new
    again = core.run(
        engine, iid, CAROL, RecordStep(ref(iid, key, "algorithm_regression", "algorithm_regression", 1, "done"))
    )
    assert not again.changed and len(executions(engine, iid)) == 2
    # a change of mind is a new row: the checklist shows the latest, the audit keeps both
    core.run(engine, iid, CAROL, RecordStep(ref(iid, key, "algorithm_regression", RESPONSE, 3, "done")))
    assert [e.result for e in executions(engine, iid)] == ["done", "skipped", "done"]


def test_a_failed_step_escalates_with_a_page(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock)
    key = classify(engine, playbooks, clock, iid, "algorithm")
    failed_step = ref(iid, key, "algorithm_regression", RESPONSE, 6, "failed")
    IncidentCore(playbooks, clock).run(engine, iid, CAROL, RecordStep(failed_step))

    (failed,) = executions(engine, iid)
    assert failed.result == "failed" and failed.step_index == 6
    assert incident(engine, iid).escalation_level == 1
    (dm,) = outbox(engine, "dm", iid)
    assert dm.payload["user"] == LEADS_ONCALL and dm.payload["reason"] == "runbook_step_failed"
    (paged,) = [o for o in outbox(engine, "thread_post", iid) if o.payload["template"] == "paged"]
    assert paged.payload["reason"] == "runbook_step_failed" and paged.payload["actor"] == RESPONDER
    assert runbook.policy.response_steps[5].text in paged.payload["note"]
    assert [e.data["reason"] for e in timeline(engine, iid, "paged")] == ["runbook_step_failed"]


def test_refused_clicks_leave_nothing_behind(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    iid = ingest_one(engine, playbooks, clock)
    old = classify(engine, playbooks, clock, iid, "algorithm")
    classify(engine, playbooks, clock, iid, "schema")
    core = IncidentCore(playbooks, clock)
    with pytest.raises(IncidentError, match="reclassified since this checklist was posted"):
        core.run(engine, iid, CAROL, RecordStep(ref(iid, old, "algorithm_regression", RESPONSE, 1, "done")))
    new = outbox(engine, "checklist", iid)[-1].dedup_key
    with pytest.raises(IncidentError, match="runbook changed"):
        core.run(engine, iid, CAROL, RecordStep(ref(iid, new, "data_schema_drift", RESPONSE, 1, "done", version=99)))
    with pytest.raises(IncidentError, match="runbook changed"):
        core.run(engine, iid, CAROL, RecordStep(ref(iid, new, "data_schema_drift", RESPONSE, 99, "done")))
    with pytest.raises(IncidentError, match="unknown step result"):
        core.run(engine, iid, CAROL, RecordStep(ref(iid, new, "data_schema_drift", RESPONSE, 1, "maybe")))

    IncidentCore(playbooks, clock).run(engine, iid, CAROL, Resolve("schema push order fixed"))
    with pytest.raises(IncidentError, match="resolved, so a failed step cannot escalate"):
        core.run(engine, iid, CAROL, RecordStep(ref(iid, new, "data_schema_drift", RESPONSE, 10, "failed")))
    assert executions(engine, iid) == [] and timeline(engine, iid, "runbook_step") == []
    assert outbox(engine, "dm", iid) == []
    # documenting after the resolve is still recorded
    core.run(engine, iid, CAROL, RecordStep(ref(iid, new, "data_schema_drift", RESPONSE, 10, "done")))
    assert [e.step_index for e in executions(engine, iid)] == [10]


# -- rendering --------------------------------------------------------------------------------------


def _incident(failure_class: str) -> Incident:
    now = FakeClock().now()
    return Incident(
        id=7,
        fingerprint="fp",
        repository="acme/dispatch",
        test_identity="tests/integration/ci.test.ts::CI check",
        suite="nightly",
        channel=NIGHTLY,
        failure_class=failure_class,
        first_seen=now,
        last_seen=now,
        classify_deadline=now,
        created_at=now,
        updated_at=now,
    )


def test_the_checklist_fits_block_kit_and_shows_who_did_each_step(runbook: Playbook) -> None:
    steps = steps_for(runbook, "infra_ci")
    first = steps[0]
    done = RunbookExecution(
        incident_id=7,
        runbook=first.runbook,
        runbook_version=first.version,
        step_index=first.index,
        step_text=first.text,
        result="done",
        actor=RESPONDER,
        at=FakeClock().now(),
    )
    view = ChecklistView(runbook, _incident("infra_ci"), "checklist:7:1", "infra_ci", {first.key: done})
    ((text, blocks),) = render_checklist(view, failed_step_roles(runbook))
    assert "INC-7" in text and len(blocks) <= 50
    assert f"✅ Done by <@{RESPONDER}>" in blocks[1]["text"]["text"]
    assert "(1/" in blocks[0]["text"]["text"]
    elements = buttons(blocks)
    assert len(elements) == 3 * len(steps)
    assert len({e["action_id"] for e in elements}) == len(elements)  # unique within the message
    assert [e["text"]["text"] for e in elements[:3]] == ["Done", "Failed", "Skip"]
    assert "confirm" in elements[1]  # Failed asks first: it pages
    assert StepRef.decode(elements[1]["value"]) == StepRef(7, "checklist:7:1", "infra_ci", "infra_ci", 1, 1, "failed")


def test_a_long_runbook_continues_in_a_second_message_and_a_superseded_one_loses_its_buttons(
    runbook: Playbook,
) -> None:
    route = runbook.classes["infra_ci"]
    long_route = route.model_copy(update={"first_response": [f"step <{n}> & more" for n in range(1, 31)]})
    classes = {**runbook.routing.classes, "infra_ci": long_route}
    long_runbook = dataclasses.replace(runbook, routing=runbook.routing.model_copy(update={"classes": classes}))
    roles = failed_step_roles(long_runbook)
    view = ChecklistView(long_runbook, _incident("infra_ci"), "checklist:7:1", "infra_ci", {})
    parts = render_checklist(view, roles)
    assert len(parts) == 2 and all(len(blocks) <= 50 for _, blocks in parts)
    assert sum(len(buttons(blocks)) for _, blocks in parts) == 3 * (30 + len(runbook.policy.response_steps))
    assert "step &lt;1&gt; &amp; more" in json.dumps(parts[0][1])  # escaped like any text

    superseded = render_checklist(
        ChecklistView(long_runbook, _incident("flake_concurrency"), "checklist:7:1", "infra_ci", {}), roles
    )
    assert len(superseded) == len(parts)  # every posted message is redrawn
    assert all(buttons(blocks) == [] for _, blocks in superseded)
    assert "superseded" in superseded[0][1][0]["text"]["text"]


# -- end to end -------------------------------------------------------------------------------------


def _checklist(bot: Bot) -> Any:
    found = wait_for(
        lambda: [m for m in bot.thread("INC-1") if "Runbook checklist" in m.text], what="the checklist message"
    )
    return found[-1]


def test_end_to_end_steps_are_recorded_redrawn_and_a_failure_pages(bot: Bot) -> None:
    bot.send(report(result("BID-002", "ASSIGN-001")))
    card = bot.card("INC-1")
    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "algorithm_regression")
    checklist = _checklist(bot)
    steps = steps_for(bot.core.playbooks.default, "algorithm_regression")
    assert len(buttons(checklist.blocks)) == 3 * len(steps)
    classified = next(m for m in bot.thread("INC-1") if "classified this as" in m.text)
    assert "git bisect" not in classified.text  # the steps are said once: in the checklist

    bot.emulator.click_button(RESPONDER, NIGHTLY, checklist.ts, "checklist_step:algorithm_regression:1:done")
    redrawn = wait_for(
        lambda: (m := _checklist(bot)).edited >= 1 and f"Done by <@{RESPONDER}>" in json.dumps(m.blocks) and m,
        what="the checklist to show the step done",
    )
    assert "(1/16" in redrawn.blocks[0]["text"]["text"]
    (row,) = executions(bot.core.engine, 1)
    assert (row.actor, row.runbook, row.step_index, row.result, row.runbook_version) == (
        RESPONDER,
        "algorithm_regression",
        1,
        "done",
        1,
    )

    # Someone outside the responder groups is refused and nothing is recorded.
    bot.emulator.click_button(OUTSIDER, NIGHTLY, checklist.ts, "checklist_step:response:2:skipped")
    refusal = wait_for(lambda: bot.emulator.ephemerals(OUTSIDER), what="the refusal")
    assert "Only responders" in refusal[-1]["text"]
    assert len(executions(bot.core.engine, 1)) == 1

    # A failed step escalates at once and says so in the thread.
    bot.emulator.click_button(RESPONDER, NIGHTLY, checklist.ts, "checklist_step:response:5:failed")
    post = wait_for(
        lambda: [m for m in bot.thread("INC-1") if "marked a runbook step *failed*" in m.text], what="the page post"
    )
    assert "<!subteam^S0LEADS>" in post[0].text and "Reproduce locally" in post[0].text
    dms = wait_for(lambda: bot.emulator.messages(bot.emulator.dm_channel_id(LEADS_ONCALL)), what="the DM")
    assert "INC-1" in dms[-1].text
    wait_for(lambda: "*Escalated:* level 1" in bot.card_text("INC-1"), what="the card to show the escalation")
    wait_for(lambda: "❌ Failed by" in json.dumps(_checklist(bot).blocks, ensure_ascii=False), what="the redraw")
    assert [e.result for e in executions(bot.core.engine, 1)] == ["done", "failed"]


# -- delivery: posted once, after the card, redrawn in place ------------------------------------------


def test_the_checklist_waits_for_the_card_is_posted_once_and_redrawn_in_place(
    playbooks: Playbooks, sqlite_engine: Engine
) -> None:
    clock = FakeClock()
    with SlackEmulator(clock=lambda: clock.now().timestamp()) as emulator:
        seed_workspace(emulator, playbooks)
        client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.base_url)

        def worker(name: str) -> OutboxWorker:
            built = OutboxWorker(sqlite_engine, clock, {}, worker_id=name)
            built.handlers.update(SlackDeliveries(sqlite_engine, client, playbooks, clock, name).handlers())
            built.handlers.update(ChecklistDeliveries(sqlite_engine, client, playbooks).handlers())
            return built

        def drain(outbox_worker: OutboxWorker) -> None:
            async def go() -> None:
                for _ in range(120):
                    if all(o.state in ("done", "dead") for o in everything()):
                        return
                    await outbox_worker.step()
                    clock.advance(1)

            asyncio.run(go())

        def everything() -> list[OutboxItem]:
            with Session(sqlite_engine) as session:
                return list(session.exec(select(OutboxItem)))

        iid = ingest_one(sqlite_engine, playbooks, clock)
        key = classify(sqlite_engine, playbooks, clock, iid, "infra")
        # A worker takes the checklist first: there is no card (no thread) yet, so it waits.
        (early,) = store.claim(sqlite_engine, now=clock.now(), worker="w0", kinds={"checklist"}, skip_lanes=set())
        with pytest.raises(RetryLater):
            asyncio.run(ChecklistDeliveries(sqlite_engine, client, playbooks).post(early))
        store_release(sqlite_engine, early)

        drain(worker("w1"))
        (card,) = emulator.messages(NIGHTLY)
        checklists = [m for m in emulator.replies(NIGHTLY, card.ts) if "Runbook checklist" in m.text]
        assert len(checklists) == 1

        # A worker that posted it and died before recording it: the one taking over finds it.
        IncidentCore(playbooks, clock).run(sqlite_engine, iid, CAROL, Classify("harness"))
        (claimed,) = store.claim(sqlite_engine, now=clock.now(), worker="w0", kinds={"checklist"}, skip_lanes=set())
        asyncio.run(ChecklistDeliveries(sqlite_engine, client, playbooks).post(claimed))  # ... and crashes
        clock.advance(store.LEASE + timedelta(seconds=1))
        drain(worker("w2"))
        checklists = [m for m in emulator.replies(NIGHTLY, card.ts) if "Runbook checklist" in m.text]
        assert len(checklists) == 2  # the first one, and the harness one exactly once
        old, new = checklists
        assert "superseded" in old.blocks[0]["text"]["text"] and buttons(old.blocks) == []

        newest = outbox(sqlite_engine, "checklist", iid)[-1].dedup_key
        assert newest != key
        skipped = ref(iid, newest, "harness_diagnostics", "harness_diagnostics", 2, "skipped")
        IncidentCore(playbooks, clock).run(sqlite_engine, iid, CAROL, RecordStep(skipped))
        drain(worker("w2"))
        redrawn = emulator.message(NIGHTLY, new.ts)
        assert redrawn is not None and redrawn.edited >= 1
        assert f"Skipped by <@{RESPONDER}>" in json.dumps(redrawn.blocks)


def store_release(engine: Engine, item: OutboxItem) -> None:
    """What the worker does with a RetryLater: the row is pending again, nothing counted."""
    with session_scope(engine) as session:
        store.settle(session, item.id or 0, "w0", state="pending", now=FakeClock().now(), error="card not posted")


def test_each_reclassification_redraws_only_the_checklist_it_supersedes_and_old_ones_stay_dead(
    playbooks: Playbooks, sqlite_engine: Engine
) -> None:
    clock = FakeClock()
    with SlackEmulator(clock=lambda: clock.now().timestamp()) as emulator:
        seed_workspace(emulator, playbooks)
        client = AsyncWebClient(token=emulator.bot_token, base_url=emulator.base_url)
        worker = OutboxWorker(sqlite_engine, clock, {}, worker_id="w1")
        worker.handlers.update(SlackDeliveries(sqlite_engine, client, playbooks, clock, "w1").handlers())
        worker.handlers.update(ChecklistDeliveries(sqlite_engine, client, playbooks).handlers())

        def drain() -> None:
            async def go() -> None:
                for _ in range(200):
                    with Session(sqlite_engine) as session:
                        rows = session.exec(select(OutboxItem).where(OutboxItem.state == "pending")).all()
                    if not rows:
                        return
                    await worker.step()
                    clock.advance(1)

            asyncio.run(go())

        def checklist_edits() -> list[str]:
            return [str(c.body.get("ts")) for c in emulator.calls("chat.update") if "Runbook checklist" in str(c.body)]

        iid = ingest_one(sqlite_engine, playbooks, clock)
        keys = []
        for failure_class in ("infra", "schema", "algorithm", "infra", "schema"):
            keys.append(classify(sqlite_engine, playbooks, clock, iid, failure_class))
            drain()
        (card,) = emulator.messages(NIGHTLY)
        posted = [m for m in emulator.replies(NIGHTLY, card.ts) if "Runbook checklist" in m.text]
        assert len(posted) == 5
        # four supersessions, one redraw each (not one per earlier checklist: 1 + 2 + 3 + 4)
        assert len(checklist_edits()) == 4
        assert sorted(checklist_edits()) == sorted(m.ts for m in posted[:4])
        # only the newest has buttons; the first infra one did not come back when infra did
        current = [m for m in emulator.replies(NIGHTLY, card.ts) if "Runbook checklist" in m.text]
        assert [bool(buttons(m.blocks)) for m in current] == [False, False, False, False, True]
        with pytest.raises(IncidentError, match="reclassified since"):
            first_infra = ref(iid, keys[0], "infra_ci", RESPONSE, 1, "done")
            IncidentCore(playbooks, clock).run(sqlite_engine, iid, CAROL, RecordStep(first_infra))
