"""The composition root: one ASGI app serving Slack, ingest, webhooks, API, health and metrics.

Everything long-lived is built here once (engine, Slack client, services, outbox worker) and
handed to the handlers; the lifespan starts and stops the background workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http import alertmanager, api, github, health, ingest, metrics, slack_events
from handlers.http.body import DrainUnreadBody
from handlers.http.unavailable import exception_handlers
from handlers.slack import actions, alerts, beads, commands, events, malformed, respond, status, unavailable
from handlers.slack.requests import SlackRequests
from slackbot.clients.bd import check_bd_version
from slackbot.clients.github_actions import GitHubActions
from slackbot.clients.github_changes import GitHubChanges
from slackbot.clients.tracker import TrackerError
from slackbot.domain.effects import EffectKind
from slackbot.incidents.digests import ensure_timers as ensure_digest_timers
from slackbot.incidents.timers import TimerService
from slackbot.logs import bolt_logger
from slackbot.outbox.bead_deliveries import BeadDeliveries, TrackerPool
from slackbot.outbox.checklist_deliveries import ChecklistDeliveries
from slackbot.outbox.digest_deliveries import DigestDeliveries
from slackbot.outbox.file_deliveries import FileDeliveries
from slackbot.outbox.integration_deliveries import GitHubRunJobs, IntegrationPosts
from slackbot.outbox.paging_deliveries import PagingDeliveries
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.suspect_deliveries import SuspectJobs
from slackbot.outbox.worker import OUTAGE_RETRY_POLICIES, OutboxWorker
from slackbot.reads.stats import StatsRefresher
from slackbot.runtime import Runtime
from slackbot.scheduler import TimerScheduler
from slackbot.settings import Settings, secret
from slackbot.sources.github import GitHubRunService

log = logging.getLogger(__name__)


def slack_client_for(settings: Settings) -> AsyncWebClient | None:
    token = secret(settings.slack_bot_token)
    if not token:
        return None
    # Our outbox honours 429 Retry-After itself (without blocking other channels), so the client
    # keeps only slack_sdk's default connection-error retry.
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=15)


def build_bolt(runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp | None:
    """The one Bolt app, for HTTP and Socket Mode alike. Over Socket Mode nothing is signed (the
    socket itself is authenticated by the app token), so no signing secret is needed there."""
    signing_secret = secret(runtime.settings.slack_signing_secret)
    if runtime.slack is None or not (signing_secret or socket_mode):
        log.warning("SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET unset: Slack is disabled, ingest still works")
        return None
    app = AsyncApp(
        client=runtime.slack,
        signing_secret=signing_secret or "",
        # Bolt never checks a signature: over HTTP the route has checked it before Bolt sees the
        # request (handlers/http/slack_events.py, the only door to Bolt), and over Socket Mode
        # nothing is signed. A second HMAC of every body cost the acks (its digest releases the
        # GIL, and under load getting it back waits for the thread applying changes).
        request_verification_enabled=False,
        process_before_response=False,
        logger=bolt_logger(),  # its filter keeps request bodies out of Bolt's log lines
    )
    events.register(app, runtime)  # first: its middlewares note arrivals and drop retried events
    respond.register(app)  # respond() over the pooled session the lifespan opens
    malformed.register(app, runtime)  # before any listener reads a click or a modal
    commands.register(app, runtime)
    actions.register(app, runtime)
    beads.register(app, runtime)
    alerts.register(app, runtime)
    status.register(app, runtime)
    malformed.register_fallbacks(app)  # last: answers the clicks and forms no listener knows
    unavailable.register(app)  # a database outage is a 503 the person can retry, not a 500
    return app


async def _slack_disabled(_: Request) -> Response:
    """Ingest-only (``serve --no-slack``): Slack's retries get a reason, not a bare 404."""
    message = "Slack is disabled on this bot (triagebot serve --no-slack): it runs ingest only"
    return JSONResponse({"error": message}, status_code=503)


@dataclass
class Workers:
    outbox: OutboxWorker
    timers: TimerScheduler
    trackers: TrackerPool


