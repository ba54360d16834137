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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, exists, extract, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.effects import Event
from slackbot.slack.digest import FlakyTest, percent, short
from slackbot.slack.escape import escape

__all__ = ["ClassStats", "StatsService", "WindowStats", "nearest_rank", "percent", "short", "stats_text"]

WINDOWS = (7, 30)
UNCLASSIFIED = "unclassified"
MICROS = 10**6


class _Grouping(FunctionElement[Any]):
    """A window is a range of creation times (ix_incidents_created). Grouping by class tempts
    SQLite, which has no statistics unless someone runs ANALYZE, to walk the class index instead:
    the whole table in class order. ``+column`` is SQLite's way to say "not by its index"."""

    inherit_cache = True
    name = "grouping"


@compiles(_Grouping)
def _grouping(element: _Grouping, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_Grouping, "sqlite")
def _grouping_sqlite(element: _Grouping, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def _by_class() -> ColumnElement[Any]:
    return _Grouping(col(Incident.failure_class))


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


def nearest_rank(values: list[float], quantile: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def _micros(engine_name: str, column: Any) -> ColumnElement[Any]:
    """Microseconds since the epoch, exactly, as an integer: the durations below are then the very
    values ``timedelta.total_seconds()`` gave when every incident was loaded into Python.
    SQLite stores SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff`` text; PostgreSQL's EXTRACT is exact."""
    if engine_name == "sqlite":
        whole = cast(func.strftime("%s", column), BigInteger) * MICROS
        return whole + cast(func.substr(column, 21, 6), BigInteger)
    return cast(extract("epoch", column) * MICROS, BigInteger)


class StatsService:
    """Aggregates in the database: one grouped query and one quantile query per window, whatever
    the history holds (the rows of a window never travel to Python)."""

    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock

    def report(self, engine: Engine, windows: tuple[int, ...] = WINDOWS) -> list[WindowStats]:
        now = self.clock.now()
        with session_scope(engine) as session:
            return [self.window(session, days, now) for days in windows]

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
        dialect = session.get_bind().dialect.name
        created = _micros(dialect, col(Incident.created_at))

        def elapsed(column: Any) -> ColumnElement[Any]:
            span = _micros(dialect, column) - created
            return case((span < 0, 0), else_=span)

        def flag(condition: ColumnElement[bool]) -> ColumnElement[Any]:
            return case((condition, 1), else_=0)

        was_reclassified = exists().where(
            col(TimelineEvent.incident_id) == col(Incident.id), col(TimelineEvent.kind) == Event.RECLASSIFIED.value
        )
        classified = col(Incident.failure_class).is_not(None)
        acknowledged = col(Incident.acknowledged_at).is_not(None)
        resolved = and_(col(Incident.resolved_at).is_not(None), col(Incident.status) == "resolved")
        counted = and_(col(Incident.classified_at).is_not(None), col(Incident.contract_violation).is_(False))
        # The creation range stays the leading condition (ix_incidents_created); the channel is
        # checked on the window's rows, never a reason to walk another index.
        bounds: list[ColumnElement[bool]] = [col(Incident.created_at) >= since]
        if until is not None:
            bounds.append(col(Incident.created_at) < until)
        if channel is not None:
            bounds.append(col(Incident.channel) == channel)
        within_micros = int(within.total_seconds() * MICROS) if within is not None else -1
        # One pass over the window's incidents: per row its flags and durations (microseconds),
        # then each time to classify ranked within its class and among all of them.
        rows = (
            select(
                _by_class().label("cls"),
                col(Incident.id).label("id"),
                flag(classified).label("classified"),
                flag(and_(classified, was_reclassified)).label("reclassified"),
                flag(acknowledged).label("acknowledged"),
                case((acknowledged, elapsed(Incident.acknowledged_at))).label("to_ack"),
                flag(resolved).label("resolved"),
                case((resolved, elapsed(Incident.resolved_at))).label("to_resolve"),
                case((counted, elapsed(Incident.classified_at))).label("d"),
            )
            .where(*bounds)
            .subquery()
        )
        timed = rows.c.d.is_(None)
        ranked = select(
            rows,
            func.row_number().over(partition_by=(rows.c.cls, timed), order_by=rows.c.d).label("rn"),
            func.count(rows.c.d).over(partition_by=rows.c.cls).label("n"),
            func.row_number().over(partition_by=timed, order_by=rows.c.d).label("rn_all"),
            func.count(rows.c.d).over().label("n_all"),
        ).subquery()
        r = ranked.c

        def at(rank: Any, position: Any) -> ColumnElement[Any]:
            return func.max(case((and_(r.d.is_not(None), rank == position), r.d)))

        # 1-based positions: the median's two middle ones (the same one when n is odd) and the
        # nearest rank ⌈0.9·n⌉ = (9n + 9) div 10.
        grouped = session.execute(
            select(
                r.cls,
                func.count(),
                func.sum(r.classified),
                func.sum(r.reclassified),
                func.sum(r.acknowledged),
                func.sum(r.to_ack),
                func.sum(r.resolved),
                func.sum(r.to_resolve),
                func.count(r.d),
                func.min(r.id),
                func.sum(case((and_(r.d.is_not(None), r.d <= within_micros), 1), else_=0)),
                at(r.rn, (r.n + 1) // 2),
                at(r.rn, r.n // 2 + 1),
                at(r.rn, (9 * r.n + 9) // 10),
                at(r.rn_all, (r.n_all + 1) // 2),
                at(r.rn_all, r.n_all // 2 + 1),
                at(r.rn_all, (9 * r.n_all + 9) // 10),
            ).group_by(r.cls)
        ).all()

        by_class = {key: ClassStats(key, route.label) for p in self.playbooks for key, route in p.classes.items()}
        by_class[UNCLASSIFIED] = ClassStats(UNCLASSIFIED, "Unclassified")
        total = ClassStats("all", "All classes")
        sums: dict[str, tuple[int, int]] = {}
        overall: list[Any] = [None, None, None]
        # Classes no longer in routing.yml come last, in the order they first appeared.
        for row in sorted(grouped, key=lambda r: (r[0] is not None and r[0] not in by_class, r[9])):
            key = row[0] or UNCLASSIFIED
            stats = by_class.setdefault(key, ClassStats(key, key))
            for target in (stats, total):
                target.opened += row[1]
                target.classified += int(row[2] or 0)
                target.reclassified += int(row[3] or 0)
                target.acknowledged += int(row[4] or 0)
                target.resolved += int(row[6] or 0)
                target.classify_n += int(row[8] or 0)
                target.within_target += int(row[10] or 0)
                ack, res = sums.get(target.key, (0, 0))
                sums[target.key] = (ack + int(row[5] or 0), res + int(row[7] or 0))
            stats.classify_median, stats.classify_p90 = _median_p90(stats.classify_n, row[11], row[12], row[13])
            overall = [mine if mine is not None else found for mine, found in zip(row[14:17], overall, strict=True)]
        total.classify_median, total.classify_p90 = _median_p90(total.classify_n, *overall)
        for stats in [*by_class.values(), total]:
            ack_sum, resolve_sum = sums.get(stats.key, (0, 0))
            stats.mtta = ack_sum / MICROS / stats.acknowledged if stats.acknowledged else None
            stats.mttr = resolve_sum / MICROS / stats.resolved if stats.resolved else None
        return WindowStats(days, since, [s for s in by_class.values() if s.opened], total)


def _median_p90(n: int, low: Any, high: Any, p90: Any) -> tuple[float | None, float | None]:
    """The same values ``statistics.median`` and the nearest rank give over the sorted durations."""
    if not n:
        return None, None
    middle = int(low) / MICROS
    median = (middle + int(high) / MICROS) / 2 if n % 2 == 0 else middle
    return median, int(p90) / MICROS


# -- the Slack answer ---------------------------------------------------------------------------


def _line(stats: ClassStats) -> str:
    return (
        f"{stats.opened} opened · classify median {short(stats.classify_median)}, p90 {short(stats.classify_p90)}"
        f" (n={stats.classify_n}) · MTTA {short(stats.mtta)} (n={stats.acknowledged})"
        f" · MTTR {short(stats.mttr)} (n={stats.resolved})"
        f" · reclassified {stats.reclassified}/{stats.classified} ({percent(stats.reclassification_rate)})"
    )


def stats_text(
    windows: list[WindowStats], classify_within: timedelta | None, flaky: list[FlakyTest] | None = None
) -> str:
    """Plain Slack text; labels come from routing.yml but are escaped like everything else.
    ``flaky``: the flakiest tests from test history (``slackbot.history.flaky``), when asked."""
    target = f" (classification target: {int(classify_within.total_seconds() // 60)} min)" if classify_within else ""
    parts = [f"*Triage stats* — incidents opened in each window, durations from the card opening{target}"]
    for window in windows:
        parts.append(f"\n*Last {window.days} days* (since {as_utc(window.since).strftime('%Y-%m-%d %H:%M UTC')})")
        if not window.total.opened:
            parts.append("No incidents opened.")
            continue
        parts.append(f"• *All:* {_line(window.total)}")
        parts.extend(f"• *{escape(stats.label)}:* {_line(stats)}" for stats in window.classes)
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
