"""The founder-absence simulation's event loop: the real bot, driven through days in virtual time.

One ``FakeClock`` is the time of everything: the bot's services, the outbox worker's pacing and
backoff, the timer service, the Slack emulator (so its per-channel rate limit counts virtual
seconds), the fake PagerDuty and the traffic. The loop jumps from one interesting moment to the
next (a CI run, a due timer, an outbox row's next attempt or lease expiry, a responder's action, a
fault boundary; at most ``MAX_STEP`` apart) and at each moment does what a running bot would:

1. start or end the faults due now;
2. CI sends the runs that finished through their doors (``slackbot.simulation.doors``): signed
   JSON or JUnit to the ingest routes, GitHub's webhook (the bot downloads the artifact from the fake
   GitHub Actions API), a CI notifier's Slack message, a person's reaction or mention;
3. people act (slash commands and card clicks through the emulator into the real Bolt app);
4. the bot fires its due timers (``TimerService.fire_due``) and delivers its outbox
   (``OutboxWorker.step``) until nothing more is due at this instant.

The app's background loops (the lifespan's outbox loop and timer scheduler) are not started: they
wake on wall-clock intervals, which would make *when* an effect happens depend on the machine's
speed. Driving ``fire_due`` and ``step`` here runs the same code at exact virtual instants, so a
seed always produces the same story, and 14 days take seconds.

A crash abandons the whole process mid-delivery: its event loop is closed with tasks in flight,
its HTTP server stopped, its engine disposed. A fresh process (new Runtime, new worker id) starts on
the same database, Slack emulator, bd workspace and PagerDuty, and takes the work over once the
dead process's leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import random
import secrets
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.app import Workers, build_asgi, build_bolt, build_workers, open_pooled_session
from slackbot.clients.bd import BdTracker
from slackbot.clients.tracker import Bead, BeadRequest
from slackbot.clock import FakeClock, as_utc
from slackbot.config import load_playbooks
from slackbot.db.models import OutboxItem, Run, Timer
from slackbot.emulator import SlackEmulator
from slackbot.emulator.beads import BdMissing, fake_bd_executable, init_workspace
from slackbot.emulator.seeding import seed_workspace
from slackbot.incidents.timers import TimerService
from slackbot.outbox.worker import OutboxWorker
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.simulation.alerts import Alerts, AlertSend
from slackbot.simulation.doors import Doors
from slackbot.simulation.faults import FaultPlan, ProcessCrash
from slackbot.simulation.github import FakeGitHubIssues, running_github_issues
from slackbot.simulation.kept import KeptReads
from slackbot.simulation.pagerduty import FakePagerDuty, running_pagerduty
from slackbot.simulation.records import (
    Outcome,
    Restart,
    SimulationConfig,
    SimulationRun,
    SnapMessage,
    Snapshot,
)
from slackbot.simulation.replicas import BdSwitch
from slackbot.simulation.responders import People, SimulationError
from slackbot.simulation.traffic import CiRun, Traffic

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_STEP = timedelta(minutes=15)  # people look at Slack at least this often
SETTLE_GRACE = timedelta(minutes=30)  # after the last day: let the 20-minute rule fire on late failures
DRAIN_LIMIT = timedelta(hours=26)  # the longest retry budget (beads, 24 h) plus slack
PACE = timedelta(seconds=1)  # a blocked lane refills one post per second


# -- the bot's Slack client and bd, with the crash points ------------------------------------------


class _SimSlackClient(AsyncWebClient):
    """The real async Web API client; the fault plan may kill the process around a call. Only
    calls from the simulation's driver thread crash (the Bolt app's own calls run elsewhere)."""

    def __init__(self, *, faults: FaultPlan, clock: FakeClock, driver: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._faults = faults
        self._clock = clock
        self._driver = driver

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        on_driver = threading.get_ident() == self._driver
        if on_driver:
            self._faults.before_slack_call(api_method, kwargs, self._clock.now)
        response = await super().api_call(api_method, **kwargs)
        if on_driver:
            self._faults.after_slack_call(api_method, kwargs, self._clock.now)
        return response


class _SimBd(BdTracker):
    def __init__(self, *args: Any, faults: FaultPlan, clock: FakeClock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._faults = faults
        self._clock = clock

    async def create(self, req: BeadRequest) -> Bead:
        bead = await super().create(req)
        self._faults.after_bead(req.title, self._clock.now)
        return bead


def _without_lifespan(app: Any, runtime: Runtime, socket: tuple[AsyncApp, str] | None = None) -> Any:
    """The ASGI app with its lifespan answered but not run: no background outbox loop or timer
    scheduler on wall-clock cadence (the simulation drives both in virtual time). The Slack inbox
    does run, on the server's loop as in the real lifespan: a command or click is recorded there
    and applied by it (at the virtual instant the driver holds still while it waits for the answer).
    With ``socket`` (the Bolt app and the app token), the process connects to Slack over Socket
    Mode as the real lifespan does, and closes the connection when it stops (or dies)."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            stop = asyncio.Event()
            task: asyncio.Task[None] | None = None
            handler: AsyncSocketModeHandler | None = None
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    task = asyncio.create_task(runtime.inbox.run(stop), name="slack-inbox")
                    if socket is not None:
                        bolt, app_token = socket
                        handler = AsyncSocketModeHandler(bolt, app_token=app_token, web_client=runtime.slack)
                        await handler.connect_async()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if handler is not None:
                        with contextlib.suppress(Exception):
                            await handler.close_async()
                    stop.set()
                    if task is not None:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(task, timeout=5)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await app(scope, receive, send)

    return asgi


