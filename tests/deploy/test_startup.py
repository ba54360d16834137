"""Starting the bot against a real workspace: a wrong or missing Slack token stops ``serve`` in
one line, ``--no-slack`` runs ingest only, and /readyz names every dependency."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from slackbot.app import build_asgi, slack_client_for
from slackbot.emulator import SlackEmulator
from slackbot.runtime import build_runtime
from slackbot.server import check_slack_at_start
from slackbot.serving import free_port, serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator() as emulator:
        yield emulator


def serve_process(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_"))}
    return subprocess.run(
        [TRIAGEBOT, "serve", "--port", str(free_port()), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_serve_with_a_token_slack_rejects_exits_with_one_line(slack: SlackEmulator, tmp_path: Path) -> None:
    result = serve_process(
        {
            "SLACK_BOT_TOKEN": "xoxb-revoked",
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": slack.base_url,
            "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "triagebot: Slack rejected SLACK_BOT_TOKEN (auth.test: invalid_auth): copy the Bot User OAuth Token "
        "(xoxb-…) again from the app's OAuth & Permissions page (reinstall the app if it was revoked), "
        "or run with --no-slack"
    ]
    assert [c.status for c in slack.calls("auth.test")][-1:] == [200]  # Slack's error rides a 200, as in Slack
    assert not (tmp_path / "bot.db").exists()  # nothing started


def refusal(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``serve`` prints before it would start (the runbook check before it is tested above)."""
    with pytest.raises(SystemExit) as exited:
        check_slack_at_start(settings, socket_mode=False)
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


def test_serve_without_a_token_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(Settings(SLACK_BOT_TOKEN=None, SLACK_SIGNING_SECRET="x"), capsys)
    assert line.startswith("triagebot: SLACK_BOT_TOKEN is not set: ") and "--no-slack" in line


def test_serve_without_a_signing_secret_in_http_mode_says_so(
    slack: SlackEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(SLACK_BOT_TOKEN=slack.bot_token, SLACK_API_URL=slack.base_url, SLACK_SIGNING_SECRET=None)
    assert refusal(settings, capsys).startswith("triagebot: SLACK_SIGNING_SECRET is not set: ")


def _bot(settings: Settings) -> Iterator[str]:
    runtime = build_runtime(settings, slack=slack_client_for(settings))
    with serve(build_asgi(runtime)) as url:
        yield url


@pytest.fixture
def ingest_only(tmp_path: Path) -> Iterator[str]:
    """``triagebot serve --no-slack`` with a Slack token in the environment it must ignore."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_"))}
    env = {**base, "SLACK_BOT_TOKEN": "xoxb-ignored", "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    process = subprocess.Popen(
        [TRIAGEBOT, "serve", "--no-slack", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while not _answers(url + "/healthz"):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "serve --no-slack never answered /healthz"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_ingest_only_answers_slack_with_503_and_a_reason_and_is_ready(ingest_only: str) -> None:
    answer = httpx.post(ingest_only + "/slack/events", content=b"{}")
    assert answer.status_code == 503
    assert answer.json() == {"error": "Slack is disabled on this bot (triagebot serve --no-slack): it runs ingest only"}
    ready = httpx.get(ingest_only + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["database"] == "ok" and body["slack"] == "disabled (serve --no-slack)"
    assert set(body) >= {"database", "slack", "bd", "pagerduty", "github"}
    assert body["pagerduty"] == "configured (5 routing key(s))" and body["github"].startswith("no token")


def test_readyz_is_not_ready_when_slack_refuses_the_token(slack: SlackEmulator, tmp_path: Path) -> None:
    """The token was revoked after start: /readyz says so instead of "ready" while cards die."""
    settings = Settings(
        TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
        SLACK_BOT_TOKEN="xoxb-revoked",
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_API_URL=slack.base_url,
    )
    for url in _bot(settings):
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["slack"] == "error: auth.test: invalid_auth"
        assert ready.json()["database"] == "ok"


def test_readyz_names_the_workspace_when_slack_accepts_the_token(slack: SlackEmulator, tmp_path: Path) -> None:
    settings = Settings(
        TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=slack.signing_secret,
        SLACK_API_URL=slack.base_url,
    )
    for url in _bot(settings):
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["slack"].startswith("ok: ")
