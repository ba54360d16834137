"""The weekly digest's schedule, and the charts and stats it shares with ``/triage stats``.

Each digest channel has one durable timer (subject ``digest:<channel>``) that the timer service
fires like any other: claimed by one replica, in one transaction. Firing writes the week's
``digests`` row and its outbox rows (the message, then the chart) and re-arms the timer for the
next week. ``digests`` is unique per (channel, week), so even a timer armed twice (two replicas
starting at once) schedules a week once.

After downtime the timer is simply overdue: it fires at the next tick for the **latest** week that
came due (one digest, not one per missed week) and is re-armed for the next scheduled moment.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.config.workspace import DigestSchedule
from slackbot.db.engine import session_scope
from slackbot.db.models import Digest, OutboxItem, Timer
from slackbot.domain.effects import EffectKind, Key
from slackbot.domain.states import TimerKind, TimerState
from slackbot.history.flaky import flakiest
from slackbot.incidents.effects import Effects, arm_timer, cancel_timer, table, utc
from slackbot.reads.digest import class_line, classify_within, owners, read_digest, recurring, week_stats
from slackbot.reads.snapshot import read_session
from slackbot.reads.stats import WINDOWS, StatsService, WeekExtras, stats_text
from slackbot.slack.digest import ChartData, DigestView, chart_data, digest_chart

SUBJECT = "digest:"
STATS_FLAKY_DAYS = max(WINDOWS)  # /triage stats' longest window


def digest_channels(playbooks: Playbooks) -> list[str]:
    schedule = playbooks.workspace.digest
    if schedule is None:
        return []
    return sorted(set(schedule.channels or playbooks.routed_channels))


def ensure_timers(engine: Engine, playbooks: Playbooks, clock: Clock) -> list[str]:
    """At start: a pending timer for every digest channel, due at the next scheduled moment.

    An overdue timer is left alone (it fires at once: the digest missed while the bot was down);
    one due in the future at a moment the schedule no longer names (the day or time changed) is
    moved; channels no longer in the schedule lose theirs. Returns the channels scheduled."""
    schedule = playbooks.workspace.digest
    now = utc(clock.now())
    wanted = digest_channels(playbooks)
    with session_scope(engine) as session:
        timers = {t.subject: t for t in session.exec(select(Timer).where(col(Timer.kind) == TimerKind.DIGEST.value))}
        for subject, armed in timers.items():
            if subject.removeprefix(SUBJECT) not in wanted and armed.state == TimerState.PENDING:
                cancel_timer(session, subject=subject, kind=TimerKind.DIGEST)
        if schedule is None:
            return []
        following = schedule.following(now)
        for channel in wanted:
            timer = timers.get(SUBJECT + channel)
            if timer is None:
                _insert_timer(session, SUBJECT + channel, following)
            elif timer.state != TimerState.PENDING or (utc(timer.due_at) > now and utc(timer.due_at) != following):
                arm_timer(session, subject=SUBJECT + channel, kind=TimerKind.DIGEST, due_at=following)
    return wanted


def _insert_timer(session: Session, subject: str, due_at: datetime) -> None:
    """Two replicas starting at once both find no timer: the unique (subject, kind) keeps one."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row: dict[str, Any] = {"subject": subject, "kind": TimerKind.DIGEST.value, "incident_id": None}
    row |= {"due_at": utc(due_at), "token": uuid.uuid4().hex, "state": TimerState.PENDING.value, "step": 0}
    session.execute(insert(table(Timer)).values(**row).on_conflict_do_nothing(index_elements=["subject", "kind"]))


def fire(
    session: Session, playbooks: Playbooks, timer_id: int, subject: str, now: datetime, worker: str, effects: Effects
) -> bool:
    """The timer of ``subject`` was claimed by this transaction: schedule the latest week that came
    due, if nobody did, and re-arm for the next one. A channel taken out of the schedule gets
    nothing (its timer stays fired). Returns whether a digest was scheduled."""
    schedule = playbooks.workspace.digest
    channel = subject.removeprefix(SUBJECT)
    if schedule is None or channel not in digest_channels(playbooks):
        return False
    now = utc(now)
    until = schedule.latest(now)
    since = schedule.latest(until - timedelta(microseconds=1))  # a week on the wall clock
    scheduled = _schedule(session, schedule, channel, since, until, now, worker, effects)
    session.execute(
        update(table(Timer))
        .where(table(Timer).c.id == timer_id)
        .values(
            due_at=utc(schedule.following(now)),
            token=uuid.uuid4().hex,
            state=TimerState.PENDING.value,
            fired_at=None,
            fired_by=None,
        )
    )
    return scheduled


