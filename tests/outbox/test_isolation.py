"""One slow destination holds back nothing but itself, and not for longer than its deadline.

Real sockets and a real bd child process: a storage host that trickles an artifact a byte at a
time, a PagerDuty or GitHub that never answers, a hung bd, a Slack channel whose calls hang. While
one of them holds its delivery, the cards, thread posts, DMs and pages of the other lanes go out;
the slow delivery is then given up at its total deadline (set small through the worker's
constructor) and retried with backoff. Worker pacing and backoff run on the injected clock; only
the deadlines are real time, because the sockets are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clients.bd import BdTracker
from slackbot.clients.github_actions import GitHubActions
from slackbot.clients.responders import Responders
from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Occurrence, OutboxItem
from slackbot.domain.changes import Actor, Classify, SetSeverity
from slackbot.domain.effects import EffectKind
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.incidents.core import IncidentCore
from slackbot.outbox.bead_deliveries import BeadDeliveries, TrackerPool
from slackbot.outbox.checklist_deliveries import ChecklistDeliveries
from slackbot.outbox.integration_deliveries import GitHubRunJobs
from slackbot.outbox.paging_deliveries import PagingDeliveries
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.worker import OutboxWorker
from slackbot.settings import Settings
from slackbot.simulation.pagerduty import FakePagerDuty, running_pagerduty
from slackbot.sources.github import GitHubRunService, WorkflowRun
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result
from tests.fakes.github_api import FakeGitHub, Response
from tests.integrations.conftest import OCTO_REPO, workflow_run_payload
from tests.outbox.slow_servers import BlackHole, StallingProxy, Trickle
from tests.slack.conftest import FAKE_BD, init_beads

NIGHTLY = "C0NIGHTLY"
RUN_ID = 289782451  # octokit's example run, the one workflow_run_payload describes
SLOW = 2.5  # the slow kind's deadline: the other deliveries land well within it
CAROL = "U0CAROL"  # a responder


async def until(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Wait for something a user would see; fail after ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


@asynccontextmanager
async def running(worker: OutboxWorker) -> AsyncIterator[None]:
    """The long-running loop, as the app's lifespan runs it."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, idle=0.05, grace=0.5))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    emulator: SlackEmulator
    playbooks: Playbooks
    pagerduty: FakePagerDuty
    slack: StallingProxy
    stack: ExitStack
    beads_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self, *kinds: str) -> list[OutboxItem]:
        with Session(self.engine) as session:
            query = select(OutboxItem).order_by(col(OutboxItem.id))
            if kinds:
                query = query.where(col(OutboxItem.kind).in_(kinds))
            return list(session.exec(query))

    def ingest(self, *results: dict[str, object]) -> None:
        IngestService(self.playbooks, self.clock).ingest_report(self.engine, parsed(*results, run_id="9187"))

    def change(self, *changes: object) -> None:
        for change in changes:
            IncidentCore(self.playbooks, self.clock).run(self.engine, 1, Actor(CAROL, "button"), change)

    def worker(
        self,
        *,
        deadlines: dict[str, float] | None = None,
        pagerduty_url: str | None = None,
        bd: BdTracker | None = None,
    ) -> OutboxWorker:
        """Every destination of an incident: Slack (through the proxy), PagerDuty, bd, GitHub issues."""
        client = AsyncWebClient(token=self.emulator.bot_token, base_url=self.slack.url + "/api/")
        worker = OutboxWorker(self.engine, self.clock, {}, worker_id="w1", lane_burst=20, deadlines=deadlines)
        worker.handlers.update(SlackDeliveries(self.engine, client, self.playbooks, self.clock, "w1").handlers())
        worker.handlers.update(ChecklistDeliveries(self.engine, client, self.playbooks).handlers())
        paging = PagingDeliveries(
            self.engine,
            client,
            self.playbooks,
            pagerduty_url=pagerduty_url or self.pagerduty.url,
            public_url="http://127.0.0.1:3000",
        )
        worker.handlers.update(paging.handlers())
        settings = Settings(TRIAGE_BD_BIN=FAKE_BD, BEADS_DIR=self.beads_dir, **self.settings)
        trackers = TrackerPool(settings)
        if bd is not None:
            trackers._bd = bd
        worker.handlers.update(BeadDeliveries(self.engine, self.playbooks, trackers, self.clock).handlers())
        return worker

    async def drain(self, worker: OutboxWorker) -> None:
        """Deliver everything due, the way ``triagebot simulate`` does: bounded steps, virtual time."""
        for _ in range(200):
            if not any(r.state in ("pending", "sending") for r in self.rows()):
                return
            await worker.step()
            self.clock.advance(1)
        raise AssertionError(f"not drained: {[(r.kind, r.state, r.last_error) for r in self.rows()]}")

    def thread(self) -> list[str]:
        (card,) = self.emulator.messages(NIGHTLY)
        return [m.text for m in self.emulator.replies(NIGHTLY, card.ts) if m.ts != card.ts]

    def dms(self, user: str) -> list[str]:
        return [m.text for m in self.emulator.messages(self.emulator.dm_channel_id(user))]


