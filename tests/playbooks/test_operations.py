"""Seed 004's operations playbook, end to end over HTTP: an Alertmanager alert opens a card with its
failure mode's detect → diagnose → recover → verify → document runbook as a checklist; ops click
through it (every click a runbook execution), a step that fails as written escalates to
engineering, the milestones follow the procedure, and the postmortem is seed 004's template."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from slackbot.db.models import RunbookExecution, TimelineEvent
from tests.conftest import RUNBOOKS
from tests.playbooks.conftest import PlaybookBot
from tests.slack.conftest import wait_for

ALERTS = "C0ALERTS"
OPS = "U0SAM"
ENGINEERING = "U0TESS"
EXAMPLE = RUNBOOKS / "operations" / "examples" / "alert.json"


def test_a_settlement_failure_is_run_from_its_runbook_to_its_postmortem(bot: PlaybookBot) -> None:
    payload = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    opened = bot.alert(payload)
    assert opened.status_code == 200 and opened.json()["status"] == "opened"
    card = bot.card_text("INC-1", ALERTS)
    assert "SettlementFailed" in card and "Settlement fails mid-run" in card and "critical" in card
    assert "settlement_status = FAILED" in card

    checklist = wait_for(
        lambda: next((m for m in bot.thread("INC-1", ALERTS) if "checklist" in m.text.lower()), None),
        what="the failure mode's checklist",
    )
    steps = json.dumps(checklist.blocks)
    assert "settlement_audit" in steps and "error_json" in steps  # the seed's diagnosis, as a command
    bot.emulator.click_button(OPS, ALERTS, checklist.ts, "checklist_step:settlement_failed:1:done")
    wait_for(lambda: f"Done by <@{OPS}>" in json.dumps(bot.emulator.message(ALERTS, checklist.ts).blocks))
    # "Any runbook step that fails when executed exactly as written": escalate to engineering.
    dms_before = len(bot.dms(ENGINEERING))
    bot.emulator.click_button(OPS, ALERTS, checklist.ts, "checklist_step:settlement_failed:3:failed")
    post = wait_for(
        lambda: next((m.text for m in bot.thread("INC-1", ALERTS) if "marked a runbook step *failed*" in m.text), None),
        what="the escalation post",
    )
    assert "<!subteam^S0ENGINEERING>" in post
    wait_for(lambda: len(bot.dms(ENGINEERING)) > dms_before, what="engineering paged")
    with Session(bot.core.engine) as session:
        executions = session.exec(select(RunbookExecution).order_by(RunbookExecution.id)).all()
    assert [(e.runbook, e.step_index, e.result, e.actor) for e in executions] == [
        ("settlement_failed", 1, "done", OPS),
        ("settlement_failed", 3, "failed", OPS),
    ]
    # the escalation the failed step caused is in the audit trail, like every other one
    with Session(bot.core.engine) as session:
        escalated = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "escalated")).all()
    assert [(e.actor, (e.data or {}).get("reason")) for e in escalated] == [(OPS, "runbook_step_failed")]

    for command, label in (
        ("status INC-1 diagnosed validation error in settlement_audit row 88", "Diagnosed"),
        ("status INC-1 recovered", "Recovered"),
        ("status INC-1 verified settlement 88 completed, no duplicate scores", "Verified"),
    ):
        assert label in bot.triage(command, user=OPS, channel=ALERTS)
    closed = bot.triage(
        'status INC-1 documented what_we_changed="fixed the contest row and re-ran settlement" '
        "a contest row with a null prize pool failed validation",
        user=OPS,
        channel=ALERTS,
    )
    assert "INC-1 resolved" in closed

    bot.triage("postmortem INC-1", user=OPS, channel=ALERTS)
    document = wait_for(lambda: next((f for f in bot.emulator.files() if f.name.endswith(".md")), None))
    text = document.text
    for heading in ("## What happened", "## Why", "## What we changed", "## Runbook executions"):
        assert heading in text
    assert "fixed the contest row and re-ran settlement" in text
    # The audit trail of the runbook executions, numbered as people say them ("step 3").
    assert "1 step failed when executed as written" in text
    assert "| settlement_failed | 1. Detect:" in text and "| settlement_failed | 3. Diagnose:" in text
    assert "| **failed** | U0SAM |" in text
