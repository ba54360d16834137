"""A bot over real HTTP with every route switched on (Slack through the local emulator, ingest,
both webhooks, the API), on SQLite and a real PostgreSQL, and helpers to sign what it is sent."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from slackbot.app import build_asgi, slack_client_for
from slackbot.db.models import Incident, Occurrence, OutboxItem, Run
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from tests.conftest import RUNBOOKS
from tests.fakes.pagerduty import running_pagerduty
from tests.slack.conftest import FAKE_BD, init_beads

INGEST_SECRET = "http-ingest-secret-5f1e"
WEBHOOK_SECRET = "http-github-secret-a9c2"
ALERTMANAGER_TOKEN = "http-alertmanager-token-77d0"
API_TOKEN = "http-api-token-31b8"
PAGING_KINDS = ("dm", "pagerduty", "pagerduty_follow", "run_escalation")


@dataclass
class Server:
    core: Runtime
    url: str
    emulator: SlackEmulator

    def report(self, body: bytes | dict[str, Any], *, signature: str | None = "auto") -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Triage-Signature"] = sign(raw, INGEST_SECRET) if signature == "auto" else signature
        return httpx.post(self.url + "/ingest/report", content=raw, headers=headers, timeout=30)

    def github(
        self, body: bytes | dict[str, Any], *, event: str | bytes = "workflow_run", signature: str | None = "auto"
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers: dict[str, str | bytes] = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
        }
        if signature is not None:
            headers["X-Hub-Signature-256"] = sign(raw, WEBHOOK_SECRET) if signature == "auto" else signature
        return httpx.post(self.url + "/webhooks/github", content=raw, headers=headers, timeout=30)

    def alertmanager(self, body: bytes | dict[str, Any], *, token: str | None = ALERTMANAGER_TOKEN) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.post(self.url + "/webhooks/alertmanager", content=raw, headers=headers, timeout=30)

    def rows(self) -> tuple[int, int, int, int]:
        """What a rejected input must leave unchanged: runs, incidents, occurrences, outbox rows."""
        with Session(self.core.engine) as session:
            counts = [session.scalar(select(func.count()).select_from(t)) for t in (Run, Incident, Occurrence)]
            outbox = session.scalar(select(func.count()).select_from(OutboxItem))
        return (counts[0] or 0, counts[1] or 0, counts[2] or 0, outbox or 0)

    def pages(self) -> int:
        with Session(self.core.engine) as session:
            return len(list(session.exec(select(OutboxItem).where(col(OutboxItem.kind).in_(PAGING_KINDS)))))


def wait_until(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
    return value


@contextlib.contextmanager
def running(db_url: str, tmp_path: Path, **overrides: Any) -> Iterator[Server]:
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty:
        values: dict[str, Any] = {
            "SLACK_BOT_TOKEN": emulator.bot_token,
            "SLACK_SIGNING_SECRET": emulator.signing_secret,
            "SLACK_API_URL": emulator.base_url,
            "TRIAGE_DATABASE_URL": db_url,
            "TRIAGE_RUNBOOKS_DIR": RUNBOOKS,
            "TRIAGE_INGEST_SECRET": INGEST_SECRET,
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TRIAGE_ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN,
            # Pages and beads succeed (a failed page would page a fallback later, on its own).
            # No GitHub: run jobs fail in the outbox, which these tests only count.
            "TRIAGE_BD_BIN": FAKE_BD,
            "BEADS_DIR": init_beads(tmp_path),
            "GITHUB_API_URL": "http://127.0.0.1:9",
            "PAGERDUTY_EVENTS_URL": pagerduty.url,
        }
        values.update(overrides)
        settings = Settings(**values)
        core = build_runtime(settings, slack=slack_client_for(settings))
        seed_workspace(emulator, core.playbooks)  # the people pages go to exist (no fallback pages)
        with serve(build_asgi(core)) as url:
            emulator.bot_url = url + "/slack/events"
            yield Server(core=core, url=url, emulator=emulator)
        core.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One bot per module and database, for tests whose input is refused: they compare the rows
    before and after, so they need no database of their own (a bot starts in about a second)."""
    tmp_path = tmp_path_factory.mktemp("shared")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'triage.db'}"
    else:
        db_url = request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "TRIAGE_API_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        with running(db_url, tmp_path) as started:
            yield started


@pytest.fixture
def server(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "TRIAGE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with running(db_url, tmp_path) as started:
        yield started
