"""The composition root's product: every long-lived service, built once per process.

Handlers receive a ``Core`` and call its services; nothing builds its own engine or client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import Clock, SystemClock
from slackbot.config import Runbook, load_runbook
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.models import TimelineEvent
from slackbot.metrics import AppMetrics
from slackbot.services.beads import BeadService
from slackbot.services.cardview import load_card_view
from slackbot.services.checklists import ChecklistService
from slackbot.services.incidents import IncidentService
from slackbot.services.ingest import IngestService
from slackbot.services.permissions import Responders
from slackbot.services.postmortem import PostmortemService
from slackbot.services.queries import QueryError
from slackbot.settings import Settings
from slackbot.slack.after_ack import AckFirst, AfterAck
from slackbot.slack.card import CardView

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    runbook: Runbook
    engine: Engine
    clock: Clock
    ingest: IngestService = field(init=False)

    status: dict[str, object] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list, init=False)

    slack: AsyncWebClient | None = None
    incidents: IncidentService = field(init=False)
    responders: Responders = field(init=False)

    beads: BeadService = field(init=False)
    checklists: ChecklistService = field(init=False)
    postmortems: PostmortemService = field(init=False)
    metrics: AppMetrics = field(init=False)
    after_ack: AfterAck = field(init=False)

    def __post_init__(self) -> None:
        self.ingest = IngestService(self.runbook, self.clock)
        self.beads = BeadService(self.runbook, self.clock, self.runbooks_dir / "templates")
        self.incidents = IncidentService(self.runbook, self.clock)
        self.checklists = ChecklistService(self.runbook, self.clock)
        self.postmortems = PostmortemService(self.runbook, self.clock, self.runbooks_dir / "templates")
        # One registry per app (not the process-global default), so several apps can coexist.
        self.metrics = AppMetrics(self.engine, self.clock)
        if self.slack is not None:
            self.metrics.instrument_slack(self.slack)
        self.after_ack = AfterAck(AckFirst(max_delay=self.settings.after_ack_max_delay))
        self.responders = Responders(self.runbook.routing.responders, self.slack, self.clock)

    def card_view(self, incident_id: int) -> CardView:
        view = load_card_view(self.engine, self.runbook, incident_id)
        if view is None:
            raise QueryError(f"no incident INC-{incident_id}")
        return view

    def first_delivery(self, source: str, delivery_id: str) -> bool:
        """Record an inbound delivery; False when it was seen before (a retry or redelivery)."""
        from sqlalchemy.exc import IntegrityError

        from slackbot.db.models import ProcessedDelivery
        from slackbot.services.effects import utc

        try:
            with session_scope(self.engine) as session:
                session.add(
                    ProcessedDelivery(source=source, delivery_id=delivery_id, received_at=utc(self.clock.now()))
                )
        except IntegrityError:
            return False
        return True

    @staticmethod
    def timeline(session: Session, incident_id: int) -> list[TimelineEvent]:
        query = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
        return list(session.exec(query.order_by(col(TimelineEvent.at), col(TimelineEvent.id))))

    @property
    def invariant_prefixes(self) -> frozenset[str]:
        return frozenset(i.prefix for i in self.runbook.taxonomy.invariants)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Register a wake-up (the outbox worker) for when new effects were committed."""
        self._listeners.append(listener)

    def readiness_extras(self) -> dict[str, object]:
        """Dependencies beyond the database that /readyz reports (bd version, Slack auth, …)."""
        return dict(self.status)

    def notify_committed(self) -> None:
        for listener in self._listeners:
            listener()

    @property
    def runbooks_dir(self) -> Path:
        return self.settings.runbooks_dir


def build_core(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    slack: AsyncWebClient | None = None,
) -> Core:
    """Load and validate the runbook first (an invalid runbook stops the bot before it touches
    anything), then open the database and bring its schema up to date."""
    runbook = load_runbook(settings.runbooks_dir)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Core(settings=settings, runbook=runbook, engine=engine, clock=clock or SystemClock(), slack=slack)
