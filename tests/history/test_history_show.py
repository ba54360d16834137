"""A test's history, as a responder reads it in /triage show: how often it ran and failed on its
branch, how often it flipped, when it started failing and when it last passed (with links)."""

from __future__ import annotations

from tests.factories import report, result
from tests.slack.conftest import Bot, bot  # noqa: F401  (fixture)

SHAS = {"300": "a" * 40, "301": "b" * 40, "302": "c" * 40, "303": "d" * 40}


def test_show_names_the_first_failing_run_the_last_green_one_the_fail_rate_and_the_flips(bot: Bot) -> None:  # noqa: F811
    for run_id, status in (("300", "passed"), ("301", "failed"), ("302", "passed"), ("303", "failed")):
        sent = report(result("SCH-004", "STATE-003", status=status, message="expected 2 rows, got 3"), run_id=run_id)
        sent["run"]["sha"] = SHAS[run_id]
        bot.send(sent)
    bot.card("INC-1")

    shown = bot.triage("show INC-1")
    line = next((ln for ln in shown.splitlines() if ln.startswith("History on")), shown)
    assert line.startswith("History on `main`: 4 runs, fails 50% (2/4), 3 flips"), line
    assert "first failing <https://github.com/acme/dispatch/actions/runs/303|run 303> (sha `dddddddd`)" in line
    assert "last green <https://github.com/acme/dispatch/actions/runs/302|run 302> (sha `cccccccc`)" in line
