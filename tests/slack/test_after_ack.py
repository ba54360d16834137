"""Work after an ack yields to arriving Slack requests, and is never dropped.

A click's change is recorded in the inbox before its ack; the inbox's applier waits for requests
to pause (or for the after-ack bound) before applying it, unless someone waits for the outcome
(a command, a form). Stopping applies what is recorded and sends pending answers without waiting
for a pause. Real asyncio with a 20 ms quiet interval; nothing here asserts how long a step took
(the machine may be loaded): each test waits for what it expects with a deadline, and checks what
must not have happened yet while requests were still arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.engine import Engine

from slackbot.after_ack import AckFirst
from slackbot.app import build_asgi, slack_client_for
from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.domain.changes import Classify
from slackbot.emulator import SlackEmulator
from slackbot.emulator.actor import ActorResponse
from slackbot.emulator.seeding import seed_workspace
from slackbot.inbox import Inbox
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from tests.factories import report, result
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import running_pagerduty
from tests.inbox.helpers import CLASSES, Told, classified, inbox_for, open_incidents, request, rows
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, ShiftClock, bot_settings, wait_for


@contextlib.contextmanager
def bot_under_a_burst(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **update: Any) -> Iterator[Bot]:
    """A served bot whose work after acks waits for two seconds of quiet (a loaded machine's gaps
    between the arrivals of a burst stay well under it), and an outsider who can flood it."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty, FakeGitHub(repos=("acme/dispatch",)) as github:
        settings = bot_settings(tmp_path, emulator, pagerduty, github).model_copy(
            update={"after_ack_quiet": 2.0, "after_ack_max_delay": 60.0, **update}
        )
        clock = ShiftClock()
        core = build_runtime(settings, slack=slack_client_for(settings), clock=clock)
        seed_workspace(emulator, core.playbooks)
        emulator.add_user(OUTSIDER, "outsider")
        with serve(build_asgi(core)) as url:
            emulator.bot_url = url + "/slack/events"
            yield Bot(core=core, clock=clock, emulator=emulator, pagerduty=pagerduty, github=github, url=url)


@contextlib.contextmanager
def outsider_reads(emulator: SlackEmulator) -> Iterator[None]:
    """Another person's ``/triage help``, each acked before the next, for as long as the block runs."""
    burst_over = threading.Event()

    def keep_arriving() -> None:
        while not burst_over.is_set():
            assert emulator.slash_command(OUTSIDER, NIGHTLY, "help").status == 200

    arrivals = threading.Thread(target=keep_arriving)
    arrivals.start()
    try:
        yield
    finally:
        burst_over.set()
        arrivals.join()


async def keep_arriving(gate: AckFirst, until: Callable[[], bool], every: float = 0.005) -> None:
    while not until():
        gate.arrived()
        await asyncio.sleep(every)


