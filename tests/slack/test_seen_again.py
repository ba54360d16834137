"""The "seen again" posts name the run each recurrence came from, not the incident's latest run."""

from __future__ import annotations

from tests.factories import report, result
from tests.slack.conftest import Bot


def test_each_seen_again_post_names_the_run_it_was_seen_in(bot: Bot) -> None:
    failure = result("BID-001", "TENANT-001")
    # Slack answers nothing until the third run is in, so every post is rendered after the last
    # ingest: a post rendered from the incident's latest run would name rec-2 twice.
    with bot.emulator.workspace.lock:
        bot.send(report(failure, run_id="9187"))
        bot.send(report(failure, run_id="rec-1"))
        bot.send(report(failure, run_id="rec-2"))
    posts = [m.text for m in bot.wait_thread("INC-1", 2) if "Seen again" in m.text]
    assert len(posts) == 2, posts
    assert "runs/rec-1" in posts[0] and "rec-2" not in posts[0]
    assert "runs/rec-2" in posts[1] and "rec-1" not in posts[1]
    # and each says how many times it had been seen by then, not how many times by now
    assert "2 occurrences in all" in posts[0] and "3 occurrences in all" in posts[1]
