"""The card shows the suggestion with its confidence and reasons; confirming it is one click, for
responders only; /api/incidents carries the same fields."""

from __future__ import annotations

import json

import httpx

from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, bot, wait_for  # noqa: F401  (fixture)

CONFIRM = "incident_confirm_suggestion"


def test_confirm_classifies_as_suggested_in_one_click_and_the_card_and_api_show_why(bot: Bot) -> None:  # noqa: F811
    green = report(result("SCH-003", "STATE-001", status="passed"), run_id="100")
    green["run"]["sha"] = "a" * 40
    bot.send(green)
    failing = report(result("SCH-003", "STATE-001", message="AssertionError: expected 3 to equal 2"), run_id="101")
    failing["run"]["sha"] = "b" * 40
    bot.send(failing)

    card = bot.card("INC-1")
    text = "\n".join(b["text"]["text"] for b in card.blocks if b["type"] == "section" and "text" in b)
    assert (
        "*Suggested class:* Algorithm regression (log matches “AssertionError”; failing on every run since sha bbbbbbbb"
        in text
    )
    assert "last green sha aaaaaaaa" in text and "% confident" in text
    buttons = [b["accessory"] for b in card.blocks if b.get("accessory", {}).get("action_id") == CONFIRM]
    assert [b["text"]["text"] for b in buttons] == ["Confirm Algorithm regression"]

    api = httpx.get(bot.url + "/api/incidents").json()["incidents"][0]
    assert api["suggestedClass"] == "algorithm_regression" and api["confidence"] >= 0.7
    assert "last green sha aaaaaaaa" in api["suggestedReason"]
    shown = bot.triage("show INC-1")  # the same words as the card's, with the same confidence
    assert f"Suggested class: Algorithm regression ({api['suggestedReason']}) · " in shown
    assert f" · {round(100 * api['confidence'])}% confident" in shown

    bot.emulator.click_button(OUTSIDER, NIGHTLY, card.ts, CONFIRM)
    assert "Only responders" in wait_for(lambda: bot.emulator.ephemerals(OUTSIDER), what="the refusal")[-1]["text"]
    assert bot.card("INC-1").edited == 0

    assert bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, CONFIRM).status == 200
    redrawn = json.dumps(bot.wait_edits("INC-1", 1).blocks)
    assert "*Class:* Algorithm regression" in redrawn and CONFIRM not in redrawn
    classified = httpx.get(bot.url + "/api/incidents").json()["incidents"][0]
    assert classified["class"] == "algorithm_regression" and classified["classSource"] == "human"
