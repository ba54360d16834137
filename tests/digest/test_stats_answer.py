"""/triage stats says what the weekly digest says (issue 16: "`/triage stats` shows the same"):
besides the windows per class and the flakiest tests, the week's new and recurring incidents, how
many classifications met the 20-minute rule, and the owners with the most open incidents."""

from __future__ import annotations

from typing import Any

from tests.factories import report, result
from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)


def run(run_id: str, *results: dict[str, Any]) -> dict[str, Any]:
    sent = report(*results, run_id=run_id)
    sent["run"]["sha"] = f"{int(run_id):040x}"
    return sent


def test_stats_shows_new_and_recurring_the_timed_rule_and_the_owners_with_most_open(bot: Bot) -> None:  # noqa: F811
    bot.send(
        run("401", result("BID-001", "TENANT-001"), result("BID-002", "NOTIF-001"), result("BID-003", "TENANT-002"))
    )
    for key in ("INC-1", "INC-2", "INC-3"):
        bot.card(key)
    bot.clock.shift(minutes=5)
    bot.triage("classify INC-1 infra")  # within the 20-minute rule
    bot.clock.shift(minutes=25)
    bot.triage("classify INC-2 drift")  # late
    bot.clock.shift(minutes=1)
    bot.send(run("402", result("BID-001", "TENANT-001")))  # INC-1 fails again

    answer = wait_for(lambda: (a := bot.triage("stats")) and "*1* recurring" in a and a, what="the recurrence")
    week = answer.split("*Last 30 days*")[0]
    assert "*3* new incidents · *1* recurring (failed again)" in week
    assert "• *All:* 3 opened" in week and " · 1/2 within 20 min" in week
    assert "*Most open incidents, by owner*" in answer
    playbook = bot.core.playbooks.default
    for failure_class in ("infra_ci", "data_schema_drift"):
        assert f"• {playbook.owner_target(failure_class).describe()}: " in answer
