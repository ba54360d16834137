"""A bot over real HTTP (Slack emulator, fake PagerDuty, the bd double) serving every shipped
playbook, or a runbooks directory a test writes: each playbook is driven end to end the way its
team would drive it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import running_pagerduty
from tests.slack.conftest import FAKE_BD, SECRET, Bot, ShiftClock, init_beads

ALERTMANAGER_TOKEN = "playbooks-alertmanager-token"


class PlaybookBot(Bot):
    def send_junit(self, xml: bytes, **run: Any) -> dict[str, Any]:
        return send_report(xml, self.url, SECRET, params=run)

    def alert(self, payload: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/webhooks/alertmanager",
            json=payload,
            headers={"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"},
            timeout=10,
        )

    def thread_text(self, key: str, channel: str) -> str:
        return "\n".join(m.text + json.dumps(m.blocks or []) for m in self.thread(key, channel))

    def dms(self, user: str) -> list[str]:
        return [m.text for m in self.emulator.messages(self.emulator.dm_channel_id(user))]


@contextmanager
def running_bot(tmp_path: Path, runbooks: Path = RUNBOOKS) -> Iterator[PlaybookBot]:
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty, FakeGitHub(repos=("acme/cbdd",)) as github:
        settings = Settings(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=emulator.signing_secret,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
            TRIAGE_RUNBOOKS_DIR=runbooks,
            TRIAGE_INGEST_SECRET=SECRET,
            TRIAGE_ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
            PAGERDUTY_EVENTS_URL=pagerduty.url,
            TRIAGE_BD_BIN=FAKE_BD,
            BEADS_DIR=init_beads(tmp_path),
            GITHUB_API_URL=github.url,
            GITHUB_TOKEN=github.token,
            TRIAGE_LANE_RATE=50,
        )
        clock = ShiftClock()
        core = build_runtime(settings, slack=slack_client_for(settings), clock=clock)
        seed_workspace(emulator, core.playbooks)
        with serve(build_asgi(core)) as url:
            emulator.bot_url = url + "/slack/events"
            yield PlaybookBot(core=core, clock=clock, emulator=emulator, pagerduty=pagerduty, github=github, url=url)


@pytest.fixture
def bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaybookBot]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with running_bot(tmp_path) as running:
        yield running