def _schedule(
    session: Session,
    schedule: DigestSchedule,
    channel: str,
    since: datetime,
    until: datetime,
    now: datetime,
    worker: str,
    effects: Effects,
) -> bool:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = {"channel": channel, "week_start": since, "week_end": until, "scheduled_by": worker, "created_at": now}
    inserted = session.execute(
        insert(table(Digest))
        .values(**row)
        .on_conflict_do_nothing(index_elements=["channel", "week_start"])
        .returning(table(Digest).c.id)
    ).first()
    if inserted is None:
        return False
    week = since.isoformat()
    payload: dict[str, Any] = {
        "channel": channel,
        "since": week,
        "until": until.isoformat(),
        "zone": schedule.timezone,
    }
    effects.enqueue(EffectKind.DIGEST, Key.digest(channel, week), payload, lane=channel)
    local = until.astimezone(schedule.zone)
    chart = {
        **payload,
        "scope": channel,
        "filename": f"triage-digest-{channel}-{local:%Y-%m-%d}.png",
        "title": f"Triage chart, week to {local:%a %d %b %Y}",
        "comment": f"📈 The week's triage chart for <#{channel}>: time to classify per class, flakiest tests.",
    }
    effects.enqueue(EffectKind.CHART, Key.digest_chart(channel, week), chart, lane=channel)
    return True


def request_chart(engine: Engine, clock: Clock, channel: str, actor: str) -> bool:
    """``/triage stats chart``: upload the last 7 days' chart into ``channel``. False when the same
    channel asked within the same minute (that upload is already on its way)."""
    now = utc(clock.now())
    since = now - timedelta(days=7)
    payload = {
        "channel": channel,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "scope": None,
        "filename": f"triage-stats-{now:%Y-%m-%d-%H%M}.png",
        "title": f"Triage chart, last 7 days to {now:%d %b %Y %H:%M} UTC",
        "comment": f"📈 Triage chart of the last 7 days, requested by <@{actor}>.",
    }
    key = Key.stats_chart(channel, f"{now:%Y-%m-%dT%H:%M}")
    with session_scope(engine) as session:
        if session.exec(select(OutboxItem.id).where(col(OutboxItem.dedup_key) == key)).first() is not None:
            return False
        effects = Effects(now=now)
        effects.enqueue(EffectKind.CHART, key, payload, lane=channel)
        effects.flush(session)  # a second request racing this one is refused by the unique key
    return True


# -- what the deliveries draw -------------------------------------------------------------------


def digest_view(
    session: Session, playbooks: Playbooks, channel: str, since: datetime, until: datetime, zone: str
) -> DigestView:
    flaky = flakiest(session, since=since, channel=channel)
    return read_digest(session, playbooks, channel, since, until, zone, flaky)


def chart_of(session: Session, playbooks: Playbooks, payload: dict[str, Any]) -> ChartData:
    since, until = datetime.fromisoformat(payload["since"]), datetime.fromisoformat(payload["until"])
    scope = payload.get("scope")
    if scope:
        return digest_chart(digest_view(session, playbooks, scope, since, until, payload.get("zone") or "UTC"))
    window = week_stats(session, playbooks, None, since, until)
    flaky = flakiest(session, since=until - timedelta(days=STATS_FLAKY_DAYS))
    within = classify_within(playbooks, None)
    return chart_data(str(payload.get("title") or "Triage"), [class_line(c) for c in window.classes], within, flaky)


def stats_answer(engine: Engine, playbooks: Playbooks, clock: Clock) -> str:
    """``/triage stats``: the windows per class, and the flakiest tests of the last 30 days."""
    service = StatsService(playbooks, clock)
    now = clock.now()
    within = playbooks.default.policy.classify_within
    week = min(WINDOWS)
    with read_session(engine) as session:  # a snapshot: the timers and the outbox never wait on it
        windows = service.windows(session, WINDOWS, now, within)
        flaky = flakiest(session, since=now - timedelta(days=STATS_FLAKY_DAYS))
        # what the weekly digest adds, for every channel at once
        extras = WeekExtras(
            week, recurring(session, None, now - timedelta(days=week), now), owners(session, playbooks, None)
        )
    return stats_text(windows, within, flaky, extras)
