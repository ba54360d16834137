"""Validation by evidence over real HTTP: after "fix merged", the scenario's next green runs on its
branch (reports sent to the bot like CI sends them) mark validation complete with their links as
proof; a red run in between starts the count again; passes elsewhere do not count."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from slackbot.db.models import Incident, TimelineEvent
from tests.factories import report, result
from tests.slack.conftest import Bot, bot, wait_for  # noqa: F401  (fixture)

RUNS = "https://github.com/acme/dispatch/actions/runs/"


def run(run_id: int, status: str, *, scenario: str = "BID-001", branch: str = "main") -> dict[str, Any]:
    """A nightly report of one run: the scenario's outcome, and an unrelated test that passed."""
    sent = report(
        result(scenario, "TENANT-001", status=status),
        result("NOS-002", "TENANT-002", status="passed"),
        run_id=str(run_id),
    )
    sent["run"].update(branch=branch, sha=f"{run_id:x}".ljust(40, "c"))
    return sent


def fixed(bot: Bot) -> None:  # noqa: F811
    """The failure opens INC-1; its owner says the fix is merged."""
    bot.send(run(100, "failed"))
    bot.card("INC-1")
    answer = bot.triage("status INC-1 fix merged https://github.com/acme/dispatch/pull/42")
    assert "Fix merged" in answer
    wait_for(lambda: "0/3 green runs" in bot.card_text("INC-1"), what="the card awaiting validation")


def incident(bot: Bot) -> Incident:  # noqa: F811
    with Session(bot.core.engine) as session:
        found = session.get(Incident, 1)
        assert found is not None
        return found


def thread_text(bot: Bot) -> str:  # noqa: F811
    return "\n".join(m.text for m in bot.thread("INC-1"))


def test_three_green_runs_after_the_fix_complete_validation_with_their_links_as_proof(bot: Bot) -> None:  # noqa: F811
    fixed(bot)
    bot.send(run(101, "passed"))
    card = wait_for(lambda: "1/3 green runs" in (t := bot.card_text("INC-1")) and t, what="1/3 on the card")
    assert f"<{RUNS}101|run 101>" in card and "*Status:* Fix merged" in card
    bot.send(run(102, "passed"))
    bot.send(run(103, "passed"))

    card = wait_for(lambda: "*Validated* by 3" in (t := bot.card_text("INC-1")) and t, what="the validated card")
    assert "*Status:* Validation complete" in card
    assert all(f"<{RUNS}{n}|run {n}>" in card for n in (101, 102, 103))
    post = wait_for(lambda: "Validation complete" in (t := thread_text(bot)) and t, what="the milestone post")
    proof = f"3 green runs in a row on main: {RUNS}101"
    assert proof in post and f"{RUNS}102" in post and f"{RUNS}103" in post
    assert "— triagebot" in post

    found = incident(bot)
    assert found.milestone == "validation_complete" and found.status == "open"
    assert found.record["validation_proof"].startswith(proof)
    with Session(bot.core.engine) as session:
        rows = session.exec(
            select(TimelineEvent).where(TimelineEvent.incident_id == 1).order_by(col(TimelineEvent.id))
        ).all()
    milestones = [(e.actor, e.data["milestone"]) for e in rows if e.kind == "milestone"]
    assert milestones == [("U0CAROL", "fix_merged"), ("triagebot", "validation_complete")]
    counted = [e.message for e in rows if e.kind == "validation_evidence"]
    assert counted == [f"Validation {n}/3: run {100 + n} passed" for n in (1, 2, 3)]

    # Validation is over: a later green run is not counted again.
    bot.send(run(104, "passed"))
    assert incident(bot).validation == found.validation


def test_only_the_scenarios_own_green_runs_on_its_branch_count_once_each_and_a_red_run_starts_again(
    bot: Bot,  # noqa: F811
) -> None:
    fixed(bot)
    bot.send(run(101, "passed"))
    bot.send(run(102, "failed"))
    card = wait_for(lambda: "interrupted by" in (t := bot.card_text("INC-1")) and t, what="the interrupted card")
    assert "0/3 green runs" in card and f"<{RUNS}102|run 102> (failed)" in card
    note = wait_for(
        lambda: next((m.text for m in bot.thread("INC-1") if "Validation interrupted" in m.text), None),
        what="the interruption in the thread",
    )
    assert f"{RUNS}102" in note and "after 1/3 green runs" in note and "starts again from 0/3" in note

    bot.send(run(103, "passed", branch="feature/retry"))  # the scenario, elsewhere
    bot.send(run(104, "passed", scenario="BID-002"))  # another scenario, here (run() adds NOS-002 too)
    again = run(105, "passed")
    assert bot.send(again)["duplicate"] is False
    assert bot.send(again)["duplicate"] is True  # CI retried the upload
    card = wait_for(lambda: "1/3 green runs" in (t := bot.card_text("INC-1")) and t, what="one green run")
    assert "run 105" in card and "run 103" not in card and "run 104" not in card

    bot.send(run(106, "passed"))
    bot.send(run(107, "passed"))
    wait_for(lambda: "*Validated* by 3" in bot.card_text("INC-1"), what="validation after the restart")
    proof = incident(bot).record["validation_proof"]
    assert all(f"{RUNS}{n} " in proof for n in (105, 106, 107)) and f"{RUNS}101" not in proof
    with Session(bot.core.engine) as session:
        rows = session.exec(select(TimelineEvent.message).where(TimelineEvent.kind == "validation_evidence")).all()
    assert [m.split(":")[0] for m in rows] == [
        "Validation 1/3",
        "Validation interrupted by run 102",
        "Validation 1/3",
        "Validation 2/3",
        "Validation 3/3",
    ]
