"""Defect beads end to end: the card's button and modal, automatic filing, one bead per incident,
comments, closing, and a broken bd never blocking triage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from slackbot.db.models import Incident
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, RESPONDER, Bot, wait_for


def beads(bot: Bot) -> list[dict[str, Any]]:
    path = Path(str(bot.core.settings.beads_dir)) / "issues.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def incident(bot: Bot, incident_id: int = 1) -> Incident:
    with Session(bot.core.engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def faults(bot: Bot, **values: Any) -> None:
    (Path(str(bot.core.settings.beads_dir)) / "fake-bd-faults.json").write_text(json.dumps(values))


def test_the_file_bead_button_opens_a_prefilled_modal_and_files_one_bead(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001", message="notification for org-b visible to org-a")))
    card = bot.card("INC-1")
    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, "incident_file_bead")
    (modal,) = wait_for(lambda: bot.emulator.open_modals(RESPONDER), what="the bead modal")
    text = json.dumps(modal.to_api(team_id="T0TRIAGE"))
    assert "Integration failure: BID-001 / TENANT-001 (notification for org-b visible to org-a)" in text
    assert "TENANT-001 holds: Tenant isolation" in text  # expected, prefilled from the taxonomy
    response = bot.emulator.submit_view(
        RESPONDER,
        modal.id,
        {
            "expected": {"value": {"type": "plain_text_input", "value": "org-a sees only org-a notifications"}},
            "observed": {"value": {"type": "plain_text_input", "value": "org-a saw notification n-9 of org-b"}},
        },
    )
    assert response.status == 200
    (bead,) = wait_for(lambda: beads(bot), what="the bead")
    assert bead["title"] == "Integration failure: BID-001 / TENANT-001 (notification for org-b visible to org-a)"
    assert bead["issue_type"] == "bug" and bead["priority"] == 2  # SEV-3's bead priority
    assert set(bead["labels"]) >= {"integration-failure", "scenario:BID-001", "invariant:TENANT-001"}
    assert "Observed: org-a saw notification n-9 of org-b" in bead["description"]
    assert "gh run download 9187 --dir logs/nightly/2026-11-22/ci-artifacts" in bead["description"]
    assert bead["external_ref"] == "https://github.com/acme/dispatch/actions/runs/9187"
    post = wait_for(lambda: [m for m in bot.thread("INC-1") if "Defect bead" in m.text], what="the thread post")
    assert bead["id"] in post[0].text
    wait_for(lambda: bead["id"] in json.dumps(bot.card("INC-1").blocks), what="the card to link the bead")
    # the button is gone once the incident has its bead; /triage bead says so
    assert "already has bead" in bot.triage("bead INC-1")


def test_a_modal_without_expected_or_observed_is_refused_in_place(bot: Bot) -> None:
    bot.send(report(result("SCH-001", "STATE-001", test_file="tests/integration/s.test.ts")))
    card = bot.card("INC-1")
    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, "incident_file_bead")
    (modal,) = wait_for(lambda: bot.emulator.open_modals(RESPONDER), what="the bead modal")
    response = bot.emulator.submit_view(
        RESPONDER,
        modal.id,
        {
            "expected": {"value": {"type": "plain_text_input", "value": " "}},
            "observed": {"value": {"type": "plain_text_input", "value": "x"}},
        },
    )
    assert response.json is not None and response.json["response_action"] == "errors"
    assert "expected" in response.json["errors"]
    assert beads(bot) == [] and incident(bot).bead_state == "none"


def test_contract_violations_file_a_bead_by_themselves_and_recurrences_comment_on_it(bot: Bot) -> None:
    failure = result(None, None, test_file="tests/integration/harness/reset.test.ts", test_name="resets the db")
    bot.send(report(failure))
    (bead,) = wait_for(lambda: beads(bot), what="the automatic bead")
    assert bead["title"].startswith("Integration failure: no-scenarioId / no-invariantId")
    assert "harness contract violation" in bead["description"]
    wait_for(lambda: incident(bot).bead_id == bead["id"], what="the incident to record the bead")
    bot.send(report(failure, run_id="9300"))
    commented = wait_for(
        lambda: [b for b in beads(bot) if b.get("comment_count") or b.get("comments")], what="a comment"
    )
    assert commented[0]["id"] == bead["id"]
    assert len(beads(bot)) == 1  # one bead per incident


def test_resolving_closes_the_bead_with_the_root_cause(bot: Bot) -> None:
    bot.send(report(result("ADV-002", "IDEMP-003")))
    bot.card("INC-1")
    bot.triage("classify INC-1 flake")  # the flake policy files a bead by itself
    (bead,) = wait_for(lambda: beads(bot), what="the flake bead")
    wait_for(lambda: incident(bot).bead_id, what="the bead id on the incident")
    assert "resolved" in bot.triage("resolve INC-1 made the retry idempotent with a dedupe key")
    closed = wait_for(lambda: [b for b in beads(bot) if b["status"] == "closed"], what="the bead to close")
    assert closed[0]["id"] == bead["id"]
    assert "dedupe key" in closed[0].get("close_reason", "")


def test_lock_errors_are_retried_and_the_bead_is_filed(bot: Bot) -> None:
    faults(bot, locked=2)
    bot.send(report(result(None, None, test_file="tests/integration/harness/seed.test.ts", test_name="seeds")))
    wait_for(lambda: beads(bot), timeout=30, what="the bead after lock errors")
    # bd has the bead before the delivery records it: wait for the record, then check it
    wait_for(lambda: incident(bot).bead_state != "pending", timeout=30, what="the bead recorded")
    assert incident(bot).bead_state == "filed"


def test_a_permanent_bd_failure_is_said_in_the_thread_and_triage_goes_on(bot: Bot) -> None:
    faults(bot, unavailable=True)
    bot.send(report(result(None, None, test_file="tests/integration/harness/clock.test.ts", test_name="clock")))
    post = wait_for(
        lambda: [m for m in bot.thread("INC-1") if "Filing the defect bead failed" in m.text],
        timeout=30,
        what="the failure notice",
    )
    assert "bd" in post[0].text.lower() or "database" in post[0].text.lower()
    assert incident(bot).bead_state == "failed"
    assert "you now own INC-1" in bot.triage("ack INC-1")  # triage goes on without the bead
    assert incident(bot).assignee == RESPONDER
    faults(bot)  # bd is back: filing again works
    assert "filing a bead" in bot.triage("bead INC-1")
    wait_for(lambda: beads(bot), timeout=30, what="the bead once bd works")


def test_a_team_on_github_issues_gets_an_issue_instead(bot: Bot) -> None:
    bot.send(report(result("SCH-007", "STATE-004", test_file="drizzle/0042_add_column.sql")))
    bot.card("INC-1")
    bot.triage("classify INC-1 data_schema_drift")
    bot.triage("bead INC-1")
    issue = wait_for(lambda: list(bot.github.issues["acme/dispatch"].values()), what="the GitHub issue")[0]
    assert issue["title"].startswith("Integration failure: SCH-007 / STATE-004")
    assert beads(bot) == []
    wait_for(lambda: (incident(bot).bead_id or "").startswith("gh-"), what="the issue id on the incident")


def test_readyz_reports_the_bd_version(bot: Bot) -> None:
    ready = wait_for(lambda: (r := httpx.get(bot.url + "/readyz").json()).get("bd") and r, what="bd in /readyz")
    assert ready["bd"] == "1.0.5"


def test_a_bead_stays_in_the_tracker_it_was_filed_in_after_a_reclassification(bot: Bot) -> None:
    # Found by `triagebot simulate --days 4 --seed 7 --responders`: a flake's bead (bd), then the
    # class that files in GitHub; its comments and close went to GitHub and were dead-lettered.
    bot.send(report(result("SCH-007", "STATE-004", test_file="drizzle/0042_add_column.sql")))
    bot.card("INC-1")
    bot.triage("classify INC-1 flake")  # the flake policy files a bd bead by itself
    (bead,) = wait_for(lambda: beads(bot), what="the flake bead")
    wait_for(lambda: incident(bot).bead_id == bead["id"], what="the bead id on the incident")
    bot.triage("classify INC-1 data_schema_drift")  # its class files in GitHub acme/dispatch
    bot.send(report(result("SCH-007", "STATE-004", test_file="drizzle/0042_add_column.sql"), run_id="9301"))
    wait_for(lambda: [b for b in beads(bot) if b.get("comment_count") or b.get("comments")], what="the comment")
    assert "resolved" in bot.triage("resolve INC-1 the migration now backfills the column")
    closed = wait_for(lambda: [b for b in beads(bot) if b["status"] == "closed"], what="the bd bead to close")
    assert closed[0]["id"] == bead["id"] and "backfills" in closed[0].get("close_reason", "")
    assert bot.github.issues["acme/dispatch"] == {} and bot.github.comments == {}


def test_a_github_issue_stays_the_bead_when_the_class_moves_to_bd(bot: Bot) -> None:
    bot.send(report(result("SCH-007", "STATE-004", test_file="drizzle/0042_add_column.sql")))
    bot.card("INC-1")
    bot.triage("classify INC-1 data_schema_drift")
    bot.triage("bead INC-1")
    wait_for(lambda: (incident(bot).bead_id or "").startswith("gh-"), what="the issue id on the incident")
    bot.triage("classify INC-1 flake")
    assert "resolved" in bot.triage("resolve INC-1 the migration now backfills the column")
    (issue,) = bot.github.issues["acme/dispatch"].values()
    wait_for(lambda: issue["state"] == "closed", what="the GitHub issue to close")
    assert beads(bot) == []
