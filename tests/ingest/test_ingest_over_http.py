"""A large report over real HTTP (issue 17): the bot keeps answering while it parses and ingests
it, and a bad result deep in it is named by its own index."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from bench.ingest import report_json
from slackbot.app import build_asgi
from slackbot.db.models import Incident, Occurrence
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from tests.conftest import RUNBOOKS
from tests.slack.conftest import wait_for

SECRET = "ingest-over-http-secret"


@dataclass
class Recorder:
    """ASGI wrapper writing down, in the order the server's loop saw them, when the report's body
    was read and when each answer started."""

    app: Any
    events: list[str] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def receiving() -> Any:
            message = await receive()
            if path == "/ingest/report" and message["type"] == "http.request" and not message.get("more_body"):
                self.events.append("report read")
            return message

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.events.append(f"{path} {message['status']}")
            await send(message)

        await self.app(scope, receiving, sending)


@dataclass
class Bot:
    core: Runtime
    url: str
    recorder: Recorder


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    tmp: Path = tmp_path_factory.mktemp("ingest-http")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            patch.delenv(name, raising=False)
        settings = Settings(
            TRIAGE_DATABASE_URL=f"sqlite:///{tmp / 'triage.db'}",
            TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
            TRIAGE_INGEST_SECRET=SECRET,
            TRIAGE_MAX_BODY_BYTES=str(16 * 1024 * 1024),
        )
        core = build_runtime(settings)
        recorder = Recorder(build_asgi(core))
        with serve(recorder) as url:
            yield Bot(core, url, recorder)
        core.engine.dispose()


def post_report(url: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Triage-Signature": sign(body, SECRET)}
    return httpx.post(url + "/ingest/report", content=body, headers=headers, timeout=300)


def report(count: int, run_id: str, repository: str) -> dict[str, Any]:
    data = report_json(count, run_id)
    data["run"]["repository"] = repository
    return data


def test_healthz_answers_while_a_10k_result_report_is_parsed_and_ingested(bot: Bot) -> None:
    body = json.dumps(report(10_000, "loop-1", "acme/loop")).encode()
    answer: dict[str, httpx.Response] = {}
    sender = threading.Thread(target=lambda: answer.setdefault("report", post_report(bot.url, body)))
    bot.recorder.events.clear()
    sender.start()
    wait_for(lambda: "report read" in bot.recorder.events, timeout=60, what="the report's body to arrive")
    with httpx.Client(base_url=bot.url, timeout=30) as client:
        while sender.is_alive():
            assert client.get("/healthz").status_code == 200
    sender.join()

    assert answer["report"].status_code == 202, answer["report"].text
    assert answer["report"].json()["failures"] == 10_000
    events = bot.recorder.events
    working = events[events.index("report read") : events.index("/ingest/report 202")]
    # A loop blocked by the parse or the ingest answers no /healthz until the 202 has gone out.
    assert working.count("/healthz 200") >= 3, events[:20]
    with Session(bot.core.engine) as session:
        assert session.scalar(select(func.count()).select_from(Occurrence)) >= 10_000
        assert session.scalar(select(func.count()).where(Incident.repository == "acme/loop")) == 8_000


def test_a_bad_result_deep_in_a_large_report_is_named_by_its_index(bot: Bot) -> None:
    data = report(1_000, "bad-1", "acme/bad")
    data["results"][3]["status"] = "broken"
    data["results"][777]["status"] = "exploded"
    data["results"][999]["keyEntityIds"] = ["not", "an", "object"]
    response = post_report(bot.url, json.dumps(data).encode())

    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("results[3].status: Input should be 'passed', 'failed', 'error' or 'skipped'")
    assert "results[777].status: Input should be" in error
    assert "results[999].keyEntityIds: Input should be a valid dictionary" in error
    with Session(bot.core.engine) as session:  # nothing of it was stored
        assert session.scalar(select(func.count()).where(Incident.repository == "acme/bad")) == 0


def test_nul_and_lone_surrogates_deep_in_a_large_report_are_stored_as_replacement_characters(bot: Bot) -> None:
    data = report(1_000, "nul-1", "acme/nul")
    body = json.dumps(data).encode().replace(b"found 2", b"found \\u0000\\ud800 2", 1)
    response = post_report(bot.url, body)

    assert response.status_code == 202, response.text
    with Session(bot.core.engine) as session:
        messages = session.exec(
            select(Occurrence.message).join(Incident).where(Incident.repository == "acme/nul")
        ).all()
    assert "expected 1 row for org-a, found \ufffd\ufffd 2" in messages
    assert not any("\x00" in (m or "") for m in messages)
