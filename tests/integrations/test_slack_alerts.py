"""Failure alerts already in Slack: a CI notifier's messages, the triage reaction and
``@triagebot triage``, through the Slack emulator's real Events API deliveries."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from slackbot.db.models import Incident
from slackbot.emulator.state import Message
from tests.factories import report, result
from tests.integrations.conftest import NOTIFIER_BOT, NOTIFIER_USER, CiBot, workflow_run_payload, zip_bytes
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, wait_for

RUN_URL = "https://github.com/acme/dispatch/actions/runs/9187"


def reply_in_thread(bot: CiBot, channel: str, ts: str, contains: str) -> Message:
    def find() -> Message | None:
        return next((m for m in bot.emulator.replies(channel, ts) if contains in m.text and m.ts != ts), None)

    found: Message = wait_for(find, what=f"a reply containing {contains!r}")
    return found


def open_incidents(bot: CiBot) -> list[Incident]:
    with Session(bot.core.engine) as session:
        return list(session.exec(select(Incident).where(Incident.status == "open")))


def test_ci_notifier_message_opens_a_card_and_answers_in_its_thread(ci_bot: CiBot) -> None:
    text = f"❌ integration-nightly failed: BID-001 / TENANT-001 on main <{RUN_URL}|run 9187> <!channel>"
    ts, _ = ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, text, bot_id=NOTIFIER_BOT)

    card = ci_bot.card_text("INC-1", NIGHTLY)
    assert "BID-001" in card and "TENANT-001" in card and RUN_URL in card
    reply = reply_in_thread(ci_bot, NIGHTLY, ts, "INC-1")
    assert "Opened" in reply.text and f"<#{NIGHTLY}>" in reply.text
    # The notifier's text is untrusted: nothing the bot posted may ping the channel.
    for message in ci_bot.emulator.messages(NIGHTLY):
        if message.user != NOTIFIER_USER:
            assert "<!channel>" not in message.text and "<!channel>" not in json.dumps(message.blocks)


def test_notifier_joins_the_incident_the_report_opened(ci_bot: CiBot) -> None:
    sent = ci_bot.send(report(result("BID-001", "TENANT-001")))
    assert sent["incidents"][0]["id"] == "INC-1"
    ci_bot.card("INC-1", NIGHTLY)

    text = f"integration-nightly attempt 2 failed again: BID-001 TENANT-001 {RUN_URL}/attempts/2"
    ts, _ = ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, text, bot_id=NOTIFIER_BOT)
    reply = reply_in_thread(ci_bot, NIGHTLY, ts, "INC-1")
    assert "Joined" in reply.text
    assert [i.key for i in open_incidents(ci_bot)] == ["INC-1"]
    assert open_incidents(ci_bot)[0].occurrence_count == 2


def test_messages_from_other_people_or_unrouted_channels_are_left_alone(ci_bot: CiBot) -> None:
    ci_bot.emulator.post_as_user(RESPONDER, NIGHTLY, "BID-001 / TENANT-001 looks broken again?")
    ci_bot.emulator.post_as_user(NOTIFIER_USER, "C0OPS", f"BID-001 TENANT-001 {RUN_URL}", bot_id=NOTIFIER_BOT)
    ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, "✅ integration-nightly passed", bot_id=NOTIFIER_BOT)
    # A control message proves the events above were delivered and processed before we look.
    ts, _ = ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, "NOS-004 IDEMP-002 failed", bot_id=NOTIFIER_BOT)
    reply_in_thread(ci_bot, NIGHTLY, ts, "INC-1")
    assert [(i.scenario_id, i.invariant_id) for i in open_incidents(ci_bot)] == [("NOS-004", "IDEMP-002")]


def test_triage_reaction_opens_a_card_from_any_message(ci_bot: CiBot) -> None:
    ts, _ = ci_bot.emulator.post_as_user(RESPONDER, NIGHTLY, "checkout page 500s for org-a since the deploy")
    ci_bot.emulator.add_reaction(OUTSIDER, NIGHTLY, ts, "rotating_light")
    refusal = wait_for(lambda: ci_bot.emulator.ephemerals(OUTSIDER), what="the refusal")
    assert "Only responders" in refusal[-1]["text"]
    ci_bot.emulator.add_reaction(RESPONDER, NIGHTLY, ts, "eyes")  # any other emoji means nothing

    ci_bot.emulator.add_reaction(RESPONDER, NIGHTLY, ts, "rotating_light")
    reply = reply_in_thread(ci_bot, NIGHTLY, ts, "INC-1")
    assert "Opened" in reply.text
    card = ci_bot.card_text("INC-1", NIGHTLY)
    # A message without ids is a failure without ids: preset to harness/diagnostics by the contract.
    assert "checkout page 500s" in card and "Contract violation" in card
    assert len(open_incidents(ci_bot)) == 1


def test_reaction_on_a_thread_reply_reads_that_reply(ci_bot: CiBot) -> None:
    root, _ = ci_bot.emulator.post_as_user(RESPONDER, NIGHTLY, "nightly is red")
    reply_ts, _ = ci_bot.emulator.post_as_user(RESPONDER, NIGHTLY, "it is SCH-003 breaking STATE-001", thread_ts=root)
    ci_bot.emulator.add_reaction(RESPONDER, NIGHTLY, reply_ts, "rotating_light")

    reply_in_thread(ci_bot, NIGHTLY, root, "INC-1")
    assert [(i.scenario_id, i.invariant_id) for i in open_incidents(ci_bot)] == [("SCH-003", "STATE-001")]


def test_mention_in_a_thread_triages_the_thread_root(ci_bot: CiBot) -> None:
    root, _ = ci_bot.emulator.post_as_user(RESPONDER, NIGHTLY, "TENANT-001 violated by BID-002 in last night's run")
    ci_bot.emulator.mention_bot(RESPONDER, NIGHTLY, "what is this?", thread_ts=root)
    help_text = reply_in_thread(ci_bot, NIGHTLY, root, "@triagebot triage")
    assert "rotating_light" in help_text.text

    ci_bot.emulator.mention_bot(RESPONDER, NIGHTLY, "triage", thread_ts=root)
    reply = reply_in_thread(ci_bot, NIGHTLY, root, "INC-1")
    assert "Opened" in reply.text
    assert [(i.scenario_id, i.invariant_id) for i in open_incidents(ci_bot)] == [("BID-002", "TENANT-001")]


def test_notifier_message_with_only_a_run_url_fetches_the_run_report(ci_bot: CiBot) -> None:
    run = workflow_run_payload(conclusion="failure", name="integration-nightly")["workflow_run"]
    run.update(id=9187, html_url=RUN_URL)
    ci_bot.github.add_run("acme/dispatch", run)
    body = json.dumps(
        {"schemaVersion": 1, "run": {"repository": "x/y", "runId": "1"}, "results": [result("ADV-001", "IDEMP-001")]}
    )
    ci_bot.github.add_artifact("acme/dispatch", 9187, "integration-report", zip_bytes({"report.json": body}))

    text = f"Workflow <{RUN_URL}|integration-nightly #412> failed on main"
    ts, _ = ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, text, bot_id=NOTIFIER_BOT)

    reply = reply_in_thread(ci_bot, NIGHTLY, ts, "INC-1")
    assert "Opened" in reply.text and "ADV-001" in reply.text
    card = ci_bot.card_text("INC-1", NIGHTLY)  # workflow "integration-nightly" → the nightly suite
    assert "ADV-001" in card and "IDEMP-001" in card
