"""Nothing user-sized blocks the event loop (issue 18): while the real bot, over real HTTP, parses a
100,000-testcase JUnit body or a hostile artifact, a heartbeat task on the server's own loop never
waits more than 100 ms past its wake-up, and ``/healthz`` keeps answering."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from slackbot.app import build_asgi
from slackbot.db.models import Occurrence
from slackbot.runtime import Runtime, build_runtime
from slackbot.server import freeze_startup_objects
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from tests.conftest import RUNBOOKS
from tests.fakes.github_api import FakeGitHub
from tests.integrations.conftest import OCTO_REPO, WEBHOOK_SECRET, workflow_run_payload, zip_bytes
from tests.slack.conftest import wait_for

SECRET = "loop-stall-ingest-secret"
RUN_ID = 289782451
BEAT = 0.005
MAX_STALL = 0.100


@dataclass
class Heartbeat:
    """ASGI wrapper: on the server's loop, a task that sleeps BEAT and records how late it woke."""

    app: Any
    worst: float = 0.0
    beats: int = 0
    task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._beat())
        await self.app(scope, receive, send)

    async def _beat(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(BEAT)
            self.worst = max(self.worst, time.perf_counter() - started - BEAT)
            self.beats += 1

    def reset(self) -> None:
        self.worst, self.beats = 0.0, 0


@dataclass
class HealthProbe:
    """A thread asking /healthz every 20 ms; the slowest answer, and whether any failed."""

    url: str
    slowest: float = 0.0
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HealthProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.02):
                started = time.perf_counter()
                try:
                    response = client.get(self.url + "/healthz")
                    if response.status_code != 200:
                        self.failures.append(str(response.status_code))
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.answered += 1


@dataclass
class Served:
    core: Runtime
    url: str
    heartbeat: Heartbeat
    github: FakeGitHub


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub(repos=(OCTO_REPO,)) as github:
        settings = Settings(
            TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
            TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
            TRIAGE_INGEST_SECRET=SECRET,
            GITHUB_API_URL=github.url,
            GITHUB_TOKEN=github.token,
            GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        core = build_runtime(settings)
        heartbeat = Heartbeat(build_asgi(core))
        # As `triagebot serve` starts (slackbot.server): what is loaded by then is frozen out of
        # the collector, or a full collection here would walk the whole test session's heap.
        freeze_startup_objects()
        try:
            with serve(heartbeat) as url:
                wait_for(lambda: heartbeat.beats > 10, what="the heartbeat")
                yield Served(core=core, url=url, heartbeat=heartbeat, github=github)
        finally:
            gc.unfreeze()
        core.engine.dispose()


def junit(cases: int, *, failing: int = 0) -> bytes:
    body = "".join(
        f'<testcase classname="a" name="BID-{i % 900 + 100:03d} c{i}"><failure/></testcase>'
        if i < failing
        else f'<testcase classname="a" name="BID-{i % 900 + 100:03d} c{i}"/>'
        for i in range(cases)
    )
    return f"<testsuites><testsuite>{body}</testsuite></testsuites>".encode()


def post_junit(url: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/xml", "X-Triage-Signature": sign(body, SECRET)}
    params = {"repository": "acme/dispatch", "runId": "77", "suite": "nightly"}
    return httpx.post(url + "/ingest/junit", content=body, params=params, headers=headers, timeout=120)


def test_a_100k_testcase_junit_body_does_not_stall_the_loop(served: Served) -> None:
    body = junit(100_000, failing=3)
    assert len(body) < 5 * 1024 * 1024
    served.heartbeat.reset()
    with HealthProbe(served.url) as probe:
        response = post_junit(served.url, body)
    assert response.status_code == 202, response.text
    assert response.json()["results"] == 100_000
    assert served.heartbeat.worst < MAX_STALL, f"the loop stalled {served.heartbeat.worst * 1000:.0f} ms"
    assert probe.answered > 5 and not probe.failures and probe.slowest < 1.0


def test_a_junit_body_over_100k_testcases_is_a_400(served: Served) -> None:
    response = post_junit(served.url, junit(100_001))
    assert response.status_code == 400
    assert "more than 100,000 testcases" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'<?xml version="1.0" encoding="x-unknown"?><testsuites/>', "encoding"),
        (
            b'<testsuites><testsuite><testcase name="a"><properties><property name="keyEntityIds" value="'
            + b"[" * 5000
            + b"]" * 5000
            + b'"/></properties></testcase></testsuite></testsuites>',
            "nested too deeply",
        ),
    ],
)
def test_junit_an_unknown_encoding_or_deep_property_json_is_a_400(served: Served, body: bytes, expected: str) -> None:
    response = post_junit(served.url, body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]


def four_shards_of_99k_cases() -> bytes:
    xml = junit(99_000)
    return zip_bytes({f"shard-{n}/junit.xml": xml for n in range(4)})


def eight_million_empty_objects() -> bytes:
    run = {"repository": "a/b", "runId": "1"}
    head = json.dumps({"schemaVersion": 1, "run": run})[:-1]
    return zip_bytes({"report.json": head + ', "results": [' + "{}," * 8_000_000 + "{}]}"})


def failed_run_with(served: Served, artifact: bytes, *, count: int, what: str) -> list[Occurrence]:
    """Deliver a failed run whose report artifact is ``artifact``, with /healthz asked throughout;
    once ``count`` occurrences are stored (and the job has had time to end), check that the loop
    never stalled and /healthz always answered. The occurrences."""
    served.github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", artifact)
    body = json.dumps(workflow_run_payload(conclusion="failure")).encode()
    headers = {
        "X-GitHub-Event": "workflow_run",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": sign(body, WEBHOOK_SECRET),
    }
    served.heartbeat.reset()
    with HealthProbe(served.url) as probe:
        assert httpx.post(served.url + "/webhooks/github", content=body, headers=headers).status_code == 202

        def occurrences() -> list[Occurrence]:
            with Session(served.core.engine) as session:
                found = list(session.exec(select(Occurrence)))
            return found if len(found) == count else []

        found = wait_for(occurrences, timeout=120, what=what)
        time.sleep(0.5)  # the job's end: what it held is freed after its rows are committed
    assert served.heartbeat.worst < MAX_STALL, f"the loop stalled {served.heartbeat.worst * 1000:.0f} ms"
    assert probe.answered > 5 and not probe.failures and probe.slowest < 1.0
    return found


@pytest.mark.parametrize(
    ("artifact", "expected"),
    [(four_shards_of_99k_cases, "more than 100,000 results"), (eight_million_empty_objects, "more than 100,000")],
)
def test_a_hostile_artifact_does_not_stall_the_loop(served: Served, artifact: Any, expected: str) -> None:
    data = artifact()
    assert len(data) < 4 * 1024 * 1024
    [harness] = failed_run_with(served, data, count=1, what="the harness incident")
    assert expected in (harness.message or ""), harness.message


def test_a_100k_testcase_artifact_is_ingested_without_stalling_the_loop(served: Served) -> None:
    """A run's artifact of 100,000 testcases, 3 failing: parsed in a child, ingested in a thread,
    and its results freed a piece at a time (all at once, they held the GIL for tens of ms)."""
    artifact = zip_bytes({"junit.xml": junit(100_000, failing=3)})
    found = failed_run_with(served, artifact, count=3, what="the three failures")
    assert sorted(o.test_name or "" for o in found) == ["BID-100 c0", "BID-101 c1", "BID-102 c2"]