async def settled(engine: Engine, count: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(row.state != "pending" for row in await asyncio.to_thread(rows, engine)) >= count:
            return True
        await asyncio.sleep(0.01)
    return False


def states(engine: Engine) -> list[str]:
    return [row.state for row in rows(engine)]


def running(inbox: Inbox, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(inbox.run(stop))


def test_a_change_waits_while_requests_arrive_and_is_applied_once_they_pause(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident] = open_incidents(sqlite_engine, playbooks, clock, 1)
    # A second of quiet: a loaded machine's scheduling gaps between arrivals stay well under it (a
    # quarter second was once exceeded at load 4.6 on two cores).
    gate = AckFirst(quiet=1.0, max_delay=60.0)
    inbox = inbox_for(sqlite_engine, playbooks, clock, gate=gate)

    async def scenario() -> tuple[list[str], list[str]]:
        stop = asyncio.Event()
        task = running(inbox, stop)
        burst_over = False
        arrivals = asyncio.create_task(keep_arriving(gate, lambda: burst_over))
        await inbox.record(request(1, incident, Classify(CLASSES[0])))
        await asyncio.sleep(0.3)  # not synchronisation: how long the burst goes on after the click
        during = await asyncio.to_thread(states, sqlite_engine)  # read while the acks still come
        burst_over = True
        await arrivals
        assert await settled(sqlite_engine, 1)
        stop.set()
        await task
        return during, await asyncio.to_thread(states, sqlite_engine)

    during, after = asyncio.run(scenario())
    assert during == ["pending"] and after == ["done"]


def test_a_change_is_applied_after_the_bound_even_if_requests_never_pause(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident] = open_incidents(sqlite_engine, playbooks, clock, 1)
    gate = AckFirst(quiet=0.02, max_delay=0.15)
    inbox = inbox_for(sqlite_engine, playbooks, clock, gate=gate)

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        task = running(inbox, stop)
        await inbox.record(request(1, incident, Classify(CLASSES[0])))
        applied: list[bool] = []

        async def watch() -> None:
            applied.append(await settled(sqlite_engine, 1))

        watcher = asyncio.create_task(watch())
        await keep_arriving(gate, watcher.done)  # requests never pause while we wait
        stop.set()
        await task
        assert applied == [True]
        return await asyncio.to_thread(states, sqlite_engine)

    assert asyncio.run(scenario()) == ["done"]


def test_a_command_someone_waits_for_is_applied_during_a_burst(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident] = open_incidents(sqlite_engine, playbooks, clock, 1)
    gate = AckFirst(quiet=0.02, max_delay=60.0)
    inbox = inbox_for(sqlite_engine, playbooks, clock, gate=gate)

    async def scenario() -> str | None:
        stop = asyncio.Event()
        task = running(inbox, stop)
        asked = request(1, incident, Classify(CLASSES[0]))
        await inbox.record(asked, urgent=True)
        waiting = asyncio.ensure_future(inbox.outcome(asked.key, 10))
        await keep_arriving(gate, waiting.done)
        stop.set()
        await task
        applied = await waiting
        return applied.state if applied else None

    assert asyncio.run(scenario()) == "done"


def test_stopping_applies_recorded_changes_and_sends_answers_without_waiting_for_a_pause(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident] = open_incidents(sqlite_engine, playbooks, clock, 1)
    gate = AckFirst(quiet=0.25, max_delay=600.0)
    inbox = inbox_for(sqlite_engine, playbooks, clock, gate=gate)
    told = inbox.answer
    assert isinstance(told, Told)

    async def scenario() -> tuple[list[str], list[str]]:
        stop = asyncio.Event()
        task = running(inbox, stop)
        finished = False
        arrivals = asyncio.create_task(keep_arriving(gate, lambda: finished))
        await inbox.record(request(1, incident, Classify(CLASSES[0])))
        await inbox.record(request(2, incident, Classify(CLASSES[0])))  # no change: answered
        before = await asyncio.to_thread(states, sqlite_engine)
        # With a 600 s bound and requests still arriving, only stopping can apply them now.
        await inbox.close(timeout=60)
        finished = True
        await arrivals
        stop.set()
        await task
        return before, await asyncio.to_thread(states, sqlite_engine)

    before, after = asyncio.run(scenario())
    assert before == ["pending", "pending"] and after == ["done", "done"]
    assert [url for url, _ in told.answers] == ["https://r/2"]


class Capture:
    """Stands in for a Socket Mode link so the emulator's actor hands over the click it would send."""

    connected = True

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def deliver(self, type: str, payload: dict[str, Any], **_: Any) -> ActorResponse:
        self.payloads.append(json.loads(json.dumps(payload)))
        return ActorResponse(status=200, body="", json=None)


def test_a_click_slack_delivers_twice_is_acked_twice_and_applied_once(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001")))
    card = bot.card("INC-1")
    actor = bot.emulator.actor
    capture = actor.socket = Capture()
    try:
        for chosen in ("algorithm_regression", "data_schema_drift"):
            bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", chosen)
    finally:
        actor.socket = None
    first, second = capture.payloads
    for payload in (first, first, second, first):  # the first click delivered again, before and after
        body = f"payload={quote(json.dumps(payload))}".encode()
        assert actor.deliver(body, content_type="application/x-www-form-urlencoded", sent=payload).status == 200
    timeline = wait_for(
        lambda: (t := bot.triage("timeline INC-1")).count("lassified ") >= 2 and t, what="both classifications"
    )
    assert re.findall(r"(?:Classified|Reclassified) (\w+)", timeline) == ["algorithm_regression", "data_schema_drift"]


def test_a_read_command_is_answered_once_slack_requests_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``/triage list`` is acked at once and its answer (a query, rendering, a response_url post)
    follows when requests pause: under a burst of commands the bot acks at Bolt's pace instead of
    sharing its core with the answers (bench/ack_latency.py's command row)."""
    with bot_under_a_burst(tmp_path, monkeypatch) as bot:
        emulator = bot.emulator
        with outsider_reads(emulator):
            acked = emulator.slash_command(RESPONDER, NIGHTLY, "list")
            time.sleep(0.5)  # not synchronisation: how long the burst goes on after the command
            during = list(emulator.ephemerals(RESPONDER))
        answer = wait_for(lambda: emulator.ephemerals(RESPONDER), what="the answer to /triage list")
    assert acked.status == 200 and during == []
    assert "open incidents" in str(answer[-1].get("text", "")).lower()


def test_a_backlog_being_applied_stops_between_transactions_when_requests_arrive_again(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    [incident] = open_incidents(sqlite_engine, playbooks, clock, 1)
    # A second of quiet: a loaded machine's scheduling gaps between the arrivals stay well under it.
    gate = AckFirst(quiet=1.0, max_delay=60.0)
    inbox = inbox_for(sqlite_engine, playbooks, clock, gate=gate)  # 16 requests per transaction
    burst_over = False
    arrivals: list[asyncio.Task[None]] = []

    def burst_resumes() -> None:  # the backlog's first transaction committed: Slack requests come again
        if not arrivals:
            gate.arrived()
            arrivals.append(asyncio.create_task(keep_arriving(gate, lambda: burst_over)))

    inbox.on_changed = burst_resumes

    async def scenario() -> list[str]:
        nonlocal burst_over
        for n in range(1, 41):  # recorded during a quiet moment: the applier starts at once
            await inbox.record(request(n, incident, Classify(CLASSES[n % 2])))
        stop = asyncio.Event()
        task = running(inbox, stop)
        await asyncio.sleep(0.5)  # not synchronisation: how long the burst goes on after it resumed
        during = await asyncio.to_thread(states, sqlite_engine)
        burst_over = True
        await asyncio.gather(*arrivals)
        assert await settled(sqlite_engine, 40)
        stop.set()
        await task
        return during

    during = asyncio.run(scenario())
    assert (during.count("done"), during.count("pending")) == (16, 24)
    assert classified(sqlite_engine, incident) == [CLASSES[n % 2] for n in range(1, 41)]


def test_a_person_replying_in_an_incident_thread_moves_its_reminder_back(bot: Bot) -> None:
    """The thread-activity middleware (a class, so clicks and commands pay nothing for it)."""
    from sqlmodel import Session, select

    from slackbot.db.models import Timer

    bot.send(report(result("BID-001", "TENANT-001")))
    card = bot.card("INC-1")

    def reminder_due() -> Any:
        with Session(bot.core.engine) as session:
            return session.exec(select(Timer.due_at).where(Timer.kind == "reminder")).first()

    before = wait_for(reminder_due, what="the reminder timer")
    bot.clock.shift(minutes=20)
    bot.emulator.actor.say(RESPONDER, NIGHTLY, "looking into it", thread_ts=card.ts)
    wait_for(lambda: reminder_due() > before, what="the reminder moved back")
    bot.emulator.actor.say(RESPONDER, NIGHTLY, "not in a thread")  # a channel message moves nothing
    moved = reminder_due()
    bot.triage("list")  # a later request, answered after the message's event was handled
    assert reminder_due() == moved


def test_a_flood_of_reads_past_the_backlog_is_told_to_ask_again_and_changes_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads wait for a pause in Slack's requests; under a flood that never pauses their line grew
    without end (16,405 answers queued after a 30 s bench run). Past TRIAGE_AFTER_ACK_BACKLOG
    waiting reads, a read is answered in its ack that the bot is busy; the reads in line are still
    answered once requests pause, and a change asked for during the flood is never refused so."""
    with bot_under_a_burst(tmp_path, monkeypatch, after_ack_backlog=3) as bot:
        emulator = bot.emulator
        with outsider_reads(emulator):
            wait_for(lambda: len(emulator.ephemerals(OUTSIDER)) > 0, what="a busy answer to the flood")
            refused = emulator.slash_command(RESPONDER, NIGHTLY, "list <!channel>")
            waiting = list(emulator.ephemerals(RESPONDER))
            changed = emulator.slash_command(RESPONDER, NIGHTLY, "classify INC-999 flake_concurrency")
            change_answer = wait_for(
                lambda: emulator.ephemerals(RESPONDER)[1:], what="the answer to a change during the flood"
            )
        helped = wait_for(
            lambda: [e for e in emulator.ephemerals(OUTSIDER) if "ahead of yours" not in str(e.get("text"))],
            what="the answers of the reads that waited in line",
        )
        again = emulator.slash_command(RESPONDER, NIGHTLY, "list")
        answer = wait_for(
            lambda: [e for e in emulator.ephemerals(RESPONDER) if "open incidents" in str(e.get("text")).lower()],
            what="the answer to /triage list once the flood is over",
        )
    assert refused.status == 200 and again.status == 200 and changed.status == 200
    assert len(waiting) == 1
    told = str(waiting[0]["text"])
    assert "answering" in told and "requests ahead of yours" in told and "Ask again in a few seconds" in told
    assert "Nothing was changed" in told
    assert "<!channel>" not in told and "&lt;!channel&gt;" in told  # untrusted text is escaped
    assert len(helped) >= 3  # the three reads in line were answered, not dropped
    assert len(answer) == 1
    assert "ahead of yours" not in str(change_answer[0].get("text")) and "INC-999" in str(change_answer[0].get("text"))


def test_the_same_answer_asked_for_again_and_again_during_a_burst_is_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Picking the class a card already shows changes nothing and is answered "already classified".
    Clicked over and over during a burst, every one of those answers waited for the pause (10,517
    were still queued after the bench's same-class row). The same words to the same person about
    the same incident are now said once, at the latest click; another person is still told."""
    with bot_under_a_burst(tmp_path, monkeypatch) as bot:
        emulator = bot.emulator
        bot.send(report(result("BID-001", "TENANT-001")))
        card = bot.card("INC-1")
        emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", "algorithm_regression")
        bot.wait_edits("INC-1", 1)
        with outsider_reads(emulator):
            for who in [RESPONDER] * 12 + [OUTSIDER] * 3:
                acked = emulator.select_option(who, NIGHTLY, card.ts, "incident_classify", "algorithm_regression")
                assert acked.status == 200
            during = list(emulator.ephemerals(RESPONDER))

        def refusals() -> list[str]:
            return [str(e.get("text")) for e in emulator.ephemerals(OUTSIDER) if "⛔" in str(e.get("text"))]

        def answered() -> bool:
            settled = all(row.state != "pending" for row in rows(bot.core.engine))
            return settled and bot.core.after_ack.idle

        # Rows are marked applied when their transaction commits, a moment before their answers
        # are handed on: wait for the answers, then for nothing more to be on its way.
        wait_for(lambda: emulator.ephemerals(RESPONDER) and refusals(), what="both people's answers")
        wait_for(answered, what="every click applied and answered")
        told = [str(e.get("text")) for e in emulator.ephemerals(RESPONDER)]
        refused = refusals()
    assert during == []  # the answers waited for the burst to end
    assert told == ["INC-1 is already classified Algorithm regression"]
    assert len(refused) == 1 and "nothing was changed" in refused[0]
