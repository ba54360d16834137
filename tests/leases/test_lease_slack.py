"""A flake's lease as responders meet it in Slack and in bd: the card and ``/triage show`` name
the owner and the due date, the bead carries both, and a lease that runs out says so in the
thread and on the card (the running bot, the Slack emulator, the fake bd, real HTTP)."""

from __future__ import annotations

from tests.beads.test_bead_filing import beads, incident
from tests.factories import report, result
from tests.slack.conftest import Bot, wait_for

FLAKE_OWNERS = "<!subteam^S0FLAKE>"  # @concurrency-owners, the flake class's owner


def test_the_lease_is_on_the_card_in_triage_show_and_in_the_bead_and_escalates_in_the_thread(bot: Bot) -> None:
    bot.send(report(result("ADV-002", "IDEMP-003", message="found 2 duplicate notifications")))
    bot.card("INC-1")
    bot.triage("classify INC-1 flake")

    (bead,) = wait_for(lambda: beads(bot), what="the flake's bead")
    lease = incident(bot).lease
    assert lease is not None
    assert bead["assignee"] == "@concurrency-owners"
    assert bead["due_at"].startswith(lease["due"][:19])  # the same moment, as bd keeps it
    assert bead["metadata"]["lease_owner"] == "@concurrency-owners"
    assert "Flake lease: @concurrency-owners until" in bead["description"]

    card = wait_for(lambda: "Flake lease" in (t := bot.card_text("INC-1")) and t, what="the lease on the card")
    assert f"*Flake lease:* {FLAKE_OWNERS} until <!date^" in card
    assert "rerun" not in card.lower()  # still no "rerun until green" button
    shown = bot.triage("show INC-1")
    assert f"Flake lease: {FLAKE_OWNERS} until <!date^" in shown

    bot.clock.shift(days=7, seconds=1)
    post = wait_for(
        lambda: [m for m in bot.thread("INC-1") if "Flake lease overdue" in m.text], timeout=30, what="the overdue post"
    )
    assert "<!subteam^S0LEADS>" in post[0].text and "still open" in post[0].text
    wait_for(lambda: "overdue, escalated" in bot.card_text("INC-1"), what="the card to say it is overdue")
