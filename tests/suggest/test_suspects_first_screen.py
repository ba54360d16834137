"""The card's first screen names the suspect changes in one line (how many, by whom, since which
green sha); the list stays behind Details. Authors come from GitHub: untrusted, escaped."""

from __future__ import annotations

import json

from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)
from tests.suggest.test_suspects_outside import GREEN, RED, green_then_red, suspects

CHANGES = [
    {"sha": "c" * 40, "author": "dev1", "message": "Add tenant migration"},
    {"sha": "d" * 40, "author": "<!channel>", "message": "Rename tenant column"},
    {"sha": "e" * 40, "author": "dev1", "message": "Seed tenants"},
]


def test_the_first_screen_says_how_many_changes_by_whom_since_the_green_sha(bot: Bot) -> None:  # noqa: F811
    bot.github.add_comparison("acme/dispatch", GREEN, RED, CHANGES, ["drizzle/0042_tenant.sql"])
    green_then_red(bot)
    wait_for(lambda: suspects(bot), what="the suspects")

    def first_screen() -> str:
        return json.dumps(bot.card("INC-1").blocks, ensure_ascii=False)

    shown = wait_for(lambda: [s for s in [first_screen()] if "Suspect changes" in s], what="the card redrawn")[0]
    assert "*Suspect changes:* 3 commits by dev1, &lt;!channel&gt; since `aaaaaaaa` (Details)" in shown
    assert "<!channel>" not in shown
    assert "Rename tenant column" not in shown  # the list itself is behind Details
