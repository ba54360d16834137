"""A rerun that passes after the failure opened its incident (real CI: attempt 2 of the same run,
or another run of the same sha, reported later) moves the suggestion to the flake class: the card
and /api/incidents show the new reason, the timeline says why, a classified incident keeps its
class, and passes on another sha or branch say nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import report, result
from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)

GREEN, RED, OTHER = "a" * 40, "b" * 40, "c" * 40
REGRESSION = dict(message="AssertionError: expected 3 to equal 2")  # the playbook's regression pattern


def sent(bot: Bot, *results: dict[str, Any], run_id: str, sha: str, attempt: int = 1, branch: str = "main") -> None:  # noqa: F811
    body = report(*results, run_id=run_id, attempt=attempt)
    body["run"].update(sha=sha, branch=branch)
    bot.send(body)


def incidents(bot: Bot) -> dict[str, dict[str, Any]]:  # noqa: F811
    return {i["id"]: i for i in httpx.get(bot.url + "/api/incidents").json()["incidents"]}


def shown(bot: Bot) -> str:  # noqa: F811
    blocks = bot.card("INC-1").blocks
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)


def suggested(bot: Bot, key: str = "INC-1") -> int:  # noqa: F811
    return bot.triage(f"timeline {key}").count("Suggested class")


def test_a_rerun_that_passes_after_the_failure_suggests_a_flake_once_and_only_for_its_own_run(bot: Bot) -> None:  # noqa: F811
    sent(
        bot,
        result("SCH-003", "STATE-001", status="passed"),
        result("BID-001", "TENANT-001", status="passed"),
        run_id="299",
        sha=GREEN,
    )
    sent(
        bot,
        result("SCH-003", "STATE-001", **REGRESSION),
        result("BID-001", "TENANT-001", **REGRESSION),
        run_id="300",
        sha=RED,
    )
    opened = incidents(bot)
    assert opened["INC-1"]["suggestedClass"] == "algorithm_regression"
    assert "failing on every run since sha bbbbbbbb" in opened["INC-1"]["suggestedReason"]
    bot.triage("classify INC-2 algorithm")
    rows_at_open, classified_rows = suggested(bot), suggested(bot, "INC-2")

    # passes that are not a rerun of the failure: another sha on its branch, its sha on another branch
    sent(bot, result("SCH-003", "STATE-001", status="passed"), run_id="301", sha=OTHER)
    sent(bot, result("SCH-003", "STATE-001", status="passed"), run_id="302", sha=RED, branch="release")
    unchanged = incidents(bot)["INC-1"]
    assert (
        unchanged["suggestedClass"] == "algorithm_regression"
        and unchanged["suggestedReason"] == opened["INC-1"]["suggestedReason"]
    )
    assert suggested(bot) == rows_at_open

    rerun = (result("SCH-003", "STATE-001", status="passed"), result("BID-001", "TENANT-001", status="passed"))
    sent(bot, *rerun, run_id="300", sha=RED, attempt=2)
    sent(bot, *rerun, run_id="300", sha=RED, attempt=2)  # the same report again

    flake = incidents(bot)["INC-1"]
    assert flake["suggestedClass"] == "flake_concurrency"
    assert flake["suggestedReason"].startswith("passed on rerun attempt 2 of run 300")
    assert "failing on every run since" not in flake["suggestedReason"]  # the history, read again
    card = wait_for(lambda: "Flake/concurrency" in (text := shown(bot)) and text, what="the redrawn card")
    assert "*Suggested class:* Flake/concurrency (passed on rerun attempt 2 of run 300" in card
    timeline = bot.triage("timeline INC-1")
    assert (
        "Suggested class Flake/concurrency (" in timeline
        and "instead of Algorithm regression: passed on rerun attempt 2 of run 300" in timeline
    )
    assert suggested(bot) == rows_at_open + 1  # sent twice, said once

    classified = incidents(bot)["INC-2"]
    assert classified["class"] == "algorithm_regression" and classified["suggestedClass"] == "algorithm_regression"
    assert suggested(bot, "INC-2") == classified_rows


def test_another_run_of_the_same_sha_passing_suggests_a_flake(bot: Bot) -> None:  # noqa: F811
    sent(bot, result("SCH-003", "STATE-001", **REGRESSION), run_id="500", sha=RED)
    assert incidents(bot)["INC-1"]["suggestedClass"] == "algorithm_regression"
    sent(bot, result("SCH-003", "STATE-001", status="passed"), run_id="501", sha=RED)
    flake = incidents(bot)["INC-1"]
    assert flake["suggestedClass"] == "flake_concurrency", (flake["suggestedReason"], flake["confidence"])
    assert flake["suggestedReason"].startswith("failed and passed on the same sha bbbbbbbb")


def test_a_rerun_that_opens_a_new_failure_still_sees_the_pass_of_an_earlier_one(bot: Bot) -> None:  # noqa: F811
    # The new failure makes the ingest read the branch's reports for its suggestion; the rerun
    # lookup is skipped only when those reports hold no earlier run of this sha or attempt.
    sent(bot, result("SCH-003", "STATE-001", **REGRESSION), run_id="600", sha=RED)
    sent(
        bot,
        result("SCH-003", "STATE-001", status="passed"),
        result("BID-001", "TENANT-001", **REGRESSION),
        run_id="600",
        sha=RED,
        attempt=2,
    )
    found = incidents(bot)
    assert found["INC-1"]["suggestedClass"] == "flake_concurrency", found["INC-1"]["suggestedReason"]
    assert found["INC-1"]["suggestedReason"].startswith("passed on rerun attempt 2 of run 600")
    assert found["INC-2"]["suggestedClass"] == "algorithm_regression"
