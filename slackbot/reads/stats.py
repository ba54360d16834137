"""``/triage stats``: how fast we triage, per failure class, over the last 7 and 30 days.

Answers the questions a triage lead asks in a retro: are we classifying within the 20-minute
rule (median and p90 time to classify), how long until someone owns a card (MTTA), how long until
it is fixed (MTTR), and how often the first classification was wrong (reclassification rate:
incidents with a "reclassified" audit row / classified incidents).

Definitions, so the numbers can be checked by hand:

* The window holds the incidents **opened** in the last N days (``created_at`` ≥ now − N days,
  now from the injected clock), grouped by their current class ("unclassified" when none).
* Every duration starts when the card was opened (``created_at``).
* Time to classify counts first classifications by people; failures the contract check
  classified at once (no ``scenarioId``/``invariantId``) would only pull the median to zero.
* Median is the middle value (the mean of the two middle values for an even count); p90 is the
  nearest-rank 90th percentile (the ⌈0.9·n⌉-th smallest value).
* MTTA and MTTR are means over the incidents acknowledged / resolved so far.

How, with a long history: one range scan of ix_incidents_created (it covers every column read)
reads the widest window's incidents, with the database working out each time as microseconds
(a few integers each, as columns, no Python date parsing), and one range of ix_timeline_incident_kind says which
were reclassified; every window is a suffix of each class's rows (``bisect``). A repeated
``/triage stats`` reuses those rows while the oldest and newest incident and timeline ids stay the
same, and after a change reads only the incidents the new rows name (``_FactsCache``).
bench/history.py measures the three on 100,000 incidents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import BigInteger, Integer, String, and_, case, cast, extract, func, select, type_coerce
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import OutageLog, session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.effects import Event
from slackbot.reads.snapshot import read_session
from slackbot.slack.digest import FlakyTest, OwnerLoad, percent, short
from slackbot.slack.escape import escape

__all__ = ["ClassStats", "StatsService", "WindowStats", "nearest_rank", "percent", "short", "stats_text"]

log = logging.getLogger(__name__)

WINDOWS = (7, 30)
UNCLASSIFIED = "unclassified"
MICROS = 10**6


_MICRO = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)


@dataclass
class _ClassFacts:
    """What the windows need of one class's incidents, oldest first, a list per column (tens of
    thousands of small objects would cost more in allocation than the query): when each was
    opened, and its durations in microseconds from the opening (``None``: not happened)."""

    ids: list[int]
    created: list[int]  # microseconds since the epoch, ascending: a window is a suffix
    reclassified: list[bool]
    to_ack: list[int | None]
    to_resolve: list[int | None]
    to_classify: list[int | None]  # by people, not the contract check


_Facts = dict[str | None, _ClassFacts]  # by the incidents' current class


def _epoch_micros(value: datetime) -> int:
    return (value - (_EPOCH if value.tzinfo is None else _EPOCH_UTC)) // _MICRO


def _facts(
    session: Session,
    *,
    since: datetime,
    until: datetime | None = None,
    channel: str | None = None,
    only: set[int] | None = None,
) -> _Facts:
    """The incidents opened since ``since``: a range scan of ix_incidents_created reading a few
    columns per row, through Core rows (ORM rows cost more than the query), then which of them
    were reclassified."""
    sqlite = session.get_bind().dialect.name == "sqlite"

    def micros(column: Any) -> ColumnElement[Any]:
        """Microseconds since the epoch, worked out by the database (a Python parse per value cost
        most of a first read). SQLite stores SQLAlchemy's naive UTC text, always with six
        fractional digits: whole seconds from ``unixepoch``, the rest from the text, exactly."""
        if sqlite:
            text = type_coerce(column, String())
            return func.unixepoch(text) * MICROS + cast(func.substr(text, 21, 6), Integer)
        return cast(extract("epoch", column) * MICROS, BigInteger)

    created_at = micros(col(Incident.created_at))

    def since_opened(column: Any, condition: ColumnElement[bool] | None = None) -> ColumnElement[Any]:
        # max(0, …): replicas' clocks may disagree by a little. NULL: it has not happened.
        happened = col(column).is_not(None) if condition is None else and_(col(column).is_not(None), condition)
        greatest = func.max if sqlite else func.greatest  # SQLite's two-argument max is scalar
        return case((happened, greatest(0, micros(column) - created_at)))

    # The creation range stays the leading condition; the channel is checked on the window's rows,
    # never a reason to walk another index.
    bounds: list[ColumnElement[bool]] = [col(Incident.created_at) >= since]
    if until is not None:
        bounds.append(col(Incident.created_at) < until)
    if channel is not None:
        bounds.append(col(Incident.channel) == channel)
    if only is not None:  # the incidents a cached read has to catch up with
        bounds.append(col(Incident.id).in_(only))
    query = select(
        col(Incident.failure_class),
        col(Incident.id),
        created_at,
        since_opened(Incident.acknowledged_at),
        since_opened(Incident.resolved_at, col(Incident.status) == "resolved"),
        # Time to classify counts people: the contract check classifies its failures at once.
        since_opened(Incident.classified_at, col(Incident.contract_violation).is_(False)),
    ).where(*bounds)
    connection = session.connection()
    # By class, each oldest first: a class's rows are then one slice of each column. ``+`` keeps
    # SQLite on the creation range: ordering by the class tempts it to walk the class index whole.
    by_class = _Unindexed(col(Incident.failure_class))
    result = connection.execute(query.order_by(by_class, col(Incident.created_at), col(Incident.id)))
    classes: list[str | None] = []
    ids: list[int] = []
    created: list[int] = []
    to_ack: list[int | None] = []
    to_resolve: list[int | None] = []
    to_classify: list[int | None] = []
    columns: tuple[list[Any], ...] = (classes, ids, created, to_ack, to_resolve, to_classify)
    # A thousand rows at a time, kept as columns: rows that die young are never promoted to the
    # garbage collector's older generations, which full collections walk again and again.
    for chunk in result.partitions(1000):
        for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
            column.extend(values)
    if not ids:
        return {}
    # Which were reclassified: one range of ix_timeline_incident_kind from the window's first id
    # (ids and creation times rise together), not a probe per incident nor PostgreSQL's hashed
    # subplan over every reclassification ever recorded.
    again = set(
        connection.execute(
            select(col(TimelineEvent.incident_id))
            .where(
                col(TimelineEvent.incident_id) >= min(ids)
                if only is None
                else col(TimelineEvent.incident_id).in_(only),
                col(TimelineEvent.kind) == Event.RECLASSIFIED.value,
            )
            .distinct()
        ).scalars()
    )
    reclassified = [ident in again for ident in ids]
    facts: _Facts = {}
    first = 0
    for cls, group in groupby(classes):
        last = first + sum(1 for _ in group)
        facts[cls] = _ClassFacts(
            ids=ids[first:last],
            created=created[first:last],
            reclassified=reclassified[first:last] if cls is not None else [False] * (last - first),
            to_ack=to_ack[first:last],
            to_resolve=to_resolve[first:last],
            to_classify=to_classify[first:last],
        )
        first = last
    return facts


class _Unindexed(FunctionElement[Any]):
    inherit_cache = True
    name = "unindexed"


@compiles(_Unindexed)
def _unindexed(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Unindexed, "sqlite")
def _unindexed_sqlite(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


@dataclass(frozen=True)
class _Entry:
    key: tuple[Any, ...]  # the oldest and newest incident and timeline ids the facts were read at
    read_at: datetime  # when the window was last read whole
    since: datetime  # where that read's window started
    facts: _Facts


def _ids(connection: Connection) -> tuple[Any, ...]:
    return tuple(
        connection.execute(
            select(
                select(func.min(col(Incident.id))).scalar_subquery(),
                select(func.max(col(Incident.id))).scalar_subquery(),
                select(func.min(col(TimelineEvent.id))).scalar_subquery(),
                select(func.max(col(TimelineEvent.id))).scalar_subquery(),
            )
        ).one()
    )


class _FactsCache:
    """A repeated ``/triage stats`` reads four ids instead of the window, and after a change only
    the incidents that changed.

    The key comes from the database, so every replica sees a change: every change the windows
    count (opened, classified, acknowledged, resolved, reopened) writes a timeline row, and a new
    incident an incident row, so the newest ids move, and the rows past the cached ones name the
    incidents to read again; the archive deletes the oldest rows, so the oldest ids move and the
    window is read whole. The facts hold timestamps, not durations up to now: a later answer counts
    the same rows against its own window start, so it is the one a fresh read gives. What the ids
    cannot show (on PostgreSQL a transaction holding a lower id that commits after a read saw a
    higher one; a row changed by hand) lasts until the window is read whole again.

    That whole read (the month: about 50 ms of CPU with 100,000 incidents, 300 ms on a loaded
    machine) is the ``StatsRefresher``'s in a serving process: at start-up and every
    ``REFRESH_EVERY``, so a request answers from the newest whole read, patched with what the ids
    show since, and never reads the month itself. Without a refresher (the CLI, a test), or when
    it has not managed a read for ``STALE_AFTER`` (the database away), a request reads the window
    whole once its copy is ``CACHE_FOR`` old. One whole read at a time per database: a request
    that needs one while the refresher reads waits for that read instead of doing it again."""

    CACHE_FOR = timedelta(seconds=30)
    REFRESH_EVERY = timedelta(seconds=20)  # before CACHE_FOR runs out, with room for a slow read
    STALE_AFTER = 4 * CACHE_FOR  # a refresher that has not read for this long no longer vouches
    CATCH_UP = 1000  # more changed incidents than this: reading the window whole is as cheap

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Engine, _Entry] = weakref.WeakKeyDictionary()
        self._whole_reads: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
        self._refreshers: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()

    def facts(self, session: Session, *, since: datetime, now: datetime) -> _Facts:
        engine = session.get_bind().engine  # a session on a connection (a read-only one) shares its engine's
        key = _ids(session.connection())
        entry = self._usable(engine, since, now)
        if entry is not None and (facts := self._caught_up(engine, entry, key, session)) is not None:
            return facts
        with self._whole_read(engine):
            # A refresh that finished while this request waited is the newest whole read: use it.
            entry = self._usable(engine, since, now)
            if entry is not None and (facts := self._caught_up(engine, entry, key, session)) is not None:
                return facts
            facts = _facts(session, since=since)
            with self._lock:
                self._entries[engine] = _Entry(key, now, since, facts)
            return facts

    def refresh(self, engine: Engine, now: datetime, days: int = max(WINDOWS)) -> None:
        """Read the widest window whole, in a snapshot of its own: the ``StatsRefresher``'s work."""
        since = now - timedelta(days=days)
        with self._whole_read(engine), read_session(engine) as session:
            key = _ids(session.connection())  # the snapshot's first read: the ids and the window agree
            facts = _facts(session, since=since)
            with self._lock:
                self._entries[engine] = _Entry(key, now, since, facts)

    def attach(self, engine: Engine) -> None:
        with self._lock:
            self._refreshers[engine] = self._refreshers.get(engine, 0) + 1

    def detach(self, engine: Engine) -> None:
        with self._lock:
            left = self._refreshers.get(engine, 0) - 1
            if left > 0:
                self._refreshers[engine] = left
            else:
                self._refreshers.pop(engine, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _whole_read(self, engine: Engine) -> threading.Lock:
        with self._lock:
            return self._whole_reads.setdefault(engine, threading.Lock())

    def _usable(self, engine: Engine, since: datetime, now: datetime) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(engine)
            refreshed = engine in self._refreshers
        if entry is None or not (entry.read_at <= now and entry.since <= since):
            return None
        age = now - entry.read_at
        return entry if age < self.CACHE_FOR or (refreshed and age < self.STALE_AFTER) else None

    def _caught_up(self, engine: Engine, entry: _Entry, key: tuple[Any, ...], session: Session) -> _Facts | None:
        """The entry's facts as of ``key``, or None when only a whole read can tell."""
        if entry.key == key or _grew(key, entry.key):  # nothing new, or the entry is newer still
            return entry.facts
        if not _grew(entry.key, key):
            return None
        # The rows added since, a bounded number of them: past that a whole read is as cheap.
        connection = session.connection()
        opened = connection.execute(
            select(col(Incident.id)).where(col(Incident.id) > (entry.key[1] or 0)).limit(self.CATCH_UP + 1)
        ).all()
        events = connection.execute(
            select(col(TimelineEvent.incident_id))
            .where(col(TimelineEvent.id) > (entry.key[3] or 0))
            .limit(self.CATCH_UP + 1)
        ).all()
        if len(opened) > self.CATCH_UP or len(events) > self.CATCH_UP:
            return None
        changed = {ident for (ident,) in [*opened, *events] if ident is not None}
        facts = _patched(entry.facts, _facts(session, since=entry.since, only=changed), changed)
        with self._lock:  # as old as the whole read it started from; a newer whole read is kept
            if self._entries.get(engine) is entry:
                self._entries[engine] = _Entry(key, entry.read_at, entry.since, facts)
        return facts


def _grew(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Only rows added: the oldest ids are the same, the newest did not go back."""
    old_min_incident, old_max_incident, old_min_event, old_max_event = old
    min_incident, max_incident, min_event, max_event = new
    return (
        (old_min_incident, old_min_event) == (min_incident, min_event)
        and (max_incident or 0) >= (old_max_incident or 0)
        and (max_event or 0) >= (old_max_event or 0)
    )


def _patched(facts: _Facts, fresh: _Facts, changed: set[int]) -> _Facts:
    """``facts`` with the ``changed`` incidents' rows replaced by ``fresh`` (a class may gain or
    lose some); the classes they did not touch are kept as they are."""
    columns = ("ids", "created", "reclassified", "to_ack", "to_resolve", "to_classify")
    result = dict(facts)
    for cls in {*(c for c, f in facts.items() if not changed.isdisjoint(f.ids)), *fresh}:
        rows = []
        if cls in facts:
            old = facts[cls]
            rows = [row for row in zip(*(getattr(old, c) for c in columns), strict=True) if row[0] not in changed]
        if cls in fresh:
            rows += zip(*(getattr(fresh[cls], c) for c in columns), strict=True)
        if not rows:
            result.pop(cls, None)
            continue
        rows.sort(key=lambda row: (row[1], row[0]))  # oldest first, as the whole read has them
        ids, created, reclassified, to_ack, to_resolve, to_classify = (
            list(column) for column in zip(*rows, strict=True)
        )
        result[cls] = _ClassFacts(ids, created, reclassified, to_ack, to_resolve, to_classify)
    return result


FACTS_CACHE = _FactsCache()


class StatsRefresher:
    """Keeps ``/triage stats``' month read in the background (``_FactsCache``): once at start-up,
    then every ``REFRESH_EVERY``, until ``stop`` is set. The process's lifespan runs it."""

    def __init__(self, engine: Engine, clock: Clock, cache: _FactsCache = FACTS_CACHE) -> None:
        self.engine = engine
        self.clock = clock
        self.cache = cache
        self._outage = OutageLog(log, "/triage stats refresh")

    def refresh(self, now: datetime) -> None:
        try:
            self.cache.refresh(self.engine, now)
        except Exception as exc:  # the next refresh tries again; requests read it whole meanwhile
            self._outage.failed(exc, "/triage stats: the background read of the month failed")
        else:
            self._outage.succeeded()

    async def run(self, stop: asyncio.Event, *, poll: float = 1.0) -> None:
        """``poll``: how often (real seconds) it looks at the clock, whose time says when to refresh."""
        self.cache.attach(self.engine)
        try:
            last: datetime | None = None
            while not stop.is_set():
                now = self.clock.now()
                if last is None or not last <= now < last + self.cache.REFRESH_EVERY:
                    last = now
                    await asyncio.to_thread(self.refresh, now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)
        finally:
            self.cache.detach(self.engine)


@dataclass
class ClassStats:
    key: str
    label: str
    opened: int = 0
    classified: int = 0
    acknowledged: int = 0
    resolved: int = 0
    reclassified: int = 0
    classify_n: int = 0
    within_target: int = 0  # classified by people within the window's target (the timed rule)
    classify_median: float | None = None
    classify_p90: float | None = None
    mtta: float | None = None
    mttr: float | None = None

    @property
    def reclassification_rate(self) -> float | None:
        return self.reclassified / self.classified if self.classified else None


@dataclass
class WindowStats:
    days: int
    since: datetime
    classes: list[ClassStats]
    total: ClassStats
    within: timedelta | None = None  # the timed rule ``within_target`` was counted against, if any


@dataclass
class _Tally:
    """A class's counts while a window is counted, with what its means and ranks are made from."""

    stats: ClassStats
    first_id: int = 0
    to_ack: int = 0
    to_resolve: int = 0
    to_classify: list[int] = field(default_factory=list)

    def add(self, cls: str | None, facts: _ClassFacts, start: int) -> None:
        """The incidents opened from ``start`` on: a suffix of each list."""
        stats = self.stats
        stats.opened += len(facts.created) - start
        if cls is not None:
            stats.classified += len(facts.created) - start
            stats.reclassified += sum(facts.reclassified[start:])
        acked = [d for d in facts.to_ack[start:] if d is not None]
        stats.acknowledged += len(acked)
        self.to_ack += sum(acked)
        resolved = [d for d in facts.to_resolve[start:] if d is not None]
        stats.resolved += len(resolved)
        self.to_resolve += sum(resolved)
        self.to_classify += [d for d in facts.to_classify[start:] if d is not None]

    def merge(self, other: _Tally) -> None:
        mine, theirs = self.stats, other.stats
        for name in ("opened", "classified", "reclassified", "acknowledged", "resolved"):
            setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
        self.to_ack += other.to_ack
        self.to_resolve += other.to_resolve
        self.to_classify += other.to_classify

    def finish(self, within: int) -> ClassStats:
        stats = self.stats
        ordered = sorted(self.to_classify)
        stats.classify_n = len(ordered)
        stats.within_target = bisect_right(ordered, within)
        stats.classify_median, stats.classify_p90 = _median_p90(ordered)
        stats.mtta = self.to_ack / MICROS / stats.acknowledged if stats.acknowledged else None
        stats.mttr = self.to_resolve / MICROS / stats.resolved if stats.resolved else None
        return stats


def nearest_rank(values: list[float], quantile: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def _median_p90(ordered: list[int]) -> tuple[float | None, float | None]:
    """``statistics.median`` and the nearest rank ⌈0.9·n⌉ over the sorted durations, in seconds."""
    n = len(ordered)
    if not n:
        return None, None
    middle = ordered[(n - 1) // 2] / MICROS
    median = (middle + ordered[n // 2] / MICROS) / 2 if n % 2 == 0 else middle
    return median, ordered[(9 * n + 9) // 10 - 1] / MICROS


class StatsService:
    """One indexed range scan per answer: the widest window's incidents, a few values each, read
    once; every window is counted from those rows. Durations are differences of the stored
    timestamps in whole microseconds, so medians and ranks are exact on SQLite and PostgreSQL."""

    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock

    def report(self, engine: Engine, windows: tuple[int, ...] = WINDOWS) -> list[WindowStats]:
        with session_scope(engine) as session:
            return self.windows(session, windows, self.clock.now())

    def windows(
        self, session: Session, windows: tuple[int, ...], now: datetime, within: timedelta | None = None
    ) -> list[WindowStats]:
        """``/triage stats``: every window from one read of the widest one; ``within`` as for ``window``."""
        starts = {days: now - timedelta(days=days) for days in windows}
        facts = FACTS_CACHE.facts(session, since=min(starts.values()), now=now)
        return [self._count(facts, days, starts[days], within) for days in windows]

    def window(
        self,
        session: Session,
        days: int,
        now: datetime,
        *,
        channel: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        within: timedelta | None = None,
    ) -> WindowStats:
        """``channel``: only its incidents (a weekly digest); ``until``: only those opened before it
        (a digest sent late still covers its own week); ``within``: count the classifications made
        within that time (the timed rule's ``classify_within``); ``since``: where the window starts,
        when it is not ``days`` before ``now`` (a week across a DST change is 167 or 169 hours)."""
        since = since or now - timedelta(days=days)
        return self._count(_facts(session, since=since, until=until, channel=channel), days, since, within)

    def _count(self, facts: _Facts, days: int, since: datetime, within: timedelta | None = None) -> WindowStats:
        start = _epoch_micros(since)
        within_micros = within // _MICRO if within is not None else -1
        tallies = {
            key: _Tally(ClassStats(key, route.label)) for p in self.playbooks for key, route in p.classes.items()
        }
        tallies[UNCLASSIFIED] = _Tally(ClassStats(UNCLASSIFIED, "Unclassified"))
        known = len(tallies)
        for cls, class_facts in facts.items():
            first = bisect_left(class_facts.created, start)
            if first == len(class_facts.created):
                continue
            key = cls or UNCLASSIFIED
            first_id = min(class_facts.ids[first:])
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = _Tally(ClassStats(key, key), first_id=first_id)
            tally.first_id = min(tally.first_id, first_id)
            tally.add(cls, class_facts, first)
        # Classes no longer in routing.yml come last, in the order they first appeared.
        ordered = list(tallies.values())
        ordered = ordered[:known] + sorted(ordered[known:], key=lambda t: t.first_id)
        total = _Tally(ClassStats("all", "All classes"))
        for tally in ordered:
            total.merge(tally)
        classes = [tally.finish(within_micros) for tally in ordered if tally.stats.opened]
        return WindowStats(days, since, classes, total.finish(within_micros), within)


# -- the Slack answer ---------------------------------------------------------------------------


def _line(stats: ClassStats, within: timedelta | None = None) -> str:
    """``within``: the timed rule, whose share of classifications met is told when it was counted."""
    timed = (
        f" · {stats.within_target}/{stats.classify_n} within {_minutes(within)}" if within and stats.classify_n else ""
    )
    return (
        f"{stats.opened} opened · classify median {short(stats.classify_median)}, p90 {short(stats.classify_p90)}"
        f" (n={stats.classify_n}) · MTTA {short(stats.mtta)} (n={stats.acknowledged})"
        f" · MTTR {short(stats.mttr)} (n={stats.resolved})"
        f" · reclassified {stats.reclassified}/{stats.classified} ({percent(stats.reclassification_rate)})" + timed
    )


def _minutes(within: timedelta) -> str:
    return f"{int(within.total_seconds() // 60)} min"


@dataclass(frozen=True)
class WeekExtras:
    """What the weekly digest adds to the windows (``reads.digest``), for ``/triage stats``: the
    last week's recurring incidents and the owners with the most open ones."""

    days: int
    recurring: int
    owners: list[OwnerLoad]


def stats_text(
    windows: list[WindowStats],
    classify_within: timedelta | None,
    flaky: list[FlakyTest] | None = None,
    extras: WeekExtras | None = None,
) -> str:
    """Plain Slack text; labels come from routing.yml but are escaped like everything else.
    ``flaky``: the flakiest tests from test history (``slackbot.history.flaky``), when asked."""
    target = f" (classification target: {_minutes(classify_within)})" if classify_within else ""
    parts = [f"*Triage stats* — incidents opened in each window, durations from the card opening{target}"]
    for window in windows:
        parts.append(f"\n*Last {window.days} days* (since {as_utc(window.since).strftime('%Y-%m-%d %H:%M UTC')})")
        if extras is not None and window.days == extras.days:
            parts.append(f"*{window.total.opened}* new incidents · *{extras.recurring}* recurring (failed again)")
        if not window.total.opened:
            parts.append("No incidents opened.")
            continue
        parts.append(f"• *All:* {_line(window.total, window.within)}")
        parts.extend(f"• *{escape(stats.label)}:* {_line(stats, window.within)}" for stats in window.classes)
    if extras is not None:
        parts.append("\n*Most open incidents, by owner*")
        parts.extend(f"• {escape(o.owner)}: {o.open} open" for o in extras.owners)
        if not extras.owners:
            parts.append("No open incidents.")
    if flaky is not None:
        parts.append(
            "\n*Flakiest tests* (flake rate: the share of consecutive runs on the branch that flipped"
            " between failing and passing)"
        )
        parts.extend(f"• {test.line()}" for test in flaky)
        if not flaky:
            parts.append("No test flipped between failing and passing.")
        parts.append("`/triage stats chart` posts these as a chart in this channel.")
    return "\n".join(parts)