class BotProcess:
    """One incarnation of the bot: what a crash throws away and a restart builds again."""

    def __init__(self, world: World, number: int) -> None:
        self.number = number
        self.worker_id = f"bot-{number}"
        settings = world.settings

        def client() -> _SimSlackClient:
            return _SimSlackClient(
                faults=world.faults,
                clock=world.clock,
                driver=world.driver_thread,
                token=world.emulator.bot_token,
                base_url=world.emulator.base_url,
                timeout=15,
            )

        # Two clients of the same kind: the Bolt app's runs on the HTTP server's event loop, the
        # outbox's on this process's driver loop with one kept-alive session (as the lifespan
        # gives the real app); an aiohttp session cannot be shared across event loops.
        bolt_client, outbox_client = client(), client()
        self.core: Runtime = build_runtime(settings, clock=world.clock, slack=bolt_client)
        self.core.slack = outbox_client  # what build_workers hands the deliveries
        self.workers: Workers = build_workers(self.core, worker_id=self.worker_id)
        self.core.slack = bolt_client
        outbox: OutboxWorker = self.workers.outbox
        outbox.jitter = world.rng.random
        previous = outbox.on_result

        def on_result(item: OutboxItem, outcome: str, error: str | None) -> None:
            world.outcomes.append(Outcome(world.clock.now(), item.kind, item.id or 0, outcome, error))
            if previous is not None:
                previous(item, outcome, error)

        outbox.on_result = on_result
        self.workers.trackers._bd = _SimBd(  # the pool's bd, with the "crash after filing" point
            settings.bd_bin, settings.beads_dir, faults=world.faults, clock=world.clock
        )
        self.timers = TimerService(self.core.playbooks, world.clock)
        self._stopped = False
        self.loop = asyncio.Runner()
        # one context for every step, as Runner.run would give them
        self._context = contextvars.copy_context()
        self._session = self.run(open_pooled_session(outbox_client))
        self.reads = KeptReads(self.core.engine)
        self._stack = ExitStack()
        # Every second incarnation takes Slack over Socket Mode (a team behind a firewall runs it
        # so): the same people, clicks, commands and events reach it as envelopes on a WebSocket.
        self.socket_mode = number % 2 == 0 and world.emulator.socket is not None
        if self.socket_mode:
            assert world.emulator.socket is not None
            opened = world.emulator.socket.connections_opened
            bolt = build_bolt(self.core, socket_mode=True)
            assert bolt is not None
            asgi = build_asgi(
                self.core, workers=self.workers, bolt=bolt, socket_mode=True, app_token=world.emulator.app_token
            )
            self.url = self._stack.enter_context(
                serve(_without_lifespan(asgi, self.core, (bolt, world.emulator.app_token)))
            )
            world.emulator.wait_for_socket(opened=opened + 1)
        else:
            self.url = self._stack.enter_context(
                serve(_without_lifespan(build_asgi(self.core, workers=self.workers), self.core))
            )
        world.emulator.bot_url = self.url + "/slack/events"

    @property
    def engine(self) -> Engine:
        return self.core.engine

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """One step on this process's loop. Not ``Runner.run``: that installs and restores the
        SIGINT handler around every call (2,700 steps in 14 days); a Ctrl-C here ends the whole
        simulation anyway."""
        loop = self.loop.get_loop()
        return loop.run_until_complete(loop.create_task(coroutine, context=self._context))

    def due(self) -> Due:
        return Due.of(self.reads)

    def settle(self, now: datetime) -> tuple[int, Due]:
        """Fire the due timers, then deliver due effects until nothing more can go at this
        instant (a row may wait for its lane's pace). Returns the work done and what is due next.
        Firing never makes another timer due at the same instant (every policy duration is
        positive), so one round of firing is enough."""
        due = self.due()
        work = 0
        if due.timer is not None and due.timer <= now:
            work += self.timers.fire_due(self.engine, self.worker_id).fired
            due = self.due()
        while due.deliverable(now):
            delivered = self.run(self.workers.outbox.step())
            work += delivered
            due = self.due()
            if not delivered:
                break  # due, but its lane is paced or paused: a moment later
        return work, due

    def stop(self) -> None:
        """Stop, graceful or not: tasks in flight are cancelled where they stand (a crash), the
        HTTP server goes away and the database connections close. Work a thread had already
        handed to the database completes, as it would have before a real process died.

        Safe to call again: the run's ``finally`` stops the last process, which a failed restart
        (an invalid runbook) leaves already stopped; a second stop must not replace that error
        with "Runner is closed"."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for task in asyncio.all_tasks(self.loop.get_loop()):
                task.cancel()
            if self._session is not None:
                self.run(self._session.close())
            self.loop.close()
        finally:
            self._stack.close()
            try:
                self.reads.close()
            finally:
                self.core.engine.dispose()


class World:
    """Everything outside the bot that outlives its crashes."""

    def __init__(self, config: SimulationConfig, stack: ExitStack, workdir: Path, faults: FaultPlan) -> None:
        self.config = config
        self.faults = faults
        self.workdir = workdir
        self.clock = FakeClock(config.start)
        self.rng = random.Random(f"world:{config.seed}")
        self.driver_thread = threading.get_ident()
        self.outcomes: list[Outcome] = []
        self.emulator = SlackEmulator(clock=lambda: self.clock.now().timestamp(), socket_mode=True)
        stack.enter_context(self.emulator)
        self.pagerduty: FakePagerDuty = stack.enter_context(running_pagerduty(clock=self.clock.now))
        self.github: FakeGitHubIssues = stack.enter_context(running_github_issues(self.clock.now))
        self.beads_dir, self.bd = _init_beads(workdir)
        self.bd_link = self.bd.link
        self.database_url = config.database_url or f"sqlite:///{workdir / 'simulation.db'}"
        self.ingest_secret = secrets.token_hex(16)
        self.alertmanager_token = secrets.token_hex(16)
        self.github_secret = secrets.token_hex(16)
        self.http = stack.enter_context(httpx.Client(timeout=30))  # CI's client
        self.settings = Settings(
            SLACK_BOT_TOKEN=self.emulator.bot_token,
            SLACK_SIGNING_SECRET=self.emulator.signing_secret,
            SLACK_API_URL=self.emulator.base_url,
            TRIAGE_DATABASE_URL=self.database_url,
            TRIAGE_RUNBOOKS_DIR=config.runbooks_dir,
            TRIAGE_INGEST_SECRET=self.ingest_secret,
            TRIAGE_ALERTMANAGER_TOKEN=self.alertmanager_token,
            PAGERDUTY_EVENTS_URL=self.pagerduty.url,
            TRIAGE_BD_BIN=str(self.bd_link),
            BEADS_DIR=self.beads_dir,
            GITHUB_API_URL=self.github.url,
            GITHUB_TOKEN="simulated-github-token",
            GITHUB_WEBHOOK_SECRET=self.github_secret,
            # the production pacing and lease, whatever this shell's environment says
            TRIAGE_LANE_RATE=1.0,
            TRIAGE_OUTBOX_LEASE_SECONDS=60,
            # People here send one request at a time and wait for what it did: the pause a recorded
            # change waits for (20 ms of real time, for bursts of clicks) would only be idle time.
            TRIAGE_AFTER_ACK_QUIET=0.001,
        )

    # -- FaultTargets -----------------------------------------------------------------------------

    def slack_fail_next(self, method: str, *, status: int, count: int, retry_after: int) -> None:
        self.emulator.fail_next(method, status=status, count=count, retry_after=retry_after)

    def set_bd_available(self, available: bool) -> None:
        self.bd.set_available(available)

    def set_pagerduty_down(self, down: bool) -> None:
        with self.pagerduty.lock:
            self.pagerduty.down = down

    def set_github_outage(self, status: int | None, reset: datetime | None) -> None:
        self.github.actions.set_outage(status, reset)

    def arm_github_issues_outage(self, minutes: int | None, status: int) -> None:
        self.github.arm_outage(minutes, status)


def _init_beads(workdir: Path) -> tuple[Path, BdSwitch]:
    """A real beads workspace driven by the bd double, reached through ``bin/bd`` (a link the
    bd outage takes away)."""
    try:
        switch = BdSwitch(Path(fake_bd_executable()), workdir / "bin")
    except BdMissing as exc:
        raise SimulationError(str(exc)) from exc
    return init_workspace(workdir, prefix="sim", bd=str(switch.link)), switch


# -- the loop ---------------------------------------------------------------------------------------


class Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        self.config = config

    def run(self, stack: ExitStack, workdir: Path) -> SimulationRun:
        """Run the whole period and the drain; the outside world is torn down by ``stack``."""
        began = time.monotonic()
        config = self.config
        playbooks = load_playbooks(config.runbooks_dir)  # an invalid runbook stops here, with file:line
        runbook = playbooks.default
        # seed 001's stories when the default playbook has their classes, every other playbook's
        # from its own classes: whatever the runbooks allow
        traffic = Traffic(runbook, days=config.days, seed=config.seed, start=config.start, playbooks=list(playbooks))
        alerts = Alerts(
            [p for p in playbooks if p.policy.alerts], days=config.days, seed=config.seed, start=config.start
        )
        if not traffic.schedule and not alerts.schedule:
            raise SimulationError(
                "no playbook in these runbooks yields traffic: "
                + "; ".join(f"{name}: {why}" for name, why in traffic.skipped.items())
            )
        faults = FaultPlan(traffic, seed=config.seed, enabled=config.faults)
        world = World(config, stack, workdir, faults)
        seed_workspace(world.emulator, playbooks)
        doors = Doors(
            world.http, world.emulator, world.github.actions, playbooks, world.ingest_secret, world.github_secret
        )
        process = BotProcess(world, 1)  # migrates the database
        sockets: list[int] = []
        with Session(process.engine) as session:
            if session.exec(select(func.count(col(Run.id)))).one():
                process.stop()
                raise SimulationError(f"the simulation needs an empty database; {world.database_url} has runs")
        current: list[BotProcess] = [process]  # the process people reach, a restart's after a crash
        people = People(
            runbook,
            traffic,
            world.emulator,
            seed=config.seed,
            responders=config.responders,
            engine=lambda: current[0].engine,
            reads=lambda: current[0].reads,
            playbooks=playbooks,
            alerts=alerts,
        )
        restarts: list[Restart] = []
        answers: dict[str, list[dict[str, Any]]] = {}
        sabotage: list[str] = []
        end = config.start + timedelta(days=config.days)
        now = config.start
        healed = False
        try:
            while True:
                if now >= end and not healed:
                    faults.heal(world)
                    people.open = False
                    healed = True
                for fault in faults.apply(now, world):
                    log.info("%s fault %s: %s", now, fault.kind, fault.description)
                if now < end:
                    for run in traffic.due(now):
                        faults.before_send(run, now, world)
                        answers[run.run_id] = self._ingest(doors, process, run)
                    for alert in alerts.due(now):
                        self._alert(world, process, alert)
                people.act(now)
                try:
                    worked, due = process.settle(now)
                except ProcessCrash as crash:
                    log.info("%s crash: %s", now, crash)
                    dead = process.worker_id
                    process.stop()
                    process = BotProcess(world, process.number + 1)
                    if process.socket_mode:
                        sockets.append(process.number)
                    current[0] = process
                    restarts.append(Restart(now, str(crash), process.number, _in_flight(process.engine, dead)))
                    worked, due = 1, process.due()
                if config.inject_bug and not sabotage:
                    sabotage.extend(_sabotage(config.inject_bug, process.engine, world.emulator))
                if worked:  # only deliveries change what people can see
                    people.observe(now)
                idle = due.attempt is None and due.lease is None  # no outbox row pending or in flight
                if now >= end + SETTLE_GRACE and (idle or now >= end + DRAIN_LIMIT):
                    break
                now = self._next_moment(now, due, traffic, faults, people, end, alerts.next_at())
                world.clock.set(now)
            snapshot = capture(world)
        finally:
            process.stop()
        return SimulationRun(
            config=config,
            runbook_dir=config.runbooks_dir,
            database_url=world.database_url,
            traffic=traffic,
            alerts=alerts,
            faults=faults,
            people=people,
            snapshot=snapshot,
            outcomes=world.outcomes,
            restarts=restarts,
            socket_processes=sockets,
            started=config.start,
            ended=end,
            drained_at=now,
            wall_seconds=time.monotonic() - began,
            ingest_answers=answers,
            sabotage=sabotage,
            playbooks=playbooks,
        )

    @staticmethod
    def _ingest(doors: Doors, process: BotProcess, run: CiRun) -> list[dict[str, Any]]:
        """CI's side: the run through its door (report JSON, JUnit, GitHub's webhook, Slack);
        what the sender was answered, or where in Slack the failure was posted."""
        return doors.send(run, process.url, process.engine)

    @staticmethod
    def _alert(world: World, process: BotProcess, alert: AlertSend) -> None:
        """Alertmanager's side: its webhook_config posts with the bearer token it was given."""
        response = world.http.post(
            process.url + "/webhooks/alertmanager",
            json=alert.payload,
            headers={"Authorization": f"Bearer {world.alertmanager_token}"},
        )
        if response.status_code >= 300:
            raise SimulationError(
                f"Alertmanager's {alert.status} {alert.alertname} answered {response.status_code}: {response.text}"
            )

    @staticmethod
    def _next_moment(
        now: datetime,
        due: Due,
        traffic: Traffic,
        faults: FaultPlan,
        people: People,
        end: datetime,
        alert_at: datetime | None = None,
    ) -> datetime:
        candidates = [now + MAX_STEP]
        if now < end:
            candidates.append(end)
            for at in (traffic.next_at(), alert_at):
                if at is not None:
                    candidates.append(at)
        for at in (faults.next_at(), people.next_at()):
            if at is not None:
                candidates.append(at)
        timer, attempt, lease = due.timer, due.attempt, due.lease
        if timer is not None:
            candidates.append(timer)
        if attempt is not None:
            # due now but not claimed: its lane is paced (or paused by a 429) - look again shortly
            candidates.append(attempt if attempt > now else now + PACE)
        if lease is not None:
            candidates.append(lease + timedelta(milliseconds=1))
        return max(min(candidates), now + timedelta(milliseconds=1))


