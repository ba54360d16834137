"""A running bot (real HTTP) with every integration switched on: the local Slack emulator, a fake
GitHub API serving real zips, a fake PagerDuty, the GitHub webhook secret and the Alertmanager
token."""

from __future__ import annotations

import copy
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from slackbot.app import build_asgi, slack_client_for
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from tests.conftest import FIXTURES, RUNBOOKS
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import running_pagerduty
from tests.slack.conftest import FAKE_BD, OUTSIDER, SECRET, Bot, ShiftClock, init_beads

WEBHOOK_SECRET = "gh-webhook-test-secret"
ALERTMANAGER_TOKEN = "am-test-token"
OCTO_REPO = "octo-org/octo-repo"  # the repository in octokit's workflow_run examples
NOTIFIER_USER, NOTIFIER_BOT = "U0GHACTIONS", "B0GHACTIONS"  # routing.yml alert_sources


def workflow_run_payload(
    *, conclusion: str = "failure", name: str | None = None, attempt: int | None = None, **run: Any
) -> dict[str, Any]:
    """octokit's ``workflow_run.completed`` example, copied and edited where a test needs it."""
    payload: dict[str, Any] = json.loads((FIXTURES / "github-webhook-workflow_run-completed.payload.json").read_text())
    payload = copy.deepcopy(payload)
    payload["workflow_run"]["conclusion"] = conclusion
    if name is not None:
        payload["workflow_run"]["name"] = name
    if attempt is not None:
        payload["workflow_run"]["run_attempt"] = attempt
    payload["workflow_run"].update(run)
    return payload


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


@dataclass
class CiBot(Bot):
    def webhook(
        self,
        payload: dict[str, Any] | bytes,
        *,
        event: str = "workflow_run",
        delivery: str | None = None,
        secret: str = WEBHOOK_SECRET,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(body, secret),
        }
        return httpx.post(self.url + "/webhooks/github", content=body, headers=headers, timeout=10)

    def alertmanager(self, payload: dict[str, Any], *, token: str | None = ALERTMANAGER_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.url + "/webhooks/alertmanager", json=payload, headers=headers, timeout=10)


@contextmanager
def running_ci_bot(directory: Path) -> Iterator[CiBot]:
    """The bot and its fakes, in ``directory``; a context so one bot can serve a whole module."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        repos = ("acme/dispatch", OCTO_REPO)
        with SlackEmulator() as emulator, running_pagerduty() as pagerduty, FakeGitHub(repos=repos) as github:
            settings = Settings(
                SLACK_BOT_TOKEN=emulator.bot_token,
                SLACK_SIGNING_SECRET=emulator.signing_secret,
                SLACK_API_URL=emulator.base_url,
                TRIAGE_DATABASE_URL=f"sqlite:///{directory / 'triage.db'}",
                TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
                TRIAGE_INGEST_SECRET=SECRET,
                PAGERDUTY_EVENTS_URL=pagerduty.url,
                TRIAGE_BD_BIN=FAKE_BD,
                BEADS_DIR=init_beads(directory),
                GITHUB_API_URL=github.url,
                GITHUB_TOKEN=github.token,
                GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
                TRIAGE_ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
            )
            clock = ShiftClock()
            core = build_runtime(settings, slack=slack_client_for(settings), clock=clock)
            seed_workspace(emulator, core.playbooks)
            emulator.add_user(OUTSIDER, "outsider")
            emulator.add_user(NOTIFIER_USER, "github-actions", is_bot=True)
            with serve(build_asgi(core)) as url:
                emulator.bot_url = url + "/slack/events"
                yield CiBot(core=core, clock=clock, emulator=emulator, pagerduty=pagerduty, github=github, url=url)


@pytest.fixture
def ci_bot(tmp_path: Path) -> Iterator[CiBot]:
    with running_ci_bot(tmp_path) as bot:
        yield bot
