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
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.effects import Event
from slackbot.slack.escape import escape

WINDOWS = (7, 30)
UNCLASSIFIED = "unclassified"


@dataclass
class ClassStats:
    key: str
    label: str
    opened: int = 0
    classified: int = 0
    acknowledged: int = 0
    resolved: int = 0
    reclassified: int = 0
    to_classify: list[float] = field(default_factory=list)
    to_acknowledge: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)

    @property
    def classify_median(self) -> float | None:
        return statistics.median(self.to_classify) if self.to_classify else None

    @property
    def classify_p90(self) -> float | None:
        return nearest_rank(self.to_classify, 0.9)

    @property
    def mtta(self) -> float | None:
        return statistics.fmean(self.to_acknowledge) if self.to_acknowledge else None

    @property
    def mttr(self) -> float | None:
        return statistics.fmean(self.to_resolve) if self.to_resolve else None

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


class StatsService:
    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock

    def report(self, engine: Engine, windows: tuple[int, ...] = WINDOWS) -> list[WindowStats]:
        now = self.clock.now()
        with session_scope(engine) as session:
            return [self.window(session, days, now) for days in windows]

    def window(self, session: Session, days: int, now: datetime) -> WindowStats:
        since = now - timedelta(days=days)
        incidents = list(session.exec(select(Incident).where(col(Incident.created_at) >= since)))
        ids = [i.id for i in incidents if i.id is not None]
        reclassified: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            reclassified.update(
                int(i)
                for i in session.exec(
                    select(TimelineEvent.incident_id)
                    .where(TimelineEvent.kind == Event.RECLASSIFIED.value, col(TimelineEvent.incident_id).in_(chunk))
                    .distinct()
                )
                if i is not None
            )
        by_class = {key: ClassStats(key, route.label) for p in self.playbooks for key, route in p.classes.items()}
        by_class[UNCLASSIFIED] = ClassStats(UNCLASSIFIED, "Unclassified")
        total = ClassStats("all", "All classes")
        for incident in incidents:
            key = incident.failure_class or UNCLASSIFIED
            stats = by_class.setdefault(key, ClassStats(key, key))  # a class no longer in routing.yml
            _count(stats, incident, incident.id in reclassified)
            _count(total, incident, incident.id in reclassified)
        return WindowStats(days, since, [s for s in by_class.values() if s.opened], total)


def _count(stats: ClassStats, incident: Incident, reclassified: bool) -> None:
    opened = as_utc(incident.created_at)
    stats.opened += 1
    if incident.failure_class:
        stats.classified += 1
        stats.reclassified += int(reclassified)
    if incident.classified_at and not incident.contract_violation:
        stats.to_classify.append(_seconds(opened, incident.classified_at))
    if incident.acknowledged_at:
        stats.acknowledged += 1
        stats.to_acknowledge.append(_seconds(opened, incident.acknowledged_at))
    if incident.resolved_at and incident.status == "resolved":
        stats.resolved += 1
        stats.to_resolve.append(_seconds(opened, incident.resolved_at))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (as_utc(end) - start).total_seconds())


# -- the Slack answer ---------------------------------------------------------------------------


def short(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``: compact enough for one line per class."""
    if seconds is None:
        return "—"
    value = round(seconds)
    if value < 60:
        return f"{value}s"
    minutes, _ = divmod(value, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


def _line(stats: ClassStats) -> str:
    return (
        f"{stats.opened} opened · classify median {short(stats.classify_median)}, p90 {short(stats.classify_p90)}"
        f" (n={len(stats.to_classify)}) · MTTA {short(stats.mtta)} (n={stats.acknowledged})"
        f" · MTTR {short(stats.mttr)} (n={stats.resolved})"
        f" · reclassified {stats.reclassified}/{stats.classified} ({percent(stats.reclassification_rate)})"
    )


def stats_text(windows: list[WindowStats], classify_within: timedelta | None) -> str:
    """Plain Slack text; labels come from routing.yml but are escaped like everything else."""
    target = f" (classification target: {int(classify_within.total_seconds() // 60)} min)" if classify_within else ""
    parts = [f"*Triage stats* — incidents opened in each window, durations from the card opening{target}"]
    for window in windows:
        parts.append(f"\n*Last {window.days} days* (since {as_utc(window.since).strftime('%Y-%m-%d %H:%M UTC')})")
        if not window.total.opened:
            parts.append("No incidents opened.")
            continue
        parts.append(f"• *All:* {_line(window.total)}")
        parts.extend(f"• *{escape(stats.label)}:* {_line(stats)}" for stats in window.classes)
    return "\n".join(parts)
