"""Suspect changes that arrive after the incident's bead was filed (GitHub rate limited, or slow)
reach the bead as one comment; those that arrive first are in the bead's description."""

from __future__ import annotations

from typing import Any

from tests.beads.test_bead_filing import beads, incident
from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)
from tests.suggest.test_suspects_outside import GREEN, RED, green_then_red, suspects

MIGRATION = {"sha": "c" * 40, "author": "dev9", "message": "Add tenant migration"}


def _fail_since_green(bot: Bot) -> None:  # noqa: F811
    bot.github.add_comparison("acme/dispatch", GREEN, RED, [MIGRATION], ["drizzle/0042_tenant.sql"])
    green_then_red(bot)
    bot.card("INC-1")


def _comments(bot: Bot) -> list[str]:  # noqa: F811
    found: list[dict[str, Any]] = beads(bot)
    return [str(c.get("text", "")) for b in found for c in b.get("comments") or []]


def test_suspects_that_arrive_after_the_bead_is_filed_are_commented_on_it_once(bot: Bot) -> None:  # noqa: F811
    bot.github.fail_next(
        1, 403, message="API rate limit exceeded", headers={"x-ratelimit-remaining": "0", "retry-after": "60"}
    )
    _fail_since_green(bot)
    bot.triage("classify INC-1 flake")  # the flake policy files a bead at once
    (bead,) = wait_for(lambda: beads(bot), what="the bead")
    wait_for(lambda: incident(bot).bead_id == bead["id"], what="the incident to record its bead")
    assert "Add tenant migration" not in bead["description"]

    bot.clock.shift(seconds=61)  # GitHub's retry-after passes: the compare is fetched again
    wait_for(lambda: suspects(bot), what="suspects")
    (comment,) = wait_for(lambda: [c for c in _comments(bot) if "Add tenant migration" in c], what="the comment")
    assert "since the last green sha aaaaaaaa (1 commit)" in comment
    assert "`cccccccc` Add tenant migration (dev9)" in comment
    assert len(beads(bot)) == 1


def test_suspects_known_before_the_bead_is_filed_are_in_its_description_not_a_comment(bot: Bot) -> None:  # noqa: F811
    _fail_since_green(bot)
    wait_for(lambda: suspects(bot), what="suspects")
    bot.triage("classify INC-1 flake")
    (bead,) = wait_for(lambda: beads(bot), what="the bead")
    assert "Suspect changes since the last green sha aaaaaaaa (1 commit):" in bead["description"]
    assert "Add tenant migration" not in "".join(_comments(bot))