_DUE = select(
    select(func.min(col(Timer.due_at))).where(col(Timer.state) == "pending").scalar_subquery(),
    select(func.min(col(OutboxItem.next_attempt_at))).where(col(OutboxItem.state) == "pending").scalar_subquery(),
    select(func.min(col(OutboxItem.lease_until))).where(col(OutboxItem.state) == "sending").scalar_subquery(),
)


@dataclass(frozen=True)
class Due:
    """What the bot's database says is due next: a timer, an outbox attempt, a lease expiry."""

    timer: datetime | None
    attempt: datetime | None
    lease: datetime | None

    @classmethod
    def of(cls, reads: KeptReads) -> Due:
        ((timer, attempt, lease),) = reads.rows(_DUE)
        return cls(
            as_utc(timer) if timer else None,
            as_utc(attempt) if attempt else None,
            as_utc(lease) if lease else None,
        )

    def deliverable(self, now: datetime) -> bool:
        return (self.attempt is not None and self.attempt <= now) or (self.lease is not None and self.lease < now)


def _in_flight(engine: Engine, worker: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxItem).where(OutboxItem.state == "sending", OutboxItem.claimed_by == worker)
        ).all()
    return [f"{r.kind} (outbox {r.id})" for r in rows]


def _sabotage(kind: str, engine: Engine, emulator: SlackEmulator) -> list[str]:
    """A deliberately broken bot, to show the invariants catch it: a second copy of a card is
    posted straight to Slack (as a replica without the post-once claim would)."""
    if kind != "duplicate-card":
        raise SimulationError(f"unknown --inject-bug {kind!r}")
    from slackbot.db.models import Incident
    from slackbot.outbox.slack_deliveries import CARD_EVENT, is_posted

    with Session(engine) as session:
        incident = session.exec(select(Incident).order_by(col(Incident.id))).first()
    if incident is None or not is_posted(incident.card_ts):
        return []
    with emulator.workspace.lock:
        channel = emulator.workspace.channels[incident.channel]
        original = channel.find(str(incident.card_ts))
        assert original is not None
        copy = emulator.workspace.post(
            channel,
            user=original.user,
            text=original.text,
            blocks=original.blocks,
            metadata={"event_type": CARD_EVENT, "event_payload": {"incident": incident.id}},
            bot_id=original.bot_id,
        )
    return [f"posted a second card for {incident.key} at ts {copy.ts} (injected bug)"]


