"""The card as a terminal shows it (``make demo``): readable, compact, and inert to hostile text."""

from __future__ import annotations

from slackbot.config import Playbook
from slackbot.db.models import Run
from slackbot.slack.card import CardView, render_card
from slackbot.slack.terminal import render_text
from tests.slack.test_card_render import NOW, incident


def test_each_block_kind_reads_as_plain_text() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "🔴 INC-7 · S-PAY-01"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*What failed:* `test_a_b` in _nightly_ — <https://ci.example/1|run 1>"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Status:*\nOpen"},
                {"type": "mrkdwn", "text": "*Owner:*\n<!subteam^S0PAY|@payments>"},
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "last <!date^1795000000^{time}|2026-11-18 08:26 UTC>"},
                {"type": "mrkdwn", "text": "by <@U0CAROL>"},
            ],
        },
        {"type": "divider"},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}, "action_id": "a"},
                {
                    "type": "static_select",
                    "placeholder": {"type": "plain_text", "text": "Classify…"},
                    "action_id": "b",
                    "options": [],
                },
                {
                    "type": "static_select",
                    "placeholder": {"type": "plain_text", "text": "Severity…"},
                    "action_id": "c",
                    "initial_option": {"text": {"type": "plain_text", "text": "S2"}, "value": "S2"},
                },
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Reproduce locally:*\n```export A=1\nmake test```"}},
    ]
    assert render_text(blocks).split("\n") == [
        "🔴 INC-7 · S-PAY-01",
        "══════════════════",
        "What failed: `test_a_b` in nightly — run 1 (https://ci.example/1)",
        "Status: Open   Owner: @payments",
        "last 2026-11-18 08:26 UTC · by @U0CAROL",
        "─" * 40,
        "[ Acknowledge ]  <select: Classify…>  <select: Severity… = S2>",
        "Reproduce locally:",
        "    export A=1",
        "    make test",
    ]


def test_fields_wrap_at_the_width() -> None:
    fields = [{"type": "mrkdwn", "text": f"*F{n}:*\n{'x' * 20}"} for n in range(4)]
    lines = render_text([{"type": "section", "fields": fields}], width=60).split("\n")
    assert lines == [f"F0: {'x' * 20}   F1: {'x' * 20}", f"F2: {'x' * 20}   F3: {'x' * 20}"]


def test_hostile_text_is_shown_as_typed_and_cannot_drive_the_terminal(runbook: Playbook) -> None:
    hostile = "<!channel> *bold* \x1b]52;c;cHduZWQ=\x07 \x1b[2J <https://evil.example|click>"
    run = Run(
        repository="acme/dispatch",
        run_id="1",
        run_attempt=1,
        suite="nightly",
        url="https://ci.example/1",
        received_at=NOW,
    )
    view = CardView(runbook, incident(symptom=hostile, test_identity=hostile, last_seen=NOW), run=run)
    text = render_text(render_card(view)[1])
    assert "\x1b" not in text and "\x07" not in text
    assert "<!channel>" in text  # the escaped text reads as typed, never as a mention
    assert "<https://evil.example|click>" in text and "click (https://evil.example)" not in text


def test_a_real_card_ends_with_its_controls(runbook: Playbook) -> None:
    text = render_text(render_card(CardView(runbook, incident(), run=None))[1])
    assert "[ Acknowledge ]" in text and "<select: Classify…>" in text
    assert "&lt;" not in text and "<!date^" not in text and "*Status:*" not in text
