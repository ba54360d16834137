"""Prometheus metrics for one app (``GET /metrics``), in a registry the app owns.

Not the global default registry: tests and the 14-day simulation build several apps in one
process, and each must report only its own numbers.

Three kinds of numbers, each observed at the one place that knows them, so no service calls a
metric:

* **State** (open incidents by class, outbox depth and oldest age, dead letters) is read from the
  database when Prometheus scrapes (``_DatabaseCollector``). It is the same for every replica and
  can never drift from what ``/triage list`` shows.
* **Transitions** (time to acknowledge, classify and resolve; escalations) are observed from the
  writes themselves, after they commit. A SQLAlchemy session listener notices an incident's
  ``acknowledged_at`` / ``classified_at`` / ``resolved_at`` going from empty to set during a flush
  (whoever set it: button, command, API, timer), and the audit rows inserted into ``timeline``
  whose kind is an escalation (the 20-minute rule, a manual escalation, a multi-prefix run, a
  recurring flake). Both wait in the session until it commits and are dropped on rollback, so a
  refused or rolled-back change is never counted, and a new code path that writes the same
  columns or audit rows is counted without touching this module. Each replica counts what it
  committed itself, the usual Prometheus counter semantics (sum over replicas).
* **Deliveries** (pages sent and failed, outbox outcomes, dead letters by kind and reason, Slack
  API errors by method, Slack auth failures) come from the outbox worker (page handlers wrapped,
  ``on_result`` and ``on_dead_letter``) and from a slack_sdk retry handler that never retries but
  sees every HTTP attempt and its ``ok``/``error``: the client's own interception point, shared by
  Bolt's per-request clients (Bolt copies the list).
* **The bot's own health**: how late each timer fired (from the scheduler's tick), how overdue the
  oldest pending timer is (read at scrape), and what the ingest and webhook routes answered by
  status class (``handlers.http.metrics.CountIngest``). deploy/prometheus/triagebot-rules.yml
  alerts on these and deploy/grafana/triagebot-dashboard.json shows them; a test checks that
  every metric they read is exported here.

Labels stay bounded: kinds, reasons, endpoints and status classes are fixed sets; Slack's error
codes and API method names are the only open-ended ones, and both are Slack's finite vocabulary.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import PASSIVE_NO_INITIALIZE, get_history
from sqlmodel import Session, col, select

from slackbot.clock import Clock, as_utc
from slackbot.db import bulk
from slackbot.db.models import Incident, OutboxItem, TimelineEvent, Timer
from slackbot.domain.states import TimerKind, TimerState
from slackbot.incidents.timers import FireResult
from slackbot.outbox.worker import SLACK_AUTH_ERRORS, Handler, OutboxWorker
from slackbot.scheduler import TimerScheduler

# Seconds. The 20-minute rule sits on a bucket edge; resolution is measured in hours to days.
BUCKETS = (30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800)
UNCLASSIFIED = "unclassified"

# Timer lateness, seconds: a healthy scheduler fires within a tick (0.25 s) or two.
LATENESS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# What a report or webhook endpoint answered, by path; the label is the endpoint's short name.
INGEST_ENDPOINTS = {
    "/ingest/report": "report",
    "/ingest/junit": "junit",
    "/webhooks/github": "github",
    "/webhooks/alertmanager": "alertmanager",
}
STATUS_CLASSES = ("2xx", "4xx", "5xx")
PAGE_KINDS = ("dm", "pagerduty", "run_escalation")
ESCALATION_REASONS = ("unclassified", "manual", "multi_prefix", "recurred")
# Timeline kinds that are escalations, and the reason each one counts under.
_ESCALATION_KINDS = {"escalated", "multi_prefix", "reopened"}
_TRANSITIONS = (
    ("acknowledged_at", "acknowledge"),
    ("classified_at", "classify"),
    ("resolved_at", "resolve"),
)
_PENDING = "triagebot_metrics_pending"


class AppMetrics:
    def __init__(self, engine: Engine, clock: Clock, classes: Iterable[str] = ()) -> None:
        """``classes``: every class key of every playbook, so each open-incident gauge exists
        (at 0) before its first incident."""
        self.engine = engine
        self.registry = CollectorRegistry()
        r = self.registry
        self.time_to = {
            "acknowledge": Histogram(
                "triagebot_time_to_acknowledge_seconds",
                "From the card being opened to the first acknowledgement (or assignment).",
                ["failure_class"],
                buckets=BUCKETS,
                registry=r,
            ),
            "classify": Histogram(
                "triagebot_time_to_classify_seconds",
                "From the card being opened to the first human classification (the 20-minute rule).",
                ["failure_class"],
                buckets=BUCKETS,
                registry=r,
            ),
            "resolve": Histogram(
                "triagebot_time_to_resolve_seconds",
                "From the card being opened to the incident being resolved.",
                ["failure_class"],
                buckets=BUCKETS,
                registry=r,
            ),
        }
        self.escalations = Counter(
            "triagebot_escalations",
            "Escalations by reason: unclassified (the timed rule), manual, multi_prefix, recurred (reopened).",
            ["reason"],
            registry=r,
        )
        self.pages_sent = Counter(
            "triagebot_pages_sent", "Pages delivered, by channel (dm, pagerduty, run_escalation).", ["kind"], registry=r
        )
        self.pages_failed = Counter(
            "triagebot_pages_failed",
            "Pages that could not be delivered after all retries (dead-lettered), by channel.",
            ["kind"],
            registry=r,
        )
        self.outbox_deliveries = Counter(
            "triagebot_outbox_deliveries",
            "Outbox delivery attempts by kind and outcome (done, retry, dead).",
            ["kind", "outcome"],
            registry=r,
        )
        self.slack_api_errors = Counter(
            "triagebot_slack_api_errors",
            "Slack Web API calls answered with an error (or failing to connect), by method and error.",
            ["method", "error"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "triagebot_outbox_dead_lettered",
            "Deliveries given up (dead-lettered), by kind and reason: slack_auth (the token), slack_scope "
            "(the app's scopes), slack_target (a channel, user or message gone), slack_payload (what was "
            "sent), exhausted (retries or time budget ran out), refused (the destination said no).",
            ["kind", "reason"],
            registry=r,
        )
        self.slack_auth_failures = Counter(
            "triagebot_slack_auth_failures",
            "Slack Web API calls refused because the bot token is not valid, by Slack's error.",
            ["error"],
            registry=r,
        )
        self.timer_lateness = Histogram(
            "triagebot_timer_lateness_seconds",
            "How long after its due time a timer fired (escalation rule, status reminder), by kind.",
            ["kind"],
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.ingest_requests = Counter(
            "triagebot_ingest_requests",
            "Reports and webhooks received, by endpoint and the status class answered (2xx, 4xx, 5xx).",
            ["endpoint", "code"],
            registry=r,
        )
        # Series a dashboard expects from the start, so "no escalations yet" reads as 0, not as missing
        # (and an alert's increase() sees the first failure, which it would not on a series born at 1).
        for reason in ESCALATION_REASONS:
            self.escalations.labels(reason)
        for kind in PAGE_KINDS:
            self.pages_sent.labels(kind)
            self.pages_failed.labels(kind)
        for error in sorted(SLACK_AUTH_ERRORS):
            self.slack_auth_failures.labels(error)
        for timer_kind in TimerKind:
            self.timer_lateness.labels(timer_kind.value)
        for endpoint in INGEST_ENDPOINTS.values():
            for code in STATUS_CLASSES:
                self.ingest_requests.labels(endpoint, code)
        r.register(_DatabaseCollector(engine, clock, classes))
        _watch(engine, self)

    def exposition(self) -> bytes:
        """The Prometheus text format. Reads the database: call it off the event loop."""
        return generate_latest(self.registry)

    # -- transitions (called after commit by the session listener) ------------------------------

    def observe_transition(self, which: str, seconds: float, failure_class: str | None) -> None:
        self.time_to[which].labels(failure_class or UNCLASSIFIED).observe(max(0.0, seconds))

    def observe_escalation(self, reason: str) -> None:
        self.escalations.labels(reason).inc()

    # -- deliveries -----------------------------------------------------------------------------

    def instrument_worker(self, worker: OutboxWorker) -> None:
        """Count pages as they are delivered and every outcome the worker reports."""
        for kind in PAGE_KINDS:
            if kind in worker.handlers:
                worker.handlers[kind] = self._counting_page(kind, worker.handlers[kind])
        previous = worker.on_result

        def on_result(item: OutboxItem, outcome: str, error: str | None) -> None:
            self.outbox_deliveries.labels(item.kind, outcome).inc()
            if outcome == "dead" and item.kind in PAGE_KINDS:
                self.pages_failed.labels(item.kind).inc()
            if previous is not None:
                previous(item, outcome, error)

        worker.on_result = on_result
        previous_dead = worker.on_dead_letter

        def on_dead_letter(item: OutboxItem, reason: str, error: str) -> None:
            self.dead_lettered.labels(item.kind, reason).inc()
            if previous_dead is not None:
                previous_dead(item, reason, error)

        worker.on_dead_letter = on_dead_letter

    def instrument_timers(self, scheduler: TimerScheduler) -> None:
        """Observe how late each timer fired against its due time (a tick's result says)."""
        tick = scheduler.tick

        async def observed_tick() -> FireResult:
            result = await tick()
            for kind, seconds in result.late:
                self.timer_lateness.labels(kind).observe(max(0.0, seconds))
            return result

        scheduler.tick = observed_tick  # type: ignore[method-assign]

    def observe_ingest(self, path: str, status: int) -> None:
        endpoint = INGEST_ENDPOINTS.get(path)
        if endpoint is not None:
            self.ingest_requests.labels(endpoint, f"{min(max(status // 100, 2), 5)}xx").inc()

    def _counting_page(self, kind: str, handler: Handler) -> Handler:
        async def deliver(item: OutboxItem) -> dict[str, Any]:
            result = await handler(item)
            if not result.get("skipped"):  # a page no longer wanted (classified meanwhile) is not sent
                self.pages_sent.labels(kind).inc()
            return result

        return deliver

    def instrument_slack(self, client: AsyncWebClient) -> None:
        if not any(isinstance(h, _SlackErrorCounter) for h in client.retry_handlers):
            client.retry_handlers.insert(0, _SlackErrorCounter(self.slack_api_errors, self.slack_auth_failures))


class _SlackErrorCounter(AsyncRetryHandler):
    """Sees every attempt slack_sdk makes and never asks for a retry (retries are the outbox's
    job); first in the list so it sees attempts another handler then retries, too."""

    def __init__(self, counter: Counter, auth_failures: Counter) -> None:
        super().__init__(max_retry_count=0)
        self.counter = counter
        self.auth_failures = auth_failures

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = _method(request.url)
        if error is not None:
            self.counter.labels(method, type(error).__name__).inc()
        elif response is not None:
            body = response.body if isinstance(response.body, dict) else {}
            if response.status_code >= 400 or body.get("ok") is False:
                answer = str(body.get("error") or f"http_{response.status_code}")
                self.counter.labels(method, answer).inc()
                if answer in SLACK_AUTH_ERRORS:
                    self.auth_failures.labels(answer).inc()
        return False

    async def _can_retry_async(self, **_: Any) -> bool:  # pragma: no cover - can_retry_async overrides
        return False


def _method(url: str) -> str:
    """``https://slack.com/api/chat.postMessage`` → ``chat.postMessage``; the upload URL of
    files_upload_v2 (no API method) → ``files.upload_url``."""
    path = url.split("?", 1)[0]
    if "/api/" in path:
        return path.rsplit("/api/", 1)[1].strip("/") or "unknown"
    return "files.upload_url"


# -- scrape-time state --------------------------------------------------------------------------


class _DatabaseCollector(Collector):
    def __init__(self, engine: Engine, clock: Clock, classes: Iterable[str]) -> None:
        self.engine = engine
        self.clock = clock
        self.classes = tuple(dict.fromkeys([*classes, UNCLASSIFIED]))

    def describe(self) -> Iterable[Metric]:
        return []  # computed per scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("triagebot_metrics_database_up", "1 when the scrape could read the database.")
        try:
            state = self._read()
        except Exception:  # a scrape reports the database as down rather than failing entirely
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        opened = GaugeMetricFamily(
            "triagebot_open_incidents",
            "Open incidents by failure class (unclassified: not yet).",
            labels=["failure_class"],
        )
        for name in sorted(set(self.classes) | set(state["open"])):
            opened.add_metric([name], state["open"].get(name, 0))
        yield opened
        depth = GaugeMetricFamily(
            "triagebot_outbox_depth",
            "Effects waiting to be delivered (pending or being sent), by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(state["depth"].items()):
            depth.add_metric([kind], count)
        yield depth
        yield GaugeMetricFamily(
            "triagebot_outbox_oldest_age_seconds",
            "Age of the oldest effect still waiting to be delivered (0 when none waits).",
            value=state["oldest_age"],
        )
        yield GaugeMetricFamily(
            "triagebot_outbox_dead_letters",
            "Effects that could not be delivered and need a person.",
            value=state["dead"],
        )
        yield GaugeMetricFamily(
            "triagebot_timers_overdue_seconds",
            "How far past its due time the most overdue pending timer is (0 when none is due): "
            "grows when no replica fires timers.",
            value=state["overdue"],
        )

    def _read(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            opened: dict[str, int] = {}
            rows = session.exec(
                select(Incident.failure_class, func.count())
                .where(Incident.status == "open")
                .group_by(col(Incident.failure_class))
            )
            for failure_class, count in rows:
                opened[failure_class or UNCLASSIFIED] = int(count)
            waiting = col(OutboxItem.state).in_(("pending", "sending"))
            depth = {
                str(kind): int(count)
                for kind, count in session.exec(
                    select(OutboxItem.kind, func.count()).where(waiting).group_by(col(OutboxItem.kind))
                )
            }
            oldest: datetime | None = session.exec(select(func.min(OutboxItem.created_at)).where(waiting)).one()
            dead = int(
                session.exec(select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "dead")).one()
            )
            overdue_since: datetime | None = session.exec(
                select(func.min(Timer.due_at)).where(Timer.state == TimerState.PENDING.value)
            ).one()
        now = self.clock.now()
        age = max(0.0, (now - as_utc(oldest)).total_seconds()) if oldest else 0.0
        overdue = max(0.0, (now - as_utc(overdue_since)).total_seconds()) if overdue_since else 0.0
        return {"open": opened, "depth": depth, "oldest_age": age, "dead": dead, "overdue": overdue}


# -- observing committed transitions ------------------------------------------------------------

_lock = threading.Lock()
_watchers: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[AppMetrics]] = weakref.WeakKeyDictionary()
_installed = False


def _watch(engine: Engine, metrics: AppMetrics) -> None:
    """Route commits on ``engine`` to ``metrics``. Weak on both sides: an app that is dropped
    (a finished test) stops being notified without anyone unregistering it."""
    global _installed
    with _lock:
        _watchers.setdefault(engine, weakref.WeakSet()).add(metrics)
        if not _installed:
            bulk.observe(TimelineEvent.__table__, _on_timeline_rows)  # type: ignore[attr-defined]
            event.listen(OrmSession, "after_flush", _on_flush)
            event.listen(OrmSession, "after_commit", _on_commit)
            event.listen(OrmSession, "after_rollback", _on_rollback)
            _installed = True


def _metrics_for(session: OrmSession) -> list[AppMetrics]:
    bind = session.bind
    if not isinstance(bind, Engine):
        return []
    with _lock:
        found = _watchers.get(bind)
        return list(found) if found else []


def _pending(session: OrmSession) -> list[Callable[[AppMetrics], None]]:
    pending: list[Callable[[AppMetrics], None]] = session.info.setdefault(_PENDING, [])
    return pending


def _on_timeline_rows(session: OrmSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Audit rows are bulk-inserted (``Effects.flush``); pick out the escalations."""
    if not _metrics_for(session):
        return
    for row in rows:
        if row.get("kind") in _ESCALATION_KINDS:
            _pending(session).append(partial(AppMetrics.observe_escalation, reason=_escalation_reason(row)))


def _escalation_reason(row: Mapping[str, Any]) -> str:
    if row["kind"] == "multi_prefix":
        return "multi_prefix"
    if row["kind"] == "reopened":
        return "recurred"
    return "unclassified" if row.get("source") == "timer" else "manual"


def _on_flush(session: OrmSession, _context: Any) -> None:
    """An incident's ``*_at`` column going from empty to set is the transition itself."""
    if not _metrics_for(session):
        return
    for obj in session.dirty:
        if not isinstance(obj, Incident):
            continue
        for column, which in _TRANSITIONS:
            # Not ``inspect(obj).attrs``: that builds and keeps an AttributeState for each of the
            # incident's 50-odd columns, and a recurrence of 8,000 open incidents left 424,000 of
            # them for the collector to walk in one go after the ingest (an 80-100 ms loop stall).
            history = get_history(obj, column, passive=PASSIVE_NO_INITIALIZE)
            added = [v for v in history.added if v is not None]
            before = [v for v in history.deleted if v is not None]
            if not added or before:
                continue
            seconds = (as_utc(added[0]) - as_utc(obj.created_at)).total_seconds()
            failure_class = obj.failure_class or (obj.suggested_class if which == "acknowledge" else None)
            _pending(session).append(
                partial(AppMetrics.observe_transition, which=which, seconds=seconds, failure_class=failure_class)
            )


def _on_commit(session: OrmSession) -> None:
    observations = session.info.pop(_PENDING, None)
    if not observations:
        return
    for metrics in _metrics_for(session):
        for observe in observations:
            observe(metrics)


def _on_rollback(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
