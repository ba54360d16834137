"""``kill -9`` right after a burst of acked clicks loses none of them and applies none twice.

The bot runs as ``triagebot serve`` (SQLite file) against the Slack emulator, whose actor sends
signed clicks exactly as Slack does. Clicks alternate each card's class, so every click is a change
a responder can see: one timeline row each, in the order they were clicked. The first part of the
burst is applied before the kill (marked done: a restart must not apply it again); the rest is
acked and still recorded when the process is killed (a restart must apply it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from slackbot.client import send_report
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine
from slackbot.db.models import InboxItem, Incident
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.outbox.slack_deliveries import is_posted
from slackbot.serving import free_port
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.inbox.helpers import CLASSES

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")
CHANNEL, RESPONDER, SECRET = "C0NIGHTLY", "U0CAROL", "kill-test-secret"
CARDS, CLICKS = 20, 10  # per card; the bench (bench/ack_latency.py --kill) clicks 1,000 times on 50


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class BotProcess:
    """``triagebot serve`` in a process of its own, started and killed like a deployment would be."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [TRIAGEBOT, "serve", "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab")
        )
        self.log = log

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the bot exited: {log.read_text()[-3000:]}")
            try:
                return httpx.get(self.url + "/healthz", timeout=1, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "the bot to start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(rate_limit_per_channel=0) as emulator:
        yield emulator


def test_kill_9_after_a_burst_of_acked_clicks_loses_none_and_doubles_none(
    slack: SlackEmulator, playbooks: Playbooks, tmp_path: Path
) -> None:
    seed_workspace(slack, playbooks)
    database = tmp_path / "triage.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_"))}
    env.update(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_API_URL=slack.base_url,
        TRIAGE_DATABASE_URL=f"sqlite:///{database}",
        TRIAGE_RUNBOOKS_DIR=str(RUNBOOKS),
        TRIAGE_INGEST_SECRET=SECRET,
        TRIAGE_BD_BIN=str(Path(sys.executable).parent / "triagebot-fake-bd"),
        BEADS_DIR=str(tmp_path / ".beads"),
        PAGERDUTY_EVENTS_URL="http://127.0.0.1:9/enqueue",
        TRIAGE_LANE_RATE="1000",  # the emulator's rate limit is off: cards come at once
        # Changes wait for a 2 s pause in the clicks: the second part of the burst is surely still
        # recorded and not applied when it is killed, however loaded this machine is.
        TRIAGE_AFTER_ACK_QUIET="2",
        TRIAGE_AFTER_ACK_MAX_DELAY="600",
        TRIAGE_INBOX_POLL="0.2",
    )
    log = tmp_path / "bot.log"
    bot = BotProcess(env, log)
    try:
        slack.bot_url = bot.url + "/slack/events"
        failures = [result(f"BID-{n:03d}", "TENANT-001", test_name=f"case {n}") for n in range(1, CARDS + 1)]
        send_report(json.dumps(report(*failures)).encode(), bot.url, SECRET)
        engine = make_engine(f"sqlite:///{database}")

        def cards() -> dict[int, str] | None:
            with Session(engine) as session:
                # A card still being posted holds a claim marker in card_ts, not a message ts.
                found = {i.id or 0: i.card_ts or "" for i in session.exec(select(Incident)) if is_posted(i.card_ts)}
            return found if len(found) == CARDS else None

        card_ts: dict[int, str] = wait_for(cards, "the cards")
        clicked: dict[int, list[str]] = {incident: [] for incident in card_ts}

        def click_card(incident: int, clicks: range) -> None:
            """One person's clicks on one card, each after the previous one's ack (their order)."""
            for n in clicks:
                chosen = CLASSES[n % 2]
                response = slack.select_option(RESPONDER, CHANNEL, card_ts[incident], "incident_classify", chosen)
                assert response.status == 200, response.body
                clicked[incident].append(chosen)

        def burst(clicks: range) -> None:
            with ThreadPoolExecutor(8) as pool:
                for future in [pool.submit(click_card, incident, clicks) for incident in card_ts]:
                    future.result()

        def inbox() -> list[InboxItem]:
            with Session(engine) as session:
                return list(session.exec(select(InboxItem)))

        burst(range(CLICKS // 2))
        wait_for(lambda: all(row.state == "done" for row in inbox()), "the first part to be applied")
        burst(range(CLICKS // 2, CLICKS))
        bot.kill()  # right after the last ack
        at_kill = inbox()
        assert len(at_kill) == CARDS * CLICKS  # every acked click is a row
        assert sum(row.state == "pending" for row in at_kill) == CARDS * CLICKS // 2

        bot = BotProcess(env, log)  # a restart, on the same database
        slack.bot_url = bot.url + "/slack/events"
        wait_for(lambda: all(row.state == "done" for row in inbox()), "the recorded clicks to be applied")

        for incident, ts in card_ts.items():
            # as a responder sees it: /triage timeline, every click once, in the order clicked
            answered = len(slack.ephemerals(RESPONDER))
            assert slack.slash_command(RESPONDER, CHANNEL, f"timeline INC-{incident}").status == 200
            text = wait_for(
                lambda n=answered: len(e := slack.ephemerals(RESPONDER)) > n and str(e[-1].get("text", "")),
                "the timeline",
            )
            assert re.findall(r"(?:Classified|Reclassified) (\w+)", text) == clicked[incident], text
            label = playbooks.default.classes[clicked[incident][-1]].label
            wait_for(lambda t=ts, want=label: want in json.dumps(card_of(slack, t)), "the card to show the last class")
        engine.dispose()
    finally:
        bot.stop()


def card_of(slack: SlackEmulator, ts: str) -> list[dict[str, Any]]:
    return next((m.blocks for m in slack.messages(CHANNEL) if m.ts == ts), [])