def build_workers(runtime: Runtime, *, worker_id: str | None = None, timer_interval: float | None = None) -> Workers:
    """The outbox worker delivers effects; the scheduler fires due timers. Bead filing works
    without Slack; Slack effects wait in the outbox (nothing is lost) until a process with a
    Slack token delivers them. Pacing, lease and timer cadence come from the settings."""
    worker = OutboxWorker(
        runtime.engine,
        runtime.clock,
        {},
        worker_id=worker_id,
        ops_channel=runtime.playbooks.workspace.ops_channel,
        lane_rate=runtime.settings.lane_rate,
        lease=timedelta(seconds=runtime.settings.outbox_lease_seconds),
        retry_policies=OUTAGE_RETRY_POLICIES,  # beads and posts outlive hours of bd or Slack outage
        deadlines=runtime.settings.delivery_deadlines,  # each delivery's total time, kept under the lease
    )
    runtime.status["worker"] = worker.worker_id  # /readyz names the replica (outbox claimed_by)
    scheduler = TimerScheduler(
        runtime.engine,
        TimerService(runtime.playbooks, runtime.clock),
        worker.worker_id,
        interval=timer_interval if timer_interval is not None else runtime.settings.timer_interval,
        on_fired=worker.wake,
    )
    trackers = TrackerPool(runtime.settings)
    bead_deliveries = BeadDeliveries(runtime.engine, runtime.playbooks, trackers, runtime.clock)
    worker.handlers.update(bead_deliveries.handlers())
    worker.dead_hooks.update(bead_deliveries.dead_hooks())
    # GitHub run jobs need GitHub and the database, not Slack: registered whether or not Slack is.
    github_jobs = GitHubRunJobs(
        runtime.engine,
        GitHubRunService(
            runtime.playbooks, runtime.clock, runtime.ingest, report_artifact=runtime.settings.github_report_artifact
        ),
        GitHubActions(runtime.settings.github_api_url, secret(runtime.settings.github_token), runtime.clock),
        # the rest of the worker's deadline is left for naming the problem on the harness card
        budget=0.8 * worker.deadline(EffectKind.GITHUB_RUN),
    )
    worker.handlers.update(github_jobs.handlers())
    # Suspect changes (issue 16): GitHub's compare between a failure's last green and first failing sha.
    changes = GitHubChanges(runtime.settings.github_api_url, secret(runtime.settings.github_token), runtime.clock)
    worker.handlers.update(SuspectJobs(runtime.engine, changes, runtime.playbooks, runtime.clock).handlers())
    if runtime.slack is not None:
        slack = SlackDeliveries(
            runtime.engine,
            runtime.slack,
            runtime.playbooks,
            runtime.clock,
            worker.worker_id,
            claim_seconds=runtime.settings.outbox_lease_seconds,  # a taken-over card need not wait longer
        )
        paging = PagingDeliveries(
            runtime.engine,
            runtime.slack,
            runtime.playbooks,
            pagerduty_url=runtime.settings.pagerduty_events_url,
            public_url=runtime.settings.public_url,
        )
        worker.handlers.update(slack.handlers())
        worker.handlers.update(ChecklistDeliveries(runtime.engine, runtime.slack, runtime.playbooks).handlers())
        worker.handlers.update(paging.handlers())
        worker.handlers.update(
            IntegrationPosts(runtime.engine, runtime.slack, runtime.playbooks, runtime.clock).handlers()
        )
        worker.dead_hooks.update(paging.dead_hooks())
        worker.handlers.update(
            FileDeliveries(runtime.engine, runtime.slack, runtime.playbooks, runtime.clock).handlers()
        )
        worker.handlers.update(DigestDeliveries(runtime.engine, runtime.slack, runtime.playbooks).handlers())
    runtime.metrics.instrument_worker(worker)  # last: wraps the page handlers registered above
    runtime.metrics.instrument_timers(scheduler)
    runtime.on_commit(worker.wake)
    return Workers(outbox=worker, timers=scheduler, trackers=trackers)


async def check_bd(runtime: Runtime, trackers: TrackerPool) -> None:
    """Say at start which bd we drive (shown by /readyz); a missing bd never stops the bot."""
    try:
        version = await trackers.bd.version()
    except TrackerError as exc:
        runtime.status["bd"] = f"unavailable: {exc.message}"
        log.warning("bd is unavailable (%s): beads stay pending until it works", exc.message)
        return
    warning = check_bd_version(version)
    runtime.status["bd"] = version if warning is None else f"{version} ({warning})"


