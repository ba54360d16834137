"""Cards, buttons and permissions end to end: emulator ⇄ bot over real HTTP."""

from __future__ import annotations

import json

import httpx
from sqlmodel import Session, select

from slackbot.db.models import Incident, TimelineEvent
from tests.factories import report, result
from tests.slack.conftest import HIDE_DETAILS, NIGHTLY, OUTSIDER, RESPONDER, SHOW_DETAILS, Bot, wait_for


def test_a_failure_posts_one_card_and_a_recurrence_is_a_thread_reply(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001", message="notification for org-b visible to org-a")))
    card = bot.card("INC-1")
    text = bot.card_text("INC-1")
    assert "<!date^" in text  # when the bot escalates unless someone classifies, as a Slack date
    assert "gh run download" not in text  # the first screen is what failed, not how to dig
    actions = [e["action_id"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]]
    assert actions == [
        "incident_ack",
        "incident_classify",
        "incident_severity",
        "incident_status",
        "incident_escalate",
        "incident_file_bead",
        "incident_runbook",
    ]
    # one click away, the card explains itself: meanings from the taxonomy, commands to run
    text = bot.details_text("INC-1")
    assert "Bidding lifecycle" in text
    assert "Tenant isolation" in text
    assert "gh run download 9187 --dir logs/nightly/2026-11-22/ci-artifacts" in text
    assert 'vitest -c vitest.integration.config.ts tests/integration --run -t \\"BID-001\\"' in text
    assert "rerun" not in text.lower() or "never rerun" in text.lower()

    bot.send(report(result("BID-001", "TENANT-001"), run_id="9188"))
    (reply,) = bot.wait_thread("INC-1", 1)
    assert "Seen again" in reply.text and "9188" in reply.text
    updated = bot.wait_edits("INC-1", 2)  # the details, then the recurrence
    redrawn = json.dumps(updated.blocks, ensure_ascii=False)
    assert "seen 2× since" in redrawn and "2 (first" in redrawn  # still open: the details keep up
    assert len(bot.cards()) == 1


def test_classify_redraws_the_card_and_posts_the_checklist_with_the_owner_mentioned(bot: Bot) -> None:
    bot.send(report(result("BID-002", "ASSIGN-001")))
    card = bot.card("INC-1")
    response = bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "algorithm_regression")
    assert response.status == 200
    post, checklist = bot.wait_thread("INC-1", 2)
    assert "<!subteam^S0DOMAIN>" in post.text  # the owner group, by id
    # the first-response steps follow as the interactive checklist (tests/status covers it)
    assert "First response" in json.dumps(checklist.blocks) and "git bisect" in json.dumps(checklist.blocks)
    redrawn = bot.wait_edits("INC-1", 1)
    assert "Algorithm regression" in json.dumps(redrawn.blocks)

    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "data_schema_drift")
    second = bot.wait_thread("INC-1", 3)[2]
    assert "reclassified" in second.text and "Algorithm regression" in second.text
    with Session(bot.core.engine) as session:
        kinds = [e.kind for e in session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == 1))]
    assert kinds.count("classified") == 1 and kinds.count("reclassified") == 1


def test_acknowledge_assigns_the_clicker(bot: Bot) -> None:
    bot.send(report(result("NOS-001", "STATE-002")))
    card = bot.card("INC-1")
    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, "incident_ack")
    redrawn = bot.wait_edits("INC-1", 1)
    assert f"<@{RESPONDER}>" in json.dumps(redrawn.blocks)
    # once acknowledged, the card no longer offers Acknowledge
    actions = [e["action_id"] for b in redrawn.blocks if b["type"] == "actions" for e in b["elements"]]
    assert "incident_ack" not in actions


def test_details_open_and_close_through_the_bot_and_stay_open_across_changes(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001", message="winner from org-b")))
    card = bot.card("INC-1")
    assert "Bidding lifecycle" not in bot.card_text("INC-1")
    bot.emulator.click_button(OUTSIDER, NIGHTLY, card.ts, SHOW_DETAILS)  # details change the card for all
    assert "Only responders" in wait_for(lambda: bot.emulator.ephemerals(OUTSIDER), what="the refusal")[-1]["text"]

    assert bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, SHOW_DETAILS).status == 200
    shown = bot.wait_edits("INC-1", 1)
    text = json.dumps(shown.blocks)
    assert "Bidding lifecycle" in text and "Reproduce locally" in text and HIDE_DETAILS in text
    # A change redraws the card as it is: still open, so the reader keeps their place.
    bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "algorithm_regression")
    classified = bot.wait_edits("INC-1", 2)
    assert "Algorithm regression" in json.dumps(classified.blocks) and "Reproduce locally" in json.dumps(
        classified.blocks
    )

    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, HIDE_DETAILS)
    hidden = json.dumps(bot.wait_edits("INC-1", 3).blocks)
    assert "Reproduce locally" not in hidden and SHOW_DETAILS in hidden and "Algorithm regression" in hidden
    # Looking is not an event: the timeline and the thread hold only the classification.
    with Session(bot.core.engine) as session:
        kinds = {e.kind for e in session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == 1))}
    assert "classified" in kinds and not any("detail" in k for k in kinds)
    assert not any("details" in m.text for m in bot.thread("INC-1"))


