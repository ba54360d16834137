"""What the composition root builds once per process: every long-lived service, in one place.

Handlers receive the ``Runtime`` and call its services; nothing builds its own engine or client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slackbot.after_ack import AckFirst, AfterAck
from slackbot.clients.responders import Responders
from slackbot.clock import Clock, SystemClock
from slackbot.config import Playbook, Playbooks, load_playbooks
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, ProcessedDelivery, TimelineEvent
from slackbot.domain.changes import Actor, Change, IncidentError, Outcome
from slackbot.inbox import Inbox
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import utc
from slackbot.metrics import AppMetrics
from slackbot.reads.cardview import load_card_view
from slackbot.reads.queries import QueryError
from slackbot.settings import Settings
from slackbot.slack.card import CardView
from slackbot.sources.ingest import IngestService

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    playbooks: Playbooks
    engine: Engine
    clock: Clock
    slack: AsyncWebClient | None = None

    status: dict[str, object] = field(default_factory=dict)
    _listeners: list[Callable[[], None]] = field(default_factory=list, init=False)

    ingest: IngestService = field(init=False)
    incidents: IncidentCore = field(init=False)
    responders: Responders = field(init=False)
    metrics: AppMetrics = field(init=False)
    after_ack: AfterAck = field(init=False)
    inbox: Inbox = field(init=False)

    def __post_init__(self) -> None:
        self.ingest = IngestService(self.playbooks, self.clock)
        self.incidents = IncidentCore(
            self.playbooks, self.clock, coalesce=timedelta(seconds=self.settings.coalesce_seconds)
        )
        # One registry per app (not the process-global default), so several apps can coexist.
        classes = [key for playbook in self.playbooks for key in playbook.classes]
        self.metrics = AppMetrics(self.engine, self.clock, classes)
        if self.slack is not None:
            self.metrics.instrument_slack(self.slack)
        self.after_ack = AfterAck(
            AckFirst(quiet=self.settings.after_ack_quiet, max_delay=self.settings.after_ack_max_delay),
            backlog=self.settings.after_ack_backlog,
        )
        self.responders = Responders(self.playbooks.workspace.responders, self.slack, self.clock)
        # What Slack interactions ask for: recorded before the ack, applied after it (the lifespan runs it).
        self.inbox = Inbox(
            self.engine,
            self.incidents,
            self.clock,
            self.after_ack,
            allowed=self.responders.allowed,
            describe=self.responders.describe,
            on_changed=self.notify_committed,
            poll=self.settings.inbox_poll,
        )

    def change(self, incident_id: int, actor: Actor, change: Change) -> Outcome:
        """One change through the incident core, in its own transaction (blocking: run it in a thread)."""
        return self.incidents.run(self.engine, incident_id, actor, change)

    def card_view(self, incident_id: int) -> CardView:
        view = load_card_view(self.engine, self.playbooks, incident_id)
        if view is None:
            raise QueryError(f"no incident INC-{incident_id}")
        return view

    def playbook_of(self, incident_id: int) -> Playbook:
        with session_scope(self.engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                raise IncidentError(f"no incident INC-{incident_id}")
            return self.playbooks.get(incident.playbook)

    def first_delivery(self, source: str, delivery_id: str) -> bool:
        """Record an inbound delivery; False when it was seen before (a retry or redelivery)."""
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
        # In the order written (ids), not by ``at``: replicas' clocks differ by seconds, and two
        # changes a second apart on two replicas would otherwise be told the wrong way round.
        return list(session.exec(query.order_by(col(TimelineEvent.id))))

    @property
    def invariant_prefixes(self) -> frozenset[str]:
        return frozenset(e.prefix for p in self.playbooks for e in p.taxonomy.invariants)

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


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    slack: AsyncWebClient | None = None,
) -> Runtime:
    """Load and validate the playbooks first (an invalid one stops the bot before it touches
    anything), then open the database and bring its schema up to date."""
    playbooks = load_playbooks(settings.runbooks_dir)
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    return Runtime(settings=settings, playbooks=playbooks, engine=engine, clock=clock or SystemClock(), slack=slack)
