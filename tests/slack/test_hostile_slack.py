"""Signed but malformed Slack requests: never a 5xx, never a change, and an answer whenever we
know who sent it (an ephemeral reply, or the modal saying what is wrong)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from slackbot.slack import card
from slackbot.slack.checklist import ACTION_PREFIX
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, wait_for
from tests.slack.hostile import (
    FORM,
    answers,
    click,
    command,
    errors_logged,
    interaction,
    next_answer,
    post,
    snapshot,
    submission,
)

TWO_TO_THE_70 = str(2**70)  # 1180591620717411303424
MEGABYTE_OF_DIGITS = "1" * 1_000_000


def open_incident(bot: Bot) -> str:
    bot.send(report(result("BID-001", "TENANT-001")))
    return bot.card("INC-1").ts


BODIES: list[tuple[str, bytes, str]] = [
    ("payload-bad-json", b"payload=%7B%22type%22%3A", FORM),
    ("payload-a-list", b"payload=%5B1%2C2%5D", FORM),
    ("payload-a-string", b"payload=%22block_actions%22", FORM),
    ("payload-a-number", b"payload=7", FORM),
    ("json-list", b"[]", "application/json"),
    ("event-a-list", b'{"type": "event_callback", "event": [1]}', "application/json"),
    ("not-utf8", b"\xff\xfepayload=\xff", FORM),
    ("user-a-number", b'payload={"type":"block_actions","user":7,"actions":[]}', FORM),
    ("view-a-list", b'payload={"type":"view_submission","user":{"id":"U0CAROL"},"view":[]}', FORM),
    ("unknown-interaction", b'payload={"type":"shortcut","callback_id":7}', FORM),
    ("payload-deep", b"payload=" + b"%5B" * 100_000, FORM),
]


def test_a_signed_body_nobody_could_act_on_is_a_4xx_and_changes_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    open_incident(bot)
    before = snapshot(bot)
    for case, body, content_type in BODIES:
        response = post(bot, body, content_type)
        assert 400 <= response.status < 500, (case, response.status, response.body)
        assert snapshot(bot) == before, case
    assert errors_logged(caplog) == []


def test_a_timestamp_that_is_not_a_number_is_refused_as_unsigned(bot: Bot) -> None:
    body = b"command=%2Ftriage&text=list&user_id=U0CAROL"
    for timestamp in ["abc", "²", "1e9", "9" * 1000, "-1", "+1700000000", "١٧٠٠٠٠٠٠٠٠"]:
        signature = bot.emulator.actor.verifier.generate_signature(timestamp=timestamp, body=body)
        response = httpx.post(
            bot.url + "/slack/events",
            content=body,
            headers={
                "content-type": FORM,
                "x-slack-request-timestamp": timestamp.encode(),  # type: ignore[dict-item]
                "x-slack-signature": signature or "",
            },
        )
        assert response.status_code == 401, (timestamp, response.text)


def test_a_non_ascii_signature_is_refused_as_unsigned(bot: Bot) -> None:
    response = httpx.post(
        bot.url + "/slack/events",
        content=b"command=%2Ftriage&text=list&user_id=U0CAROL",
        headers={
            "content-type": FORM,
            "x-slack-request-timestamp": str(int(bot.emulator.actor.signing_clock())),
            "x-slack-signature": "v0=é".encode("latin-1"),  # type: ignore[dict-item]
        },
    )
    assert response.status_code == 401, response.text


CLICKS: list[tuple[str, dict[str, Any], str]] = [
    ("ack-superscript", {"action_id": card.ACTION_ACK, "value": "²"}, "'²' is not an incident id"),
    ("escalate-2^70", {"action_id": card.ACTION_ESCALATE, "value": TWO_TO_THE_70}, f"no incident INC-{TWO_TO_THE_70}"),
    ("escalate-1MB", {"action_id": card.ACTION_ESCALATE, "value": MEGABYTE_OF_DIGITS}, "no incident INC-1111"),
    ("bead-superscript", {"action_id": card.ACTION_BEAD, "value": "²"}, "is not an incident id"),
    ("runbook-2^70", {"action_id": card.ACTION_RUNBOOK, "value": TWO_TO_THE_70}, f"no incident INC-{TWO_TO_THE_70}"),
    (
        "classify-block-superscript",
        {
            "action_id": card.ACTION_CLASSIFY,
            "block_id": "incident:²",
            "type": "static_select",
            "selected_option": {"value": "flake_concurrency"},
        },
        "is not an incident id",
    ),
    (
        "status-arabic-digit",
        {
            "action_id": card.ACTION_STATUS,
            "block_id": "incident:٣",  # an Arabic-Indic three: str.isdigit() says yes
            "type": "static_select",
            "selected_option": {"value": "triage_complete"},
        },
        "is not an incident id",
    ),
    (
        "classify-no-option",
        {"action_id": card.ACTION_CLASSIFY, "block_id": "incident:1", "type": "static_select"},
        "no option",
    ),
    (
        "severity-option-a-list",
        {
            "action_id": card.ACTION_SEVERITY,
            "block_id": "incident:1",
            "type": "static_select",
            "selected_option": {"value": ["SEV-1"]},
        },
        "no option",
    ),
    (
        "checklist-forged",
        {"action_id": f"{ACTION_PREFIX}:x", "value": json.dumps({"incident": "²", "index": 2**70})},
        "older version",
    ),
    ("unknown-action", {"action_id": "incident_detonate", "value": "1"}, "not a button I know"),
    ("no-action-id", {"value": "1"}, "could not read"),
    ("value-a-number", {"action_id": card.ACTION_ACK, "value": 5}, "could not read"),
]


def test_a_hostile_click_is_answered_and_changes_nothing(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    card_ts = open_incident(bot)
    before = snapshot(bot)
    for case, action, expected in CLICKS:
        heard = len(answers(bot, RESPONDER))
        response = interaction(bot, click(bot, RESPONDER, action, card_ts=card_ts))
        assert response.status < 500, (case, response.body)
        answer = next_answer(bot, RESPONDER, heard)
        assert expected in answer and len(answer) < 600, (case, answer[:600])
        assert snapshot(bot) == before, case
    assert errors_logged(caplog) == []


def test_a_click_without_actions_is_answered_and_changes_nothing(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    card_ts = open_incident(bot)
    before, heard = snapshot(bot), len(answers(bot, RESPONDER))
    payload = click(bot, RESPONDER, {}, card_ts=card_ts)
    payload["actions"] = []
    response = interaction(bot, payload)
    assert response.status < 500, response.body
    assert "could not read" in next_answer(bot, RESPONDER, heard)
    assert snapshot(bot) == before
    assert errors_logged(caplog) == []


BEAD_STATE = {
    "values": {
        "expected": {"value": {"type": "plain_text_input", "value": "org-a sees only org-a"}},
        "observed": {"value": {"type": "plain_text_input", "value": "org-a saw org-b"}},
    }
}


VIEWS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown-callback",
        {"id": "V1", "callback_id": "launch_missiles", "private_metadata": "{}", "state": {"values": {}}},
        "not a form I know",
    ),
    (
        "bead-no-state",
        {"id": "V1", "callback_id": "file_bead", "private_metadata": '{"incident": 1}'},
        "could not read",
    ),
    (
        "bead-metadata-not-json",
        {"id": "V1", "callback_id": "file_bead", "private_metadata": "{not json", "state": BEAD_STATE},
        "older version",
    ),
    (
        "bead-metadata-a-list",
        {"id": "V1", "callback_id": "file_bead", "private_metadata": "[1]", "state": BEAD_STATE},
        "older version",
    ),
    (
        "bead-metadata-superscript",
        {"id": "V1", "callback_id": "file_bead", "private_metadata": '{"incident": "²"}', "state": BEAD_STATE},
        "is not an incident id",
    ),
    (
        "milestone-2^70",
        {
            "id": "V1",
            "callback_id": "incident_milestone",
            "private_metadata": json.dumps({"incident": 2**70, "milestone": "resolved"}),
            "state": {"values": {"root_cause": {"value": {"type": "plain_text_input", "value": "x"}}}},
        },
        f"no incident INC-{TWO_TO_THE_70}",
    ),
    (
        "milestone-no-milestone",
        {
            "id": "V1",
            "callback_id": "incident_milestone",
            "private_metadata": json.dumps({"incident": 1}),
            "state": {"values": {"root_cause": {"value": {"type": "plain_text_input", "value": "x"}}}},
        },
        "older version",
    ),
    (
        "bead-values-a-list",
        {"id": "V1", "callback_id": "file_bead", "private_metadata": '{"incident": 1}', "state": {"values": [1]}},
        "could not read",
    ),
]


def test_a_hostile_modal_submission_is_answered_in_the_modal_and_changes_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    open_incident(bot)
    before = snapshot(bot)
    for case, view, expected in VIEWS:
        response = interaction(bot, submission(RESPONDER, {"type": "modal", **view}))
        assert response.status == 200, (case, response.body)
        assert expected in json.dumps(response.json, ensure_ascii=False), (case, response.json)
        assert snapshot(bot) == before, case
    assert errors_logged(caplog) == []


COMMANDS: list[tuple[str, str, str]] = [
    ("classify-superscript", "classify INC-² flake", "'INC-²' is not an incident id"),
    ("show-2^70", f"show INC-{TWO_TO_THE_70}", f"no incident INC-{TWO_TO_THE_70}"),
    ("escalate-2^70", f"escalate INC-{TWO_TO_THE_70}", f"no incident INC-{TWO_TO_THE_70}"),
    ("timeline-2^70", f"timeline {TWO_TO_THE_70}", f"no incident INC-{TWO_TO_THE_70}"),
    ("help-2^70", f"help INC-{TWO_TO_THE_70}", f"no incident INC-{TWO_TO_THE_70}"),
    ("status-100k-digits", f"status INC-{'9' * 100_000} resolved x", "no incident INC-9999"),
    ("postmortem-arabic-digit", "postmortem INC-٣", "is not an incident id"),
    ("the-word-payload", "show payload", "is not an incident id"),
    ("a-100k-word", "x" * 100_000, "Unknown subcommand"),
]


def test_a_hostile_incident_id_in_a_command_is_answered_and_changes_nothing(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    open_incident(bot)
    before = snapshot(bot)
    for case, text, expected in COMMANDS:
        heard = len(answers(bot, RESPONDER))
        response = command(bot, RESPONDER, text)
        assert response.status == 200, (case, response.body)
        answer = next_answer(bot, RESPONDER, heard)
        assert expected in answer and len(answer) < 2000, (case, answer[:600])
        assert snapshot(bot) == before, case
    assert errors_logged(caplog) == []


def test_an_outsider_cannot_file_a_bead_from_the_modal(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    """The modal's submit checks the submitter as resolve's does: a modal opened by a responder,
    then submitted by someone who is not one (a replay, or a responder since removed), files nothing."""
    card_ts = open_incident(bot)
    bot.emulator.click_button(RESPONDER, NIGHTLY, card_ts, card.ACTION_BEAD)
    (modal,) = wait_for(lambda: bot.emulator.open_modals(RESPONDER), what="the bead modal")
    before = snapshot(bot)
    view = {**modal.to_api(team_id="T0TRIAGE"), "state": BEAD_STATE}
    response = interaction(bot, submission(OUTSIDER, view))
    assert response.status == 200 and response.json is not None
    assert response.json["response_action"] == "errors"
    assert "Only responders" in json.dumps(response.json) and "nothing was changed" in json.dumps(response.json)
    assert snapshot(bot) == before
    assert errors_logged(caplog) == []


def test_a_mention_with_an_absurd_run_attempt_still_triages_and_answers(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    """A run URL's attempt past any real one (here 10^20) is not an attempt: the ids in the
    message still open the card, and the thread hears back, instead of a listener exception."""
    url = "https://github.com/acme/dispatch/actions/runs/9187/attempts/" + "9" * 20
    response = bot.emulator.mention_bot(RESPONDER, NIGHTLY, f"triage BID-001 TENANT-001 {url}")
    assert response.status == 200
    bot.card("INC-1")
    assert errors_logged(caplog) == []


def test_a_read_click_that_meets_a_database_outage_is_told_so(
    bot: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The runbook button acks first, then reads the incident: when the database is away then, the
    person is told at the click's response URL that nothing could be read, not left waiting."""
    card_ts = open_incident(bot)

    def away(incident_id: int) -> object:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(bot.core, "card_view", away)
    heard = len(answers(bot, RESPONDER))
    response = interaction(
        bot, click(bot, RESPONDER, {"action_id": card.ACTION_RUNBOOK, "value": "1"}, card_ts=card_ts)
    )
    assert response.status == 200, response.body
    assert "cannot reach its database" in next_answer(bot, RESPONDER, heard)
    # and nothing after it: Bolt once took the click for one no listener acked, and its fallback
    # answered "not a button I know" 3 s later
    time.sleep(3.5)
    assert len(answers(bot, RESPONDER)) == heard + 1, answers(bot, RESPONDER)[heard:]
    assert errors_logged(caplog) == []