async def open_pooled_session(client: AsyncWebClient | None) -> aiohttp.ClientSession | None:
    """One kept-alive connection pool for every Web API call and ``respond()`` of this process.

    Without it slack_sdk opens and closes a session (and a TCP connection) per call, on the loop
    that acks Slack: bench/ack_latency.py measured that as the bot's main extra cost under load.
    Opened in the lifespan because a session belongs to the running loop.
    """
    if client is None or client.session is not None:
        return None
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout), trust_env=False)
    client.session = session
    return session


def build_asgi(
    runtime: Runtime,
    *,
    workers: Workers | None = None,
    bolt: AsyncApp | None = None,
    socket_mode: bool = False,
    app_token: str | None = None,
) -> Starlette:
    """HTTP mode serves Slack at ``/slack/events``; ``socket_mode`` instead connects the same Bolt
    app over Socket Mode from the lifespan (needs the ``xapp-`` app token), beside the other routes."""
    if socket_mode:
        app_token = app_token or secret(runtime.settings.slack_app_token)
        if not app_token:
            raise ValueError("Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-…)")
    bolt = bolt if bolt is not None else build_bolt(runtime, socket_mode=socket_mode)
    workers = workers if workers is not None else build_workers(runtime)
    routes = [*health.routes(runtime), *metrics.routes(runtime), *ingest.routes(runtime), *api.routes(runtime)]
    routes += [*github.routes(runtime), *alertmanager.routes(runtime)]
    if bolt is not None and not socket_mode:
        routes.append(slack_events.route(runtime, SlackRequests(bolt)))
    elif not socket_mode:
        routes.append(Route("/slack/events", _slack_disabled, methods=["POST"]))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        tasks.append(asyncio.create_task(workers.outbox.run(stop), name="outbox"))
        # Applies what Slack requests asked for: first what a crashed or stopped process recorded.
        tasks.append(asyncio.create_task(runtime.inbox.run(stop), name="slack-inbox"))
        tasks.append(asyncio.create_task(check_bd(runtime, workers.trackers), name="bd-version"))
        # /triage stats' month, read at start (beside readiness, not before it) and kept fresh, so
        # no person's request reads it whole.
        refresher = StatsRefresher(runtime.engine, runtime.clock)
        tasks.append(asyncio.create_task(refresher.run(stop), name="stats-refresher"))
        # Each digest channel's weekly timer, before the first tick (which fires one missed while down).
        try:
            await asyncio.to_thread(ensure_digest_timers, runtime.engine, runtime.playbooks, runtime.clock)
        except Exception:  # a database blip must not keep the bot down; the next start arms them
            log.exception("could not schedule the weekly digests")
        workers.timers.start()
        pooled = await open_pooled_session(runtime.slack)
        socket: AsyncSocketModeHandler | None = None
        connecting: asyncio.Task[None] | None = None
        if socket_mode and bolt is not None and app_token:
            # Built here: the Socket Mode client binds to the running loop (uvicorn's) on creation.
            socket = AsyncSocketModeHandler(bolt, app_token=app_token, web_client=runtime.slack)
            # Connecting runs beside startup: an unreachable Slack must not keep ingest down, and
            # the client retries on its own (apps.connections.open is Tier 1, it never spins).
            connecting = asyncio.create_task(socket.connect_async(), name="slack-socket-mode")
        try:
            yield
        finally:
            # Recorded changes still waiting for a quiet moment are applied now, and pending answers
            # sent (what does not make it in time stays recorded: the next start applies it).
            await runtime.inbox.close(timeout=10)
            if connecting is not None and socket is not None:
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connecting
                with contextlib.suppress(Exception):  # closing never blocks the rest of shutdown
                    await socket.close_async()
            workers.timers.stop()
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=5)
            if pooled is not None and runtime.slack is not None:
                runtime.slack.session = None  # later calls (another loop, a test) get their own again
                await pooled.close()

    # A client still sending a refused body reads the answer instead of a connection reset.
    drain = Middleware(DrainUnreadBody, limit=4 * runtime.settings.max_body_bytes)
    counted = Middleware(metrics.CountIngest, runtime=runtime)  # outermost: sees every answer, 413s too
    return Starlette(
        routes=routes, lifespan=lifespan, middleware=[counted, drain], exception_handlers=exception_handlers()
    )