def _carried(envelope: str, payload: dict[str, Any]) -> str:
    """What a Socket Mode envelope carried: the command, the interaction's or the event's type."""
    if envelope == "slash_commands":
        return f"{payload.get('command', '')} {str(payload.get('text', '')).split(' ', 1)[0]}".strip()
    if envelope == "events_api":
        return str((payload.get("event") or {}).get("type", ""))
    return str(payload.get("type", ""))


def capture(world: World) -> Snapshot:
    sockets = world.emulator.socket
    ws = world.emulator.workspace
    messages: list[SnapMessage] = []
    calls: dict[str, dict[int, int]] = {}
    with ws.lock:
        for channel in ws.channels.values():
            for message in channel.all_messages():
                header = ""
                if message.blocks and message.blocks[0].get("type") == "header":
                    header = str(message.blocks[0].get("text", {}).get("text", ""))
                messages.append(
                    SnapMessage(
                        channel=channel.id,
                        ts=message.ts,
                        text=message.text,
                        thread_ts=message.thread_ts,
                        metadata=message.metadata,
                        header=header,
                        user=message.user,
                        edited=message.edited,
                        at=float(message.ts),
                        block_ids=[str(b.get("block_id")) for b in message.blocks or [] if b.get("block_id")],
                    )
                )
        for call in ws.calls:
            by_status = calls.setdefault(call.method, {})
            by_status[call.status] = by_status.get(call.status, 0) + 1
    with world.pagerduty.lock:
        events = [
            {**event, "_received_at": at.isoformat() if at else None}
            for event, at in zip(world.pagerduty.events, world.pagerduty.received_at, strict=True)
        ]
        refused = world.pagerduty.refused
    world.set_bd_available(True)
    listing = subprocess.run(
        [str(world.bd_link), "list", "--json", "--all", "-n", "0"],
        env={**os.environ, "BEADS_DIR": str(world.beads_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    from slackbot.clients.bd import parse_bd_json

    beads = parse_bd_json(listing.stdout) or []
    return Snapshot(
        messages=messages,
        calls=calls,
        pagerduty=events,
        pagerduty_refused=refused,
        beads=list(beads),
        github_issues=world.github.all_issues(),
        github_downloads=world.github.actions.downloaded(),
        github_refused=world.github.actions.refusals(),
        github_fetched_at=dict(world.github.actions.fetched_at),
        github_issue_refused=world.github.issue_refusals(),
        github_issue_outages=world.github.issue_outages(),
        socket_envelopes=[(e.type, _carried(e.type, e.payload), e.acked) for e in sockets.envelopes()]
        if sockets
        else [],
    )


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The bot logs every retry; in a simulation full of injected faults that is noise."""
    names = ("slackbot", "slack_bolt", "slack_sdk", "uvicorn", "httpx", "apscheduler")
    previous = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