@pytest.fixture
def rig(sqlite_engine: Engine, playbooks: Playbooks, tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock()
    with ExitStack() as stack:
        emulator = stack.enter_context(SlackEmulator(clock=lambda: clock.now().timestamp()))
        seed_workspace(emulator, playbooks)
        pagerduty = stack.enter_context(running_pagerduty())
        proxy = stack.enter_context(StallingProxy(emulator.web_url, set()))
        yield Rig(sqlite_engine, clock, emulator, playbooks, pagerduty, proxy, stack, init_beads(tmp_path))


# -- a storage host trickling an artifact -------------------------------------------------------


async def test_a_trickling_artifact_download_holds_back_no_card_and_is_retried_at_its_deadline(rig: Rig) -> None:
    storage: Trickle = rig.stack.enter_context(Trickle(interval=1.0))
    github: FakeGitHub = rig.stack.enter_context(FakeGitHub(repos=(OCTO_REPO,)))
    github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", b"")

    @github.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
    def to_slow_storage(request: object) -> Response:  # GitHub's 302 to a pre-signed storage URL
        return Response(302, None, headers={"Location": f"{storage.url}/blob?sig=presigned"})

    service = GitHubRunService(rig.playbooks, rig.clock, IngestService(rig.playbooks, rig.clock))
    assert service.accept(rig.engine, "delivery-1", WorkflowRun.from_webhook(workflow_run_payload()))
    worker = rig.worker(deadlines={EffectKind.GITHUB_RUN: SLOW})
    actions = GitHubActions(github.url, github.token, rig.clock)
    worker.handlers.update(GitHubRunJobs(rig.engine, service, actions).handlers())

    async with running(worker):
        await until(lambda: storage.active == 1, "the artifact download to start")
        downloading = time.monotonic()
        rig.ingest(result("BID-001", "TENANT-001"))  # a new failure: its card goes to #nightly
        worker.wake()
        await until(lambda: rig.emulator.messages(NIGHTLY), "the new card")
        card_after = time.monotonic() - downloading
        (job,) = rig.rows(EffectKind.GITHUB_RUN)
        assert job.state == "sending" and storage.active == 1  # the card did not wait for the download

        await until(lambda: rig.rows(EffectKind.GITHUB_RUN)[0].state == "pending", "the download to be given up")
        given_up = time.monotonic() - downloading
        (job,) = rig.rows(EffectKind.GITHUB_RUN)
        assert job.attempts == 1 and f"not delivered within the {SLOW:g}s deadline" in (job.last_error or "")
        assert job.next_attempt_at > rig.clock.now()  # retried later, with backoff
        await until(lambda: storage.active == 0, "the download's connection to be closed")
    # Given up at the deadline (counted from the claim, a moment before the first byte), not after
    # the client's 30 s per read, nor after the million bytes the storage host promised.
    assert card_after < given_up < SLOW + 2.0
    print(f"card delivered {card_after * 1000:.0f} ms into the slow download; download given up at {given_up:.2f} s")


async def test_a_run_whose_storage_always_stalls_ends_as_an_incident_naming_the_budget(rig: Rig) -> None:
    """The job's own budget ends an attempt before the worker's deadline cancels it from outside,
    so spent retries still end where every failed run must: on a harness card."""
    storage: Trickle = rig.stack.enter_context(Trickle(interval=1.0))
    github: FakeGitHub = rig.stack.enter_context(FakeGitHub(repos=(OCTO_REPO,)))
    github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", b"")

    @github.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
    def to_slow_storage(request: object) -> Response:
        return Response(302, None, headers={"Location": f"{storage.url}/blob?sig=presigned"})

    service = GitHubRunService(rig.playbooks, rig.clock, IngestService(rig.playbooks, rig.clock))
    assert service.accept(
        rig.engine, "delivery-1", WorkflowRun.from_webhook(workflow_run_payload(conclusion="failure"))
    )
    worker = rig.worker(deadlines={EffectKind.GITHUB_RUN: SLOW})
    actions = GitHubActions(github.url, github.token, rig.clock)
    # two tries and no hours of retrying: the budget spent twice ends the job
    jobs = GitHubRunJobs(rig.engine, service, actions, attempts=2, budget=1.0, retry_for=timedelta(0))
    worker.handlers.update(jobs.handlers())

    async with running(worker):
        await until(lambda: rig.rows(EffectKind.GITHUB_RUN)[0].attempts == 1, "the first attempt to run out")
        rig.clock.advance(600)  # past the backoff
        worker.wake()
        await until(lambda: rig.rows(EffectKind.GITHUB_RUN)[0].state == "done", "the job to end", timeout=15)
    (job,) = rig.rows(EffectKind.GITHUB_RUN)
    assert job.attempts == 2 and "deadline" not in (job.last_error or "")
    with Session(rig.engine) as session:
        (occurrence,) = session.exec(select(Occurrence)).all()
    assert "reading the run took longer than 1 s (after 2 attempts)" in (occurrence.message or "")


# -- one slow destination among an incident's others ---------------------------------------------


def _sev1(rig: Rig) -> None:
    """SEV-1 pages the release maintainer and the owner (DM and PagerDuty each), posts in the
    thread, redraws the card and files the bead: one change, every kind of destination."""
    rig.change(SetSeverity("SEV-1"))


def _page_dms_arrived(rig: Rig) -> bool:
    paged = {str(r.payload["user"]) for r in rig.rows(EffectKind.DM)}  # the release maintainer and the owner
    return len(paged) == 2 and all(any("You are paged for *INC-1*" in t for t in rig.dms(u)) for u in paged)


def _thread_arrived(rig: Rig) -> bool:
    return any("Severity raised" in t for t in rig.thread())


def _pagerduty_arrived(rig: Rig) -> bool:
    return len(rig.pagerduty.triggers()) == len(rig.rows(EffectKind.PAGERDUTY)) > 0


def _hung_bd_processes(beads_dir: Path) -> list[int]:
    """bd children of this workspace still running with the hang switch."""
    found = []
    needle = f"BEADS_DIR={beads_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ and any(v.startswith(b"FAKE_BD_HANG=") for v in environ):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("slow", ["pagerduty", "bd", "github-issues", "slack-channel"])
async def test_one_slow_destination_holds_back_only_its_own_deliveries(rig: Rig, slow: str) -> None:
    hole: BlackHole | None = None
    pagerduty_url = bd = None
    if slow in ("pagerduty", "github-issues"):
        hole = rig.stack.enter_context(BlackHole())
    if slow == "pagerduty":
        pagerduty_url, slow_kinds = hole.url if hole else None, [EffectKind.PAGERDUTY]
    elif slow == "bd":
        bd = BdTracker(FAKE_BD, rig.beads_dir, extra_env={"FAKE_BD_HANG": "120"})
        slow_kinds = [EffectKind.BEAD_FILE]
    elif slow == "github-issues":  # data_schema_drift files its defects as GitHub issues
        rig.settings = {"GITHUB_API_URL": hole.url if hole else "", "GITHUB_TOKEN": "ghp-test"}
        slow_kinds = [EffectKind.BEAD_FILE]
    else:
        slow_kinds = [EffectKind.CARD, EffectKind.THREAD_POST]
    worker = rig.worker(deadlines=dict.fromkeys(slow_kinds, SLOW), pagerduty_url=pagerduty_url, bd=bd)

    rig.ingest(result("BID-001", "TENANT-001"))
    if slow == "github-issues":
        rig.change(Classify("schema"))
    await rig.drain(worker)  # the card is up; nothing slow has been asked yet
    if slow == "slack-channel":
        rig.slack.stalled.add(NIGHTLY)
    rig.clock.advance(60)  # pacing tokens refilled

    others = {
        # (The bead is filed meanwhile too; it is left out because bd takes its own second or two.)
        "pagerduty": [_page_dms_arrived, _thread_arrived],
        "bd": [_page_dms_arrived, _thread_arrived, _pagerduty_arrived],
        "github-issues": [_page_dms_arrived, _thread_arrived, _pagerduty_arrived],
        "slack-channel": [_page_dms_arrived, _pagerduty_arrived],
    }[slow]

    def in_flight() -> bool:
        if hole is not None:
            return hole.active >= 1
        if slow == "bd":
            return bool(_hung_bd_processes(rig.beads_dir))
        return rig.slack.active >= 1

    async with running(worker):
        _sev1(rig)
        worker.wake()
        started = time.monotonic()
        await until(lambda: all(arrived(rig) for arrived in others), f"the deliveries that do not go to {slow}")
        others_after = time.monotonic() - started
        assert in_flight(), f"{slow} should still hold its delivery"
        # Its lane's first row is under way, the rest of the lane waits behind it in order.
        held = [r.id for r in rig.rows(*slow_kinds) if r.state == "sending"]
        waiting = [(r.id, r.state, r.attempts) for r in rig.rows(*slow_kinds) if r.state != "done"]
        assert held and all(state in ("sending", "pending") and attempts == 0 for _, state, attempts in waiting), (
            waiting
        )

        def given_up() -> bool:
            return all(r.state == "pending" and r.attempts == 1 for r in rig.rows(*slow_kinds) if r.id in held)

        await until(given_up, f"the {slow} delivery to be given up")
        waited = time.monotonic() - started
        for row in rig.rows(*slow_kinds):
            if row.id in held:
                assert f"not delivered within the {SLOW:g}s deadline" in (row.last_error or ""), row.last_error
                assert row.next_attempt_at > rig.clock.now()  # retried later, with backoff
        await until(lambda: not in_flight(), f"the {slow} call to be abandoned")  # socket closed, bd killed
    assert others_after < SLOW <= waited < SLOW + 3.0
    print(f"{slow}: the others landed after {others_after * 1000:.0f} ms; the slow one given up after {waited:.2f} s")


# -- Slack's user groups, asked on the click path -------------------------------------------------


async def test_a_hung_slack_delays_a_responder_check_by_its_deadline_once_and_keeps_the_last_members(
    rig: Rig,
) -> None:
    client = AsyncWebClient(token=rig.emulator.bot_token, base_url=rig.emulator.base_url)
    responders = Responders(rig.playbooks.workspace.responders, client, rig.clock, deadline=0.5)
    assert await responders.allowed(CAROL) and not await responders.allowed("U0NOBODY")

    hole: BlackHole = rig.stack.enter_context(BlackHole())
    client.base_url = hole.url + "/api/"  # Slack stops answering; the cached membership goes stale
    rig.clock.advance(timedelta(minutes=10))
    started = time.monotonic()
    assert await responders.allowed(CAROL)  # the last known members still decide
    first = time.monotonic() - started
    assert hole.arrived == 1 and first < 0.5 + 1.0  # not slack_sdk's 30 s per request
    started = time.monotonic()
    assert await responders.allowed(CAROL) and not await responders.allowed("U0NOBODY")
    assert time.monotonic() - started < 0.2 and hole.arrived == 1  # the next clicks do not wait again


# -- a page taken over from a crashed worker ------------------------------------------------------


async def test_a_page_taken_over_from_a_crashed_worker_is_found_in_the_dm_not_sent_twice(rig: Rig) -> None:
    """Recovery reads the DM back (conversations.history on an IM needs ``im:history``: the
    emulator grants exactly the manifest's scopes, so a missing one fails here as in Slack)."""
    rig.ingest(result("BID-001", "TENANT-001"))
    _sev1(rig)
    worker = rig.worker()
    await rig.drain(worker)
    dm = rig.rows(EffectKind.DM)[0]
    user = str(dm.payload["user"])
    assert len(rig.dms(user)) == 1
    # The worker that sent it died before recording it: its lease ran out with the row "sending".
    with Session(rig.engine) as session:
        row = session.get(OutboxItem, dm.id)
        assert row is not None
        row.state, row.claimed_by, row.lease_until = "sending", "crashed", rig.clock.now() - timedelta(seconds=1)
        session.add(row)
        session.commit()
    await rig.drain(worker)
    (recovered,) = [r for r in rig.rows(EffectKind.DM) if r.id == dm.id]
    assert recovered.state == "done" and recovered.result.get("recovered") is True, recovered.last_error
    assert len(rig.dms(user)) == 1  # found, not paged twice
