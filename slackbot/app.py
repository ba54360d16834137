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

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from handlers.http import api, health, ingest
from handlers.slack import actions, beads, commands, events
from slackbot.beads import TrackerError, check_bd_version
from slackbot.core import Core
from slackbot.outbox.bead_deliveries import BeadDeliveries, TrackerPool
from slackbot.outbox.paging_deliveries import PagingDeliveries
from slackbot.outbox.slack_deliveries import SlackDeliveries
from slackbot.outbox.worker import OutboxWorker
from slackbot.scheduler import TimerScheduler
from slackbot.services.timers import TimerService
from slackbot.settings import Settings, secret
from slackbot.slack.posts import PostRenderer

log = logging.getLogger(__name__)


def slack_client_for(settings: Settings) -> AsyncWebClient | None:
    token = secret(settings.slack_bot_token)
    if not token:
        return None
    # Our outbox honours 429 Retry-After itself (without blocking other channels), so the client
    # keeps only slack_sdk's default connection-error retry.
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=15)


def build_bolt(core: Core) -> AsyncApp | None:
    signing_secret = secret(core.settings.slack_signing_secret)
    if core.slack is None or not signing_secret:
        log.warning("SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET unset: Slack is disabled, ingest still works")
        return None
    app = AsyncApp(client=core.slack, signing_secret=signing_secret, process_before_response=False)
    events.register(app, core)  # first: its middleware drops retried events before any listener
    commands.register(app, core)
    actions.register(app, core)
    beads.register(app, core)
    return app


@dataclass
class Workers:
    outbox: OutboxWorker
    timers: TimerScheduler
    trackers: TrackerPool


def build_workers(core: Core, *, worker_id: str | None = None, timer_interval: float = 0.25) -> Workers:
    """The outbox worker delivers effects; the scheduler fires due timers. Bead filing works
    without Slack; Slack effects wait in the outbox (nothing is lost) until a process with a
    Slack token delivers them."""
    worker = OutboxWorker(
        core.engine, core.clock, {}, worker_id=worker_id, ops_channel=core.runbook.routing.ops_channel
    )
    scheduler = TimerScheduler(
        core.engine,
        TimerService(core.runbook, core.clock),
        worker.worker_id,
        interval=timer_interval,
        on_fired=worker.wake,
    )
    trackers = TrackerPool(core.settings)
    bead_deliveries = BeadDeliveries(core.engine, core.beads, trackers)
    worker.handlers.update(bead_deliveries.handlers())
    worker.dead_hooks.update(bead_deliveries.dead_hooks())
    if core.slack is not None:
        renderer = PostRenderer(core.runbook, core.runbooks_dir / "templates")
        slack = SlackDeliveries(core.engine, core.slack, core.runbook, renderer, core.clock, worker.worker_id)
        paging = PagingDeliveries(
            core.engine,
            core.slack,
            core.runbook,
            renderer,
            pagerduty_url=core.settings.pagerduty_events_url,
            public_url=core.settings.public_url,
        )
        worker.handlers.update(slack.handlers())
        worker.handlers.update(paging.handlers())
        worker.dead_hooks.update(paging.dead_hooks())
    core.on_commit(worker.wake)
    return Workers(outbox=worker, timers=scheduler, trackers=trackers)


async def check_bd(core: Core, trackers: TrackerPool) -> None:
    """Say at start which bd we drive (shown by /readyz); a missing bd never stops the bot."""
    try:
        version = await trackers.bd.version()
    except TrackerError as exc:
        core.status["bd"] = f"unavailable: {exc.message}"
        log.warning("bd is unavailable (%s): beads stay pending until it works", exc.message)
        return
    warning = check_bd_version(version)
    core.status["bd"] = version if warning is None else f"{version} ({warning})"


def build_asgi(core: Core, *, workers: Workers | None = None, bolt: AsyncApp | None = None) -> Starlette:
    bolt = bolt if bolt is not None else build_bolt(core)
    workers = workers if workers is not None else build_workers(core)
    routes = [*health.routes(core), *ingest.routes(core), *api.routes(core)]
    if bolt is not None:
        handler = AsyncSlackRequestHandler(bolt)

        async def slack_events(request: Request) -> Response:
            return await handler.handle(request)

        routes.append(Route("/slack/events", slack_events, methods=["POST"]))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        tasks.append(asyncio.create_task(workers.outbox.run(stop), name="outbox"))
        tasks.append(asyncio.create_task(check_bd(core, workers.trackers), name="bd-version"))
        workers.timers.start()
        try:
            yield
        finally:
            workers.timers.stop()
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=5)

    return Starlette(routes=routes, lifespan=lifespan)
