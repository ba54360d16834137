"""Socket Mode end to end: the bot connects to the emulator's WebSocket with its app token and
gets slash commands, clicks and events as envelopes, while ingest stays on HTTP in the same process.

The bot here is what ``triagebot serve --socket-mode`` runs (``build_asgi(core, socket_mode=True)``
under uvicorn), with no signing secret and no ``/slack/events`` route; one test runs the real
command in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from click.testing import CliRunner
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session, col, select

from slackbot.app import build_asgi, slack_client_for
from slackbot.cli import main as cli
from slackbot.config import load_playbooks
from slackbot.db.models import Incident, TimelineEvent
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import free_port, serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.fakes.github_api import FakeGitHub
from tests.fakes.pagerduty import running_pagerduty
from tests.slack.conftest import FAKE_BD, NIGHTLY, RESPONDER, SECRET, Bot, ShiftClock, init_beads, wait_for

APP_TOKEN = "xapp-1-A0TRIAGE-emulator"


@pytest.fixture
def socket_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with (
        SlackEmulator(socket_mode=True, app_token=APP_TOKEN) as emulator,
        running_pagerduty() as pagerduty,
        FakeGitHub(repos=("acme/dispatch",)) as github,
    ):
        settings = Settings(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_APP_TOKEN=APP_TOKEN,  # and no signing secret: nothing is signed over the socket
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
        clock = ShiftClock()
        core = build_runtime(settings, slack=slack_client_for(settings), clock=clock)
        seed_workspace(emulator, core.playbooks)
        with serve(build_asgi(core, socket_mode=True)) as url:
            assert emulator.bot_url is None  # nothing can reach the bot over HTTP as Slack
            emulator.wait_for_socket()
            yield Bot(core=core, clock=clock, emulator=emulator, pagerduty=pagerduty, github=github, url=url)
        # shutting the server down closed the socket
        wait_for(lambda: not emulator.socket or not emulator.socket.connected, what="the socket to close")


def test_the_bot_connects_with_its_app_token_and_serves_no_slack_http_route(socket_bot: Bot) -> None:
    (opened,) = socket_bot.emulator.calls("apps.connections.open")
    assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert opened.response is not None and opened.response["url"].startswith("ws://127.0.0.1:")
    assert httpx.post(socket_bot.url + "/slack/events", content=b"{}").status_code == 404


def test_ingest_over_http_and_triage_list_over_the_socket_in_one_process(socket_bot: Bot) -> None:
    answer = socket_bot.send(report(result("BID-001", "TENANT-001"), result("SCH-002", "STATE-001")))
    assert len(answer["incidents"]) == 2
    socket_bot.card("INC-1")  # the outbox posted the cards through the Web API

    listed = socket_bot.triage("list")
    assert "Open incidents (2)" in listed and "INC-1" in listed and "INC-2" in listed
    assert socket_bot.emulator.socket is not None
    (envelope,) = socket_bot.emulator.socket.envelopes("slash_commands")
    assert envelope.acked and envelope.payload["text"] == "list"
    # the answer came the Socket Mode way too: through the command's response_url
    assert [c for c in socket_bot.emulator.calls("response_url") if "Open incidents" in json.dumps(c.body)]


def test_classify_select_over_the_socket_redraws_the_card_and_tells_the_owner(socket_bot: Bot) -> None:
    socket_bot.send(report(result("BID-002", "ASSIGN-001")))
    card = socket_bot.card("INC-1")
    response = socket_bot.emulator.select_option(
        RESPONDER, NIGHTLY, card.ts, "incident_classify", "algorithm_regression"
    )
    assert response.status == 200
    post = socket_bot.wait_thread("INC-1", 1)[0]
    assert "<!subteam^S0DOMAIN>" in post.text and "Algorithm regression" in post.text  # the owner, paged by id
    redrawn = socket_bot.wait_edits("INC-1", 1)
    assert "Algorithm regression" in json.dumps(redrawn.blocks)
    with Session(socket_bot.core.engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None and incident.failure_class == "algorithm_regression"
    assert socket_bot.emulator.socket is not None
    (envelope,) = socket_bot.emulator.socket.envelopes("interactive")
    assert envelope.payload["type"] == "block_actions" and envelope.acked


def test_quick_successive_clicks_apply_in_the_order_they_were_sent(socket_bot: Bot) -> None:
    socket_bot.send(report(result("SCH-004", "STATE-003", test_file="tests/integration/scheduling.test.ts")))
    card = socket_bot.card("INC-1")
    chosen = ["infra_ci", "data_schema_drift", "algorithm_regression", "data_schema_drift"]
    for failure_class in chosen:  # each returns at the ack, long before the change is applied
        socket_bot.emulator.select_option(RESPONDER, NIGHTLY, card.ts, "incident_classify", failure_class)

    def classes() -> list[str] | None:
        with Session(socket_bot.core.engine) as session:
            rows = session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == 1, col(TimelineEvent.kind).in_(["classified", "reclassified"]))
                .order_by(col(TimelineEvent.id))
            ).all()
        found = [str(row.data["class"]) for row in rows]
        return found if len(found) == len(chosen) else None

    assert wait_for(classes, what="four classifications") == chosen
    with Session(socket_bot.core.engine) as session:
        incident = session.get(Incident, 1)
        assert incident is not None and incident.failure_class == "data_schema_drift"


def test_events_arrive_over_the_socket_and_a_retry_is_handled_once(socket_bot: Bot) -> None:
    event = {"type": "app_home_opened", "user": RESPONDER, "channel": "D0HOME", "tab": "home"}
    assert socket_bot.emulator.send_event(event, event_id="Ev0SOCKET1").status == 200
    wait_for(lambda: socket_bot.emulator.calls("views.publish"), what="the home tab")
    # Slack's retry of the same event: retry_attempt in the envelope, still acked, not redone
    assert socket_bot.emulator.send_event(event, event_id="Ev0SOCKET1", retry_num=1).status == 200
    socket_bot.emulator.send_event(event, event_id="Ev0SOCKET2")
    wait_for(lambda: len(socket_bot.emulator.calls("views.publish")) == 2, what="the second publish")
    assert socket_bot.emulator.socket is not None
    retried = socket_bot.emulator.socket.envelopes("events_api")[1]
    assert retried.payload["event_id"] == "Ev0SOCKET1"
    assert len(socket_bot.emulator.calls("views.publish")) == 2


def test_the_bot_reconnects_when_slack_asks_it_to(socket_bot: Bot) -> None:
    socket = socket_bot.emulator.socket
    assert socket is not None
    socket.disconnect("refresh_requested")
    socket_bot.emulator.wait_for_socket(opened=2)
    wait_for(lambda: socket.connection_count == 1, what="the old socket to close")
    assert len(socket_bot.emulator.calls("apps.connections.open")) == 2  # a fresh URL, as Slack wants
    assert "Usage" in socket_bot.triage("help")


def test_connections_open_wants_the_app_token_and_a_url_serves_one_connection() -> None:
    with SlackEmulator(socket_mode=True, app_token=APP_TOKEN) as emulator:
        with pytest.raises(SlackApiError) as refused:
            WebClient(token=emulator.bot_token, base_url=emulator.base_url).apps_connections_open(
                app_token=emulator.bot_token
            )
        assert refused.value.response["error"] == "not_allowed_token_type"
        with pytest.raises(SlackApiError) as wrong:
            WebClient(base_url=emulator.base_url).apps_connections_open(app_token="xapp-1-wrong")
        assert wrong.value.response["error"] == "invalid_auth"
        url = WebClient(base_url=emulator.base_url).apps_connections_open(app_token=APP_TOKEN)["url"]
        first, second = asyncio.run(_connect_twice(url))
        assert first["type"] == "hello" and first["connection_info"]["app_id"] == "A0TRIAGE"
        assert second == 401  # the URL is used up: ask apps.connections.open for a new one


async def _connect_twice(url: str) -> tuple[dict[str, Any], int]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as socket:
            hello = await socket.receive_json(timeout=10)
        try:
            async with session.ws_connect(url):
                return hello, 101
        except aiohttp.WSServerHandshakeError as exc:
            return hello, exc.status


def test_without_a_connection_the_actor_says_how_to_reach_the_bot() -> None:
    with SlackEmulator(socket_mode=True, app_token=APP_TOKEN) as emulator:
        emulator.add_channel(NIGHTLY, "nightly")
        emulator.add_user(RESPONDER, "carol")
        with pytest.raises(RuntimeError, match="Socket Mode"):
            emulator.slash_command(RESPONDER, NIGHTLY, "list")


def test_serve_socket_mode_without_an_app_token_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-emulator")
    outcome = CliRunner().invoke(cli, ["serve", "--socket-mode", "--port", "0"])
    assert outcome.exit_code == 2
    assert "SLACK_APP_TOKEN" in outcome.output


def test_triagebot_serve_socket_mode_process_answers_a_command_and_closes_its_socket(tmp_path: Path) -> None:
    with SlackEmulator(socket_mode=True, app_token=APP_TOKEN) as emulator:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "PAGERDUTY_", "GITHUB_"))}
        env.update(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
            TRIAGE_RUNBOOKS_DIR=str(RUNBOOKS),
            TRIAGE_INGEST_SECRET=SECRET,
            TRIAGE_BD_BIN=FAKE_BD,
        )
        triagebot = str(Path(sys.executable).parent / "triagebot")
        process = subprocess.Popen(
            [triagebot, "serve", "--socket-mode", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            seed_workspace(emulator, load_playbooks(RUNBOOKS))
            emulator.wait_for_socket(timeout=30)
            ready = wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="/healthz")
            assert ready == 200
            response = emulator.slash_command(RESPONDER, NIGHTLY, "help")
            assert response.status == 200
            answer = wait_for(lambda: emulator.ephemerals(RESPONDER), what="the help answer")
            assert "Usage" in answer[-1]["text"]
        finally:
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=30)[0].decode()
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -SIGTERM)
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output
        assert "abandoned by disconnect()" in output  # the lifespan closed the Socket Mode client
        assert emulator.socket is not None
        wait_for(lambda: not emulator.socket or not emulator.socket.connected, what="the socket to close")


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code
    except httpx.HTTPError:
        return None
