"""A running bot (real HTTP) wired to the local Slack emulator and a fake PagerDuty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.emulator.state import Message
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import FakePagerDuty, running_pagerduty

SECRET = "slack-test-ingest-secret"
FAKE_BD = str(Path(sys.executable).parent / "triagebot-fake-bd")


def init_beads(tmp_path: Path) -> Path:
    """A real beads workspace, initialised the way a server would (git-free, non-interactive)."""
    beads_dir = tmp_path / ".beads"
    env = {**os.environ, "BEADS_DIR": str(beads_dir)}
    subprocess.run(
        [FAKE_BD, "init", "--prefix", "tb", "--quiet", "--non-interactive", "--skip-hooks", "--skip-agents"],
        check=True,
        env=env,
        capture_output=True,
    )
    return beads_dir


SHOW_DETAILS, HIDE_DETAILS = "incident_details", "incident_hide_details"
NIGHTLY = "C0NIGHTLY"
RESPONDER = "U0CAROL"
OUTSIDER = "U0OUTSIDER"


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class ShiftClock:
    """Real time plus an offset: the server keeps running normally while a test jumps ahead."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def shift(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Bot:
    core: Runtime
    clock: ShiftClock
    emulator: SlackEmulator
    pagerduty: FakePagerDuty
    github: FakeGitHub
    url: str

    def send(self, report: dict[str, Any]) -> dict[str, Any]:
        return send_report(json.dumps(report).encode(), self.url, SECRET)

    def cards(self, channel: str = NIGHTLY) -> list[Message]:
        return [m for m in self.emulator.messages(channel) if m.blocks and m.blocks[0].get("type") == "header"]

    def card(self, key: str, channel: str = NIGHTLY) -> Message:
        def find() -> Message | None:
            return next((m for m in self.cards(channel) if f"{key} " in m.blocks[0]["text"]["text"]), None)

        found: Message = wait_for(find, what=f"the card of {key}")
        return found

    def card_text(self, key: str, channel: str = NIGHTLY) -> str:
        return json.dumps(self.card(key, channel).blocks)

    def details_text(self, key: str, channel: str = NIGHTLY, user: str = RESPONDER) -> str:
        """The card with its details shown, opened the way a responder does: a click through the bot."""
        if HIDE_DETAILS not in self.card_text(key, channel):
            self.emulator.click_button(user, channel, self.card(key, channel).ts, SHOW_DETAILS)
            wait_for(lambda: HIDE_DETAILS in self.card_text(key, channel), what=f"the details of {key}")
        return self.card_text(key, channel)

    def thread(self, key: str, channel: str = NIGHTLY) -> list[Message]:
        return self.emulator.replies(channel, self.card(key, channel).ts)

    def wait_thread(self, key: str, count: int, channel: str = NIGHTLY) -> list[Message]:
        result: list[Message] = wait_for(
            lambda: len(r := self.thread(key, channel)) >= count and r, what=f"{count} replies"
        )
        return result

    def wait_edits(self, key: str, edits: int, channel: str = NIGHTLY) -> Message:
        found: Message = wait_for(lambda: (m := self.card(key, channel)).edited >= edits and m, what=f"{edits} edits")
        return found

    def triage(self, text: str, user: str = RESPONDER, channel: str = NIGHTLY) -> str:
        """Run a slash command and return what the bot answered (ephemeral, or in the channel)."""
        ephemeral_before = len(self.emulator.ephemerals(user))
        channel_before = len(self.emulator.messages(channel))
        response = self.emulator.slash_command(user, channel, text)
        assert response.status == 200, response.body

        def answer() -> str | None:
            ephemeral = self.emulator.ephemerals(user)
            if len(ephemeral) > ephemeral_before:
                return str(ephemeral[-1].get("text", ""))
            # an in-channel answer names who asked; other bot posts (run-level escalations) do not
            fresh = [
                m
                for m in self.emulator.messages(channel)[channel_before:]
                if not m.blocks and m.text.startswith(f"<@{user}>")
            ]
            return fresh[-1].text if fresh else None

        found: str = wait_for(answer, what=f"an answer to /triage {text}")
        return found


def bot_settings(tmp_path: Path, emulator: SlackEmulator, pagerduty: FakePagerDuty, github: FakeGitHub) -> Settings:
    """A bot on a SQLite file in ``tmp_path``, the shipped runbooks, the bd double and these fakes."""
    return Settings(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET=emulator.signing_secret,
        SLACK_API_URL=emulator.base_url,
        TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
        TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
        TRIAGE_INGEST_SECRET=SECRET,
        PAGERDUTY_EVENTS_URL=pagerduty.url,
        TRIAGE_BD_BIN=FAKE_BD,
        BEADS_DIR=init_beads(tmp_path),
        GITHUB_API_URL=github.url,
        GITHUB_TOKEN=github.token,
    )


@pytest.fixture
def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty, FakeGitHub(repos=("acme/dispatch",)) as github:
        settings = bot_settings(tmp_path, emulator, pagerduty, github)
        clock = ShiftClock()
        core = build_runtime(settings, slack=slack_client_for(settings), clock=clock)
        seed_workspace(emulator, core.playbooks)
        emulator.add_user(OUTSIDER, "outsider")
        with serve(build_asgi(core)) as url:
            emulator.bot_url = url + "/slack/events"
            yield Bot(core=core, clock=clock, emulator=emulator, pagerduty=pagerduty, github=github, url=url)
