"""Status milestones (seed 003) from the card's Status… select, its resolve modal and
``/triage status``: each is a thread post, a card redraw and a timeline row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import OutboxItem
from slackbot.domain.changes import Actor, Classify, IncidentError, SetMilestone
from slackbot.incidents.core import IncidentCore
from slackbot.reads.cardview import load_card_view
from slackbot.slack.card import ACTION_STATUS, render_card
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, wait_for
from tests.status.support import incident, ingest_one, outbox, thread_templates, timeline

CAROL = Actor(RESPONDER, "command")


def status_options(blocks: list[dict[str, Any]]) -> list[str]:
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == ACTION_STATUS:
                return [o["value"] for o in element["options"]]
    return []


def test_each_milestone_is_a_thread_post_a_card_redraw_and_a_timeline_row(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock)
    service = IncidentCore(playbooks, clock)
    with pytest.raises(IncidentError, match="classify INC-1 before marking triage complete"):
        service.run(engine, iid, CAROL, SetMilestone("triage_complete"))
    service.run(engine, iid, CAROL, Classify("algorithm"))
    redraws = []
    for milestone in ("triage_complete", "mitigation-active", "fix merged", "validation_complete"):
        with session_scope(engine) as session:  # the card as it was is on Slack
            session.execute(update(OutboxItem).where(col(OutboxItem.kind) == "card").values(state="done"))
        service.run(engine, iid, CAROL, SetMilestone(milestone, "see PR 42"))
        redraws += [o.dedup_key for o in outbox(engine, "card", iid) if o.state == "pending"]
    assert incident(engine, iid).milestone == "validation_complete"
    assert [e.data["milestone"] for e in timeline(engine, iid, "milestone")] == [
        "triage_complete",
        "mitigation_active",
        "fix_merged",
        "validation_complete",
    ]
    assert all(e.actor == RESPONDER and e.source == "command" for e in timeline(engine, iid, "milestone"))
    assert thread_templates(engine, iid).count("milestone") == 4
    assert len(set(redraws)) == 4  # each milestone queued a redraw of the card

    # the card's select only offers what comes next
    view = load_card_view(engine, playbooks, iid)
    assert view is not None
    _, blocks = render_card(view)
    assert status_options(blocks) == ["resolved"]


def test_resolving_needs_the_root_cause_and_a_flake_needs_its_bead(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    iid = ingest_one(engine, playbooks, clock, "ADV-002")
    service = IncidentCore(playbooks, clock)
    service.run(engine, iid, CAROL, Classify("flake"))
    with pytest.raises(IncidentError, match="needs the root cause"):
        service.run(engine, iid, CAROL, SetMilestone("resolved", "  "))
    with pytest.raises(IncidentError, match="is Flake/concurrency and has no bead yet"):
        service.run(engine, iid, CAROL, SetMilestone("resolved", "fixed the race"))
    assert incident(engine, iid).status == "open"
    assert timeline(engine, iid, "resolved") == []  # a refused change leaves nothing behind


# -- end to end -------------------------------------------------------------------------------------


def test_milestones_from_the_card_select_and_from_the_command(bot: Bot) -> None:
    bot.send(report(result("BID-002", "ASSIGN-001")))
    card = bot.card("INC-1")
    assert status_options(card.blocks) == [
        "triage_complete",
        "mitigation_active",
        "fix_merged",
        "validation_complete",
        "resolved",
    ]
    bot.triage("classify INC-1 algorithm")
    edits = bot.wait_edits("INC-1", 1).edited

    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, ACTION_STATUS, "triage_complete")
    post = wait_for(lambda: [m for m in bot.thread("INC-1") if "Triage complete" in m.text], what="the post")
    assert f"<@{RESPONDER}>" in post[0].text
    redrawn = bot.wait_edits("INC-1", edits + 1)
    assert "*Status:* Triage complete" in json.dumps(redrawn.blocks)
    assert status_options(redrawn.blocks)[0] == "mitigation_active"  # forward only
    (row,) = timeline(bot.core.engine, 1, "milestone")
    assert row.actor == RESPONDER and row.source == "button" and row.data["milestone"] == "triage_complete"

    answer = bot.triage("status INC-1 mitigation_active reverting <!channel> PR 42")
    assert "INC-1: Mitigation active" in answer
    post = wait_for(lambda: [m for m in bot.thread("INC-1") if "Mitigation active" in m.text], what="the post")
    assert "reverting &lt;!channel&gt; PR 42" in post[0].text  # the note is escaped: no channel ping
    wait_for(lambda: "Mitigation active" in bot.card_text("INC-1"), what="the card to show it")
    assert [e.source for e in timeline(bot.core.engine, 1, "milestone")] == ["button", "command"]

    # Someone outside the responder groups cannot move the status.
    bot.emulator.select_option(OUTSIDER, NIGHTLY, card.ts, ACTION_STATUS, "fix_merged")
    refusal = wait_for(lambda: bot.emulator.ephemerals(OUTSIDER), what="the refusal")
    assert "Only responders" in refusal[-1]["text"]
    assert len(timeline(bot.core.engine, 1, "milestone")) == 2


def test_resolving_from_the_card_asks_for_the_root_cause_in_a_modal(bot: Bot) -> None:
    bot.send(report(result("NOS-001", "STATE-002")))
    card = bot.card("INC-1")
    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, ACTION_STATUS, "resolved")
    (modal,) = wait_for(lambda: bot.emulator.open_modals(RESPONDER), what="the resolve modal")
    assert "Root cause" in json.dumps(modal.to_api(team_id="T0TRIAGE"))

    blank = {"root_cause": {"value": {"type": "plain_text_input", "value": "   "}}}
    response = bot.emulator.submit_view(RESPONDER, modal.id, blank)
    assert response.json is not None and response.json["response_action"] == "errors"
    assert "root_cause" in response.json["errors"]
    assert bot.emulator.open_modals(RESPONDER)  # still open, showing the error
    assert incident(bot.core.engine, 1).status == "open"

    cause = {"root_cause": {"value": {"type": "plain_text_input", "value": "stale cache after the schema push"}}}
    response = bot.emulator.submit_view(RESPONDER, modal.id, cause)
    assert response.status == 200 and not (response.json or {}).get("response_action")
    assert bot.emulator.open_modals(RESPONDER) == []
    post = wait_for(lambda: [m for m in bot.thread("INC-1") if "Resolved" in m.text], what="the resolved post")
    assert "stale cache after the schema push" in post[0].text
    resolved = wait_for(
        lambda: (m := bot.card("INC-1")).blocks[0]["text"]["text"].startswith("✅ INC-1") and m, what="the redraw"
    )
    assert not [b for b in resolved.blocks if b["type"] == "actions"]  # a resolved card offers no buttons
    (row,) = timeline(bot.core.engine, 1, "resolved")
    assert row.source == "button" and row.data["note"] == "stale cache after the schema push"


def test_a_flake_cannot_be_resolved_from_the_modal_without_its_bead(bot: Bot) -> None:
    faults = Path(str(bot.core.settings.beads_dir)) / "fake-bd-faults.json"
    faults.write_text(json.dumps({"unavailable": True}))  # bd is down: the flake's bead cannot be filed
    bot.send(report(result("ADV-002", "IDEMP-003")))
    card = bot.card("INC-1")
    bot.triage("classify INC-1 flake")
    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, ACTION_STATUS, "resolved")
    (modal,) = wait_for(lambda: bot.emulator.open_modals(RESPONDER), what="the resolve modal")
    cause = {"root_cause": {"value": {"type": "plain_text_input", "value": "the retry raced the dedupe write"}}}
    response = bot.emulator.submit_view(RESPONDER, modal.id, cause)
    assert response.json is not None and response.json["response_action"] == "errors"
    assert "no bead yet" in response.json["errors"]["root_cause"]
    found = incident(bot.core.engine, 1)
    assert found.status == "open" and found.bead_id is None
    assert timeline(bot.core.engine, 1, "resolved") == []
