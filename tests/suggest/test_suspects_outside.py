"""Suspect changes against what GitHub may send: a spent rate limit delays them (never loses them),
and authors, commit titles, file paths and CODEOWNERS entries are untrusted text on the card and in
/triage show."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, RESPONDER, SHOW_DETAILS, Bot, bot, wait_for  # noqa: F401  (fixture)

GREEN, RED = "a" * 40, "b" * 40


def green_then_red(bot: Bot, message: str = 'column "tenant_id" does not exist') -> None:  # noqa: F811
    for run_id, sha, status in (("200", GREEN, "passed"), ("201", RED, "failed")):
        sent = report(result("SCH-005", "STATE-002", status=status, message=message), run_id=run_id)
        sent["run"]["sha"] = sha
        bot.send(sent)


def suspects(bot: Bot) -> Any:  # noqa: F811
    return httpx.get(bot.url + "/api/incidents").json()["incidents"][0]["suspects"]


def test_a_rate_limited_compare_is_asked_again_when_github_says_and_the_suspects_arrive(bot: Bot) -> None:  # noqa: F811
    bot.github.add_comparison(
        "acme/dispatch", GREEN, RED, [{"sha": "c" * 40, "author": "dev", "message": "m"}], ["drizzle/x.sql"]
    )
    limited = {"x-ratelimit-remaining": "0", "retry-after": "30"}
    bot.github.fail_next(1, 403, message="API rate limit exceeded", headers=limited)
    green_then_red(bot)

    def compares() -> int:
        return len([r for r in bot.github.requests if "/compare/" in r.path])

    wait_for(lambda: compares() == 1, what="the rate-limited compare")
    assert suspects(bot) is None and compares() == 1  # nothing asked again before GitHub's 30 s
    bot.clock.shift(seconds=31)
    found = wait_for(lambda: suspects(bot), what="the suspects after the rate limit")
    assert found["commitCount"] == 1 and compares() == 2


def test_authors_titles_paths_and_owners_from_github_are_escaped(bot: Bot) -> None:  # noqa: F811
    bot.github.add_comparison(
        "acme/dispatch",
        GREEN,
        RED,
        [{"sha": "c" * 40, "author": "<!channel>", "message": "<@U0CAROL> <!here|x> fix"}],
        ["drizzle/<!everyone>.sql"],
    )
    # an "owner" GitHub would read as an email address, written to ping a user group
    bot.github.add_file("acme/dispatch", ".github/CODEOWNERS", "* <!subteam^S1>@x.io @acme/x\n")
    green_then_red(bot)
    wait_for(lambda: suspects(bot), what="the suspects")
    card = bot.card("INC-1")
    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, SHOW_DETAILS)
    (shown_card,) = wait_for(
        lambda: [m for m in [bot.card("INC-1")] if "Suspect changes" in json.dumps(m.blocks)], what="the details"
    )
    details = json.dumps(shown_card.blocks, ensure_ascii=False)
    show = bot.triage("show INC-1")
    for text in (details, show):
        assert "&lt;@U0CAROL&gt; &lt;!here¦x&gt; fix — &lt;!channel&gt;" in text
        assert "`drizzle/&lt;!everyone&gt;.sql` → &lt;!subteam^S1&gt;@x.io, @acme/x" in text
        for raw in ("<!channel>", "<!here", "<!everyone>", "<@U0CAROL>", "<!subteam^S1>"):
            assert raw not in text, raw
