"""What a channel's weekly digest says, read from the database into a ``DigestView``.

The per-class numbers are ``StatsService``'s (one mechanism for ``/triage stats`` and the digest),
restricted to the channel and to the week. Definitions, so the digest can be checked by hand:

* **new**: incidents of the channel opened in the week;
* **recurring**: incidents of the channel that failed again in the week (a later occurrence, or a
  reopening), whenever they were opened;
* **owners**: the channel's open incidents by the owner of their class (the chosen one, else the
  suggested one), named by the handle in routing.yml, never mentioned: a digest pages nobody.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlmodel import Session, col

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.effects import Event
from slackbot.reads.stats import ClassStats, StatsService, WindowStats
from slackbot.slack.digest import ClassLine, DigestView, FlakyTest, OwnerLoad

OWNERS = 5


def class_line(stats: ClassStats) -> ClassLine:
    return ClassLine(
        label=stats.label,
        opened=stats.opened,
        classified=stats.classified,
        classify_n=stats.classify_n,
        classify_median=stats.classify_median,
        classify_p90=stats.classify_p90,
        within_target=stats.within_target,
        resolved=stats.resolved,
        mttr=stats.mttr,
        reclassified=stats.reclassified,
    )


def classify_within(playbooks: Playbooks, channel: str | None) -> timedelta | None:
    """The timed rule of the playbook whose cards go to ``channel`` (the default playbook's else)."""
    for playbook in playbooks:
        if channel in playbook.channels:
            return playbook.policy.classify_within
    return playbooks.default.policy.classify_within


def week_stats(
    session: Session, playbooks: Playbooks, channel: str | None, since: datetime, until: datetime
) -> WindowStats:
    service = StatsService(playbooks, FakeClock(until))  # the window is given, not the time now
    within = classify_within(playbooks, channel)
    days = round((until - since) / timedelta(days=1))
    return service.window(session, days, until, channel=channel, since=since, until=until, within=within)


def recurring(session: Session, channel: str | None, since: datetime, until: datetime) -> int:
    """By the audit trail's time index: the week's recurrence rows, then their incidents' channel
    (every channel's for ``None``: ``/triage stats``)."""
    query = select(func.count(distinct(col(TimelineEvent.incident_id)))).where(
        col(TimelineEvent.at) >= since,
        col(TimelineEvent.at) < until,
        col(TimelineEvent.kind).in_([Event.OCCURRENCE.value, Event.REOPENED.value]),
    )
    if channel is not None:
        # Only a channel needs the incident: every row names one that exists (a foreign key), and
        # a probe per row cost more than the week's range itself (16 ms instead of 7 on 100,000).
        query = query.join(Incident, col(Incident.id) == col(TimelineEvent.incident_id)).where(
            col(Incident.channel) == channel
        )
    return int(session.execute(query).scalar_one() or 0)


def owners(session: Session, playbooks: Playbooks, channel: str | None, limit: int = OWNERS) -> list[OwnerLoad]:
    """``channel``: its open incidents; ``None``: every channel's (``/triage stats``)."""
    query = select(col(Incident.playbook), col(Incident.failure_class), col(Incident.suggested_class), func.count())
    query = query.where(col(Incident.status) == "open")
    if channel is not None:
        query = query.where(col(Incident.channel) == channel)
    rows = session.execute(
        query.group_by(col(Incident.playbook), col(Incident.failure_class), col(Incident.suggested_class))
    ).all()
    load: Counter[str] = Counter()
    for playbook_name, chosen, suggested, count in rows:
        playbook = playbooks.get(playbook_name)
        owning = chosen or suggested
        if owning is None or playbook.class_route(owning) is None:
            load["unclassified (no owner yet)"] += int(count)
            continue
        load[playbook.owner_target(owning).describe()] += int(count)
    return [OwnerLoad(owner, count) for owner, count in sorted(load.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def read_digest(
    session: Session,
    playbooks: Playbooks,
    channel: str,
    since: datetime,
    until: datetime,
    zone: str,
    flaky: list[FlakyTest],
) -> DigestView:
    window = week_stats(session, playbooks, channel, since, until)
    return DigestView(
        channel=channel,
        since=since,
        until=until,
        zone=zone,
        new=window.total.opened,
        recurring=recurring(session, channel, since, until),
        classify_within=classify_within(playbooks, channel),
        total=class_line(window.total),
        classes=[class_line(c) for c in window.classes],
        flaky=flaky,
        owners=owners(session, playbooks, channel),
    )
