"""Bots on one database and one Slack emulator, started and stopped at will, on a clock a test sets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slackbot.app import build_asgi, slack_client_for
from slackbot.config import load_playbooks
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import FakePagerDuty, running_pagerduty
from tests.slack.conftest import OUTSIDER, Bot, ShiftClock, bot_settings


class SetClock(ShiftClock):
    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@dataclass
class Site:
    """What outlives one bot process: the database, Slack, the clock."""

    emulator: SlackEmulator
    pagerduty: FakePagerDuty
    github: FakeGitHub
    clock: SetClock
    settings: Settings

    @contextlib.contextmanager
    def bot(self) -> Iterator[Bot]:
        """One bot process (a replica, or the bot after a restart) until the block ends."""
        core = build_runtime(self.settings, slack=slack_client_for(self.settings), clock=self.clock)
        with serve(build_asgi(core)) as url:
            self.emulator.bot_url = url + "/slack/events"
            yield Bot(core, self.clock, self.emulator, self.pagerduty, self.github, url)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty, FakeGitHub(repos=("acme/dispatch",)) as github:
        settings = bot_settings(tmp_path, emulator, pagerduty, github)
        seed_workspace(emulator, load_playbooks(RUNBOOKS))
        emulator.add_user(OUTSIDER, "outsider")
        yield Site(emulator, pagerduty, github, SetClock(), settings)
