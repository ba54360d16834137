"""A comparison GitHub cuts short (it lists at most 300 changed files) is marked truncated, and
everywhere suspects are shown says there are more changes than listed."""

from __future__ import annotations

from slackbot.config import Playbook
from slackbot.documents.record import RecordInputs, render_record
from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)
from tests.slack.test_card_render import incident
from tests.suggest.test_suspects_outside import GREEN, RED, green_then_red, suspects

MORE = "GitHub lists only part of this comparison: there are more changes than shown."


def test_a_comparison_of_three_hundred_files_says_there_may_be_more(bot: Bot) -> None:  # noqa: F811
    files = [f"src/lib/server/services/s{n:03d}.ts" for n in range(300)]
    bot.github.add_comparison(
        "acme/dispatch", GREEN, RED, [{"sha": "c" * 40, "author": "dev1", "message": "Big"}], files
    )
    green_then_red(bot, "expected 2 rows, got 3")
    found = wait_for(lambda: suspects(bot), what="suspects")
    assert found["truncated"] is True and found["files"] == 300
    bot.card("INC-1")
    assert MORE in bot.triage("show INC-1")


def test_a_short_comparison_is_not_marked_and_the_bead_counts_one_commit_in_the_singular(runbook: Playbook) -> None:
    suspects = {
        "base": GREEN,
        "head": RED,
        "commitCount": 1,
        "commits": [{"sha": "c" * 40, "author": "dev2", "title": "Rename tenant column", "url": None}],
        "owners": [],
        "truncated": False,
    }
    body = render_record(RecordInputs(runbook, incident(suspects=suspects), None, "x", "y")).body
    assert "- Suspect changes since the last green sha aaaaaaaa (1 commit):" in body
    assert MORE not in body
    capped = render_record(RecordInputs(runbook, incident(suspects=suspects | {"truncated": True}), None, "x", "y"))
    assert f"  - {MORE}" in capped.body
