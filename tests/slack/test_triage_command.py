"""Every /triage subcommand end to end, as a responder types it."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session, select

from slackbot.db.models import Incident, TimelineEvent
from tests.factories import report, result
from tests.slack.conftest import OUTSIDER, Bot, wait_for


def incident(bot: Bot, incident_id: int = 1) -> Incident:
    with Session(bot.core.engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def test_help_and_unknown_input_answer_with_usage(bot: Bot) -> None:
    assert "Usage" in bot.triage("help")
    assert "Usage" in bot.triage("")
    answer = bot.triage("frobnicate INC-1")
    assert "Unknown subcommand `frobnicate`" in answer and "Usage" in answer
    assert "usage: `/triage show ID`" in bot.triage("show")
    assert "not an incident id" in bot.triage("show banana")
    assert "no incident INC-99" in bot.triage("show INC-99")


def test_list_open_mine_overdue(bot: Bot) -> None:
    bot.send(
        report(
            result("BID-001", "TENANT-001"),
            result("SCH-002", "STATE-001", test_file="tests/integration/s.test.ts"),
        )
    )
    listed = bot.triage("list")
    assert "Open incidents (2)" in listed and "INC-1" in listed and "INC-2" in listed
    assert "none" in bot.triage("list mine")
    bot.triage("ack INC-2")
    mine = bot.triage("list mine")
    assert "INC-2" in mine and "INC-1" not in mine
    assert "none" in bot.triage("list overdue")
    bot.clock.shift(minutes=21)  # past the 20-minute classification deadline
    overdue = bot.triage("list overdue")
    assert "Overdue for classification (2)" in overdue
    assert "usage" in bot.triage("list everything")


def test_show_includes_pending_actions(bot: Bot) -> None:
    bot.send(report(result("NOS-003", "ASSIGN-002")))
    shown = bot.triage("show INC-1")
    assert "NOS-003" in shown and "Pending: escalates to @triage-leads" in shown


def test_changes_answer_in_channel_and_are_audited(bot: Bot) -> None:
    faults = Path(str(bot.core.settings.beads_dir)) / "fake-bd-faults.json"
    faults.write_text(json.dumps({"unavailable": True}))  # bd is down: the flake's bead cannot be filed
    bot.send(report(result("HLT-002", "NOTIF-002")))
    bot.card("INC-1")
    assert "classified" in bot.triage("classify INC-1 flake")
    assert incident(bot).failure_class == "flake_concurrency"
    assert "SEV-2" in bot.triage("severity INC-1 sev2")
    assert "assigned to <@U0BOB>" in bot.triage("assign INC-1 <@U0BOB|bob>")
    assert incident(bot).assignee == "U0BOB"
    assert "escalated" in bot.triage("escalate INC-1 nobody is looking")
    assert "Mitigation active" in bot.triage("status INC-1 mitigation_active pinned the fixture")
    # a flake cannot be resolved without its bead (flake policy)
    refused = bot.triage("resolve INC-1 fixed the race")
    assert "Flake/concurrency" in refused and "no bead" in refused  # the class by its label
    assert "root cause" in bot.triage("resolve INC-1")
    with Session(bot.core.engine) as session:
        kinds = {e.kind for e in session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == 1))}
    assert {"classified", "severity", "assigned", "escalated", "milestone", "paged"} <= kinds


def test_resolve_closes_the_incident_and_the_card(bot: Bot) -> None:
    bot.send(report(result("API-001", "TENANT-003", test_file="tests/integration/api.test.ts")))
    bot.card("INC-1")
    bot.triage("classify INC-1 algorithm")
    assert "resolved" in bot.triage("resolve INC-1 off-by-one in the org filter")
    assert incident(bot).status == "resolved"
    card = wait_for(
        lambda: (c := bot.card("INC-1")) and "✅" in c.blocks[0]["text"]["text"] and c, what="resolved card"
    )
    assert not [b for b in card.blocks if b["type"] == "actions"]
    assert "resolved; a new failure opens a new incident" in bot.triage("ack INC-1")


def test_timeline_runbook_owners_and_bead(bot: Bot) -> None:
    bot.send(report(result("UI-001", "STATE-003", test_file="tests/integration/ui.test.ts")))
    bot.card("INC-1")
    bot.triage("ack INC-1")
    timeline = bot.triage("timeline INC-1")
    assert "Timeline of INC-1" in timeline and "Acknowledged by U0CAROL" in timeline
    assert "Tenant isolation" in bot.triage("runbook TENANT")
    flake = bot.triage("runbook flake")
    assert "First response" in flake and "rerun" in flake.lower()
    owners = bot.triage("owners")
    assert "@ci-maintainers" in owners and "<!subteam^" not in owners  # asking who owns does not ping them
    assert "filing a bead" in bot.triage("bead INC-1")
    assert incident(bot).bead_state in ("pending", "filed")
    wait_for(lambda: incident(bot).bead_id, what="the bead to be filed")


def test_outsiders_may_read_but_not_change(bot: Bot) -> None:
    bot.send(report(result("ADV-001", "IDEMP-001")))
    assert "INC-1" in bot.triage("list", user=OUTSIDER)
    assert "Only responders" in bot.triage("classify INC-1 flake", user=OUTSIDER)
    assert incident(bot).failure_class is None


def test_sev1_pages_the_release_maintainer_at_once(bot: Bot) -> None:
    bot.send(report(result("BID-009", "TENANT-009")))
    bot.card("INC-1")
    bot.triage("severity INC-1 SEV-1")
    # the release maintainer's DM channel is D + user id in the emulator
    dm = wait_for(
        lambda: [c for c in bot.emulator.calls("chat.postMessage") if c.body.get("channel") == "DU0FRANK"],
        what="the release maintainer's DM",
    )
    assert "INC-1" in dm[0].body["text"]
    triggers = wait_for(bot.pagerduty.triggers, what="a PagerDuty trigger")
    assert triggers[0]["dedup_key"] == "INC-1" and triggers[0]["payload"]["severity"] == "critical"


def test_the_20_minute_rule_escalates_an_unclassified_incident_and_classifying_stops_it(bot: Bot) -> None:
    bot.send(report(result("BID-011", "TENANT-011")))
    bot.card("INC-1")
    bot.clock.shift(minutes=20, seconds=1)
    page = wait_for(lambda: [m for m in bot.thread("INC-1") if "escalation level 1" in m.text], what="the escalation")
    assert "<!subteam^S0LEADS>" in page[0].text
    assert incident(bot).escalation_level == 1
    redrawn = bot.wait_edits("INC-1", 1)
    assert "*Escalated:* level 1" in str(redrawn.blocks)
    bot.triage("classify INC-1 infra")
    bot.clock.shift(minutes=30)  # well past the next level: nothing more fires
    wait_for(lambda: any("classified this as" in m.text for m in bot.thread("INC-1")), what="classification post")
    import time

    time.sleep(1.0)
    assert not [m for m in bot.thread("INC-1") if "escalation level 2" in m.text]
    assert incident(bot).escalation_level == 1