def test_someone_outside_the_responder_groups_is_refused_and_nothing_changes(bot: Bot) -> None:
    bot.send(report(result("HLT-001", "NOTIF-001")))
    card = bot.card("INC-1")
    bot.emulator.select_option(OUTSIDER, NIGHTLY, card.ts, "incident_classify", "flake_concurrency")
    refusal = wait_for(lambda: bot.emulator.ephemerals(OUTSIDER), what="the refusal")
    assert "Only responders" in refusal[-1]["text"]
    with Session(bot.core.engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None and incident.failure_class is None
    assert bot.card("INC-1").edited == 0


def test_untrusted_text_is_escaped_so_a_test_name_pings_nobody(bot: Bot) -> None:
    bot.send(
        report(
            result(
                None,
                None,
                message="<!channel> boom & <@U0ADMIN> <https://evil.example|click>",
                test_name="<!channel> boom",
                test_file="tests/integration/x.test.ts",
            )
        )
    )
    card = bot.card("INC-1")
    text = json.dumps(card.blocks) + card.text + bot.details_text("INC-1")
    assert "<!channel>" not in text and "<@U0ADMIN>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt; boom" in text


def test_two_hundred_evidence_items_fit_slacks_block_limits(bot: Bot) -> None:
    evidence = [{"kind": "db_snapshot", "path": f"evidence/BID-003/snapshot-{n:03d}.json"} for n in range(200)]
    bot.send(report(result("BID-003", "IDEMP-001", evidence=evidence)))
    bot.details_text("INC-1")
    card = bot.card("INC-1")
    assert len(card.blocks) <= 50
    for block in card.blocks:
        if block.get("text"):
            assert len(block["text"]["text"]) <= 3000
    assert "more (truncated" in json.dumps(card.blocks)


def test_a_429_storm_loses_nothing_and_posts_nothing_twice(bot: Bot) -> None:
    bot.emulator.fail_next("chat.postMessage", status=429, count=6, retry_after=1)
    bot.send(
        report(*(result(f"API-00{n}", "TENANT-002", test_file="tests/integration/api.test.ts") for n in range(1, 5)))
    )
    wait_for(lambda: len(bot.cards()) == 4, timeout=30, what="four cards")
    titles = sorted(m.blocks[0]["text"]["text"].split(" ·")[0] for m in bot.cards())
    assert titles == ["🔴 INC-1", "🔴 INC-2", "🔴 INC-3", "🔴 INC-4"]
    rate_limited = [c for c in bot.emulator.calls("chat.postMessage") if c.status == 429]
    assert len(rate_limited) == 6


def test_requests_with_a_bad_signature_are_rejected(bot: Bot) -> None:
    response = httpx.post(
        bot.url + "/slack/events",
        content=b"command=%2Ftriage&text=list&user_id=U0CAROL",
        headers={
            "x-slack-signature": "v0=deadbeef",
            "x-slack-request-timestamp": "1700000000",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 401


def test_event_retries_are_handled_once(bot: Bot) -> None:
    event = {"type": "app_home_opened", "user": RESPONDER, "channel": "D0HOME", "tab": "home"}
    first = bot.emulator.send_event(event, event_id="Ev0DEDUP1")
    assert first.status == 200
    wait_for(lambda: bot.emulator.calls("views.publish"), what="the home tab")
    retry = bot.emulator.send_event(event, event_id="Ev0DEDUP1", retry_num=1)
    assert retry.status == 200
    bot.emulator.send_event(event, event_id="Ev0OTHER2")
    wait_for(lambda: len(bot.emulator.calls("views.publish")) == 2, what="the second publish")
    assert len(bot.emulator.calls("views.publish")) == 2


def test_app_home_lists_mine_overdue_and_counts(bot: Bot) -> None:
    bot.send(report(result("SCH-001", "STATE-001", test_file="tests/integration/scheduling.test.ts")))
    bot.triage("ack INC-1")
    bot.emulator.open_home(RESPONDER)
    call = wait_for(lambda: bot.emulator.calls("views.publish"), what="the home tab")[-1]
    view = json.dumps(call.body)
    assert "Assigned to you (1)" in view and "INC-1" in view
