"""Seed 002's contract-fixture drift playbook, end to end over HTTP: a failing validator opens a card
in #contract-drift with its command and log, responders classify it into a bucket by its label,
set a severity by the seed's names, post the resolution checklist's milestones (which fill the
incident record) and close it with the root cause and the prevention follow-up."""

from __future__ import annotations

import json

from sqlmodel import Session

from slackbot.db.models import Incident
from tests.beads.test_bead_filing import beads
from tests.conftest import RUNBOOKS
from tests.playbooks.conftest import PlaybookBot
from tests.slack.conftest import wait_for

DRIFT = "C0DRIFT"
QA = "U0LEO"  # the QA owner: owns what is not classified yet, secondary owner of two buckets
FIXTURE_OWNER = "U0MIA"
EXAMPLE = RUNBOOKS / "contract-drift" / "examples" / "report.json"


def incident(bot: PlaybookBot) -> Incident:
    with Session(bot.core.engine) as session:
        found = session.get(Incident, 1)
        assert found is not None
        return found


def test_a_failing_validator_is_triaged_in_the_playbooks_own_words(bot: PlaybookBot) -> None:
    answer = bot.send(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    (opened,) = answer["incidents"]
    assert (opened["playbook"], opened["contractViolation"]) == ("contract-drift", False)

    first = bot.card_text("INC-1", DRIFT)
    assert "Failing command/check:" in first and "python3 scripts/validate-fixture-coverage.py" in first
    card = bot.details_text("INC-1", DRIFT, user=QA)
    assert "fixture coverage FAILED" in card  # the log's tail, one click away
    assert "Contract fixture drift triage" in card and "Medium" in card  # the seed's default guidance
    assert "Contract violation" not in card and "scenarioId" not in card  # seed 002 has no ids
    for bucket in ("Schema drift", "Fixture stale", "Runtime regression"):
        assert bucket in card  # the Classify… menu lists the seed's three buckets
    assert "SEV-" not in card and "High" in card and "Low" in card

    # A severity of another playbook is refused with this playbook's choices.
    refused = bot.triage("severity INC-1 SEV-1", user=QA, channel=DRIFT)
    assert "unknown severity 'SEV-1'; use one of: High, Medium, Low" in refused

    assert "classified Fixture stale" in bot.triage("classify INC-1 fixture stale", user=QA, channel=DRIFT)
    thread = wait_for(lambda: "Required action" in (t := bot.thread_text("INC-1", DRIFT)) and t)
    assert "Refresh expected fixtures and `notes.md`" in thread  # the routing matrix's required action
    assert "<!subteam^S0FIXTURE>" in thread and "<!subteam^S0QA>" in thread  # primary and secondary owner
    # The seed's 5-step resolution checklist, to click through (Done / Failed / Skip per step).
    wait_for(lambda: "Capture the failing command" in bot.thread_text("INC-1", DRIFT), what="the checklist")

    assert "is now High" in bot.triage("severity INC-1 high", user=QA, channel=DRIFT)
    wait_for(lambda: any("INC-1" in text for text in bot.dms(FIXTURE_OWNER)), what="the owner's page for High")
    assert "High" in bot.card_text("INC-1", DRIFT)
    # High files the incident record; resolving waits for it (a responder sees it in the thread first).
    wait_for(lambda: incident(bot).bead_state == "filed", what="the incident record filed for High")

    # The resolution checklist's milestones fill the seed's incident record.
    pr = "https://github.com/acme/dispatch/pull/77"
    assert "Remediation PR submitted" in bot.triage(f"status INC-1 remediation pr {pr}", user=QA, channel=DRIFT)
    green = "https://github.com/acme/dispatch/actions/runs/9241"
    assert "Validators green" in bot.triage(f"status INC-1 validators_green {green}", user=QA, channel=DRIFT)
    refused = bot.triage("resolve INC-1 fixture pack not refreshed after contract v3", user=QA, channel=DRIFT)
    assert "prevention follow-up" in refused and 'prevention_followup="' in refused
    closed = bot.triage(
        'status INC-1 closed prevention_followup="validator runs in the PR template" '
        "fixture pack not refreshed after contract v3",
        user=QA,
        channel=DRIFT,
    )
    assert "INC-1 resolved" in closed
    resolved = incident(bot)
    assert resolved.status == "resolved"
    assert resolved.record == {
        "resolution_pr": pr,
        "validation_proof": green,
        "root_cause": "fixture pack not refreshed after contract v3",
        "prevention_followup": "validator runs in the PR template",
    }

    # The record was filed when the incident was classified, with the seed's record template.
    (record,) = wait_for(lambda: beads(bot), what="the incident record in bd")
    assert record["title"].startswith("Contract drift: python3 scripts/validate-fixture-coverage.py")
    body = record.get("description", "")
    for field in ("Incident ID:", "Detected at:", "Failing command/check:", "Bucket (schema drift", "Resolution PR:"):
        assert field in body
    assert "bucket:fixture_stale" in record.get("labels", [])
    final = wait_for(lambda: "Root cause:" in (t := bot.thread_text("INC-1", DRIFT)) and t, what="the closing post")
    assert "*Prevention follow-up:* validator runs in the PR template" in final


def test_a_local_validator_run_is_routed_by_its_command(bot: PlaybookBot) -> None:
    report = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    report["run"]["suite"] = "local"  # a laptop run: neither the suite nor the workflow says drift
    report["run"]["workflow"] = None
    (opened,) = bot.send(report)["incidents"]
    assert opened["playbook"] == "contract-drift"
    assert "python3 scripts/validate-fixture-coverage.py" in bot.card_text("INC-1", DRIFT)
