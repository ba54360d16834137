"""Delivering outbox rows after commit: paced per lane, retried with backoff, dead-lettered.

One bounded step (``step``) claims at most one row per lane and delivers them concurrently; the
14-day simulation calls it directly under a virtual clock. The long-running loop (``run``) does not
wait for a claimed batch as a whole: each delivery is a task of its own lane, and the loop keeps
claiming the other lanes while one is in flight, so a storage host that trickles an artifact (or a
hung PagerDuty, bd or Slack channel) holds back its own lane only. Every delivery also runs under a
total deadline per kind (``DELIVERY_DEADLINES``), shorter than the claim lease: a delivery that has
not finished by then is cancelled and retried with backoff, and no other replica can take the row
over while it is still running.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from slackbot.clock import Clock, as_utc
from slackbot.db.engine import OutageLog, session_scope
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import EffectKind, Event, Key
from slackbot.domain.states import DeliveryState
from slackbot.incidents.effects import Effects
from slackbot.outbox import store

log = logging.getLogger(__name__)

# Slack errors that no retry can fix: deliver to the dead-letter path at once.
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "user_not_found",
        "cant_update_message",
        "message_not_found",
        "invalid_arguments",
        "restricted_action",
    }
)


# Why a delivery was dead-lettered, as a bounded label (metrics) and a word in the ERROR log line.
SLACK_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked"})
_SLACK_REASONS = {
    **dict.fromkeys(SLACK_AUTH_ERRORS, "slack_auth"),  # the token: every Slack delivery fails alike
    "missing_scope": "slack_scope",  # the app's scopes: update it from manifest.yml and reinstall
    **dict.fromkeys(
        (
            "channel_not_found",
            "not_in_channel",
            "is_archived",
            "user_not_found",
            "message_not_found",
            "cant_update_message",
            "restricted_action",
        ),
        "slack_target",  # a channel, user or message in routing or the database is wrong or gone
    ),
}
DEAD_LETTER_REASONS = ("slack_auth", "slack_scope", "slack_target", "slack_payload", "exhausted", "refused")


def slack_reason(error: str) -> str:
    """The reason class of a permanent Slack error; the rest are what the bot sent (blocks, text)."""
    return _SLACK_REASONS.get(error, "slack_payload")


class RetryLater(Exception):
    """Not now, and not a failure (e.g. the card is not posted yet); does not count an attempt."""

    def __init__(self, reason: str, after: float = 1.0) -> None:
        super().__init__(reason)
        self.after = after


class PermanentFailure(Exception):
    """Retrying cannot help; the row is dead-lettered with this reason."""


Handler = Callable[[OutboxItem], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RetryPolicy:
    """How long one kind of effect keeps retrying before it is dead-lettered.

    The default (``max_attempts`` tries, backoff doubling up to 300 s) gives up after about two
    minutes: right for a hiccup, wrong for an outage. bd unreachable for hours or PagerDuty down
    for an hour would dead-letter a bead or a page that would have worked later. A policy gives a
    kind a time budget instead (``give_up_after``, counted from when the effect was enqueued) and
    its own backoff cap, so the effect is retried through the outage and delivered once it ends.
    """

    max_backoff: float = 300.0
    give_up_after: timedelta | None = None
    max_attempts: int | None = None


_DAY = timedelta(hours=24)
_HOUR = timedelta(hours=1)
# How long a failed run's report is fetched again through GitHub's 5xx and network errors
# before the run's card names the outage instead (GitHub's outages last hours, seldom more).
GITHUB_RETRY_FOR = timedelta(hours=6)

# The budgets the app runs with (``build_workers``). Beads and Slack posts outlive a day-long bd or
# Slack outage; a page (DM, PagerDuty trigger) gives up after an hour, so the dead-letter hook pages
# the fallback target rather than waiting on a channel that is down. ``triagebot simulate`` injects
# exactly these outages and checks that nothing is lost.
OUTAGE_RETRY_POLICIES: dict[str, RetryPolicy] = {
    **{
        kind: RetryPolicy(300.0, _DAY)
        for kind in (EffectKind.BEAD_FILE, EffectKind.BEAD_COMMENT, EffectKind.BEAD_CLOSE, EffectKind.BEAD_REOPEN)
    },
    **{
        kind: RetryPolicy(120.0, _DAY)
        for kind in (
            EffectKind.CARD,
            EffectKind.THREAD_POST,
            EffectKind.OPS_NOTICE,
            EffectKind.RUN_ESCALATION,
            EffectKind.CHECKLIST,
            EffectKind.CHECKLIST_UPDATE,
        )
    },
    # GitHubRunJobs gives up after GITHUB_RETRY_FOR (and its few attempts), naming the outage on the
    # run's card: the worker's own budget is a day longer, so it never dead-letters the run first
    EffectKind.GITHUB_RUN: RetryPolicy(300.0, GITHUB_RETRY_FOR + _DAY),
    EffectKind.DM: RetryPolicy(60.0, _HOUR),
    EffectKind.PAGERDUTY: RetryPolicy(60.0, _HOUR),
    EffectKind.PAGERDUTY_FOLLOW: RetryPolicy(300.0, _DAY),
}


# The total time one delivery may take, per kind, in seconds: every HTTP call, redirect, retry
# and subprocess of the handler included (client timeouts are per read or per request, so a host
# that sends a byte every few seconds never trips them). Sized for a healthy destination with room
# to spare; TRIAGE_DELIVERY_DEADLINES overrides them. A deadline never exceeds LEASE_SHARE of the
# claim lease, so the worker has given up (and settled the row) before another replica may take
# it over: a deadline is what keeps a slow delivery from being delivered twice.
DEFAULT_DEADLINE = 20.0
DELIVERY_DEADLINES: dict[str, float] = {
    # One Slack call, or a find-then-post after a takeover (slack_sdk retries a dropped connection once).
    **{
        kind: 20.0
        for kind in (
            EffectKind.CARD,
            EffectKind.THREAD_POST,
            EffectKind.INCIDENT_NOTE,
            EffectKind.CHECKLIST,
            EffectKind.CHECKLIST_UPDATE,
            EffectKind.OPS_NOTICE,
            EffectKind.SOURCE_REPLY,
            EffectKind.RUN_ESCALATION,
            EffectKind.DM,
        )
    },
    EffectKind.POSTMORTEM: 30.0,  # three calls: upload URL, the file's bytes, complete
    EffectKind.PAGERDUTY: 15.0,
    EffectKind.PAGERDUTY_FOLLOW: 30.0,  # one event per service that was triggered
    # bd: a find and a create, each a subprocess bd itself bounds at 30 s (BdTracker.timeout).
    **{
        kind: 40.0
        for kind in (EffectKind.BEAD_FILE, EffectKind.BEAD_COMMENT, EffectKind.BEAD_CLOSE, EffectKind.BEAD_REOPEN)
    },
    EffectKind.GITHUB_RUN: 45.0,  # the run, its artifact pages and up to 50 MB of zips
}
LEASE_SHARE = 0.75


@dataclass
class _Bucket:
    """A token bucket per lane: about ``rate`` deliveries per second with short bursts."""

    rate: float
    burst: int
    tokens: float = 0.0
    stamp: datetime | None = None
    paused_until: datetime | None = None

    def ready(self, now: datetime) -> bool:
        if self.paused_until and now < self.paused_until:
            return False
        if self.stamp is None:
            self.tokens, self.stamp = float(self.burst), now
        elapsed = max(0.0, (now - self.stamp).total_seconds())
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.stamp = now
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass
class OutboxStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    rate_limited: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        handlers: dict[str, Handler],
        *,
        worker_id: str | None = None,
        lane_rate: float = 1.0,
        lane_burst: int = 3,
        max_attempts: int = 8,
        ops_channel: str | None = None,
        paced: Callable[[str], bool] = lambda lane: lane[:1] in ("C", "D", "G"),
        on_result: Callable[[OutboxItem, str, str | None], None] | None = None,
        lease: timedelta = store.LEASE,
        retry_policies: dict[str, RetryPolicy] | None = None,
        jitter: Callable[[], float] = random.random,
        deadlines: Mapping[str, float] | None = None,
        default_deadline: float = DEFAULT_DEADLINE,
        max_in_flight: int = 50,
    ) -> None:
        self.engine = engine
        self._outage = OutageLog(log, "the outbox")
        self.clock = clock
        self.handlers = handlers
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.lane_rate, self.lane_burst = lane_rate, lane_burst
        self.max_attempts = max_attempts
        self.ops_channel = ops_channel
        self.paced = paced
        self.on_result = on_result
        # (row, reason class, error) for each dead letter; the metrics count it by kind and reason
        self.on_dead_letter: Callable[[OutboxItem, str, str], None] | None = None
        self.lease = lease
        self.stats = OutboxStats()
        # kind -> its retry budget; kinds without one use max_attempts (see RetryPolicy)
        self.retry_policies: dict[str, RetryPolicy] = dict(retry_policies or {})
        self.jitter = jitter  # in [0, 1): spreads retries; the simulation passes its seeded RNG
        # kind -> hook(session, item, effects, error), run in the transaction that dead-letters the row
        self.dead_hooks: dict[str, Callable[[Session, OutboxItem, Effects, str], None]] = {}
        # kind -> total seconds one delivery may take (see DELIVERY_DEADLINES); capped by the lease
        self.deadlines: dict[str, float] = {**DELIVERY_DEADLINES, **(deadlines or {})}
        self.default_deadline = default_deadline
        self.max_in_flight = max_in_flight
        self._buckets: dict[str, _Bucket] = {}
        self._wake = asyncio.Event()
        self._waiting_on_pacing = False  # the last claim found nothing while lanes were paced
        self._woken_for_nothing = False  # the last claim a commit woke us for found nothing due
        self._in_flight: dict[str, asyncio.Task[None]] = {}  # lane -> its delivery under way

    # -- loop -------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (thread-safe via the loop when needed)."""
        self._wake.set()

    def deadline(self, kind: str) -> float:
        """Seconds one delivery of ``kind`` may take in all, always well inside the claim lease."""
        wanted = self.deadlines.get(kind, self.default_deadline)
        return max(0.0, min(wanted, self.lease.total_seconds() * LEASE_SHARE))

    @property
    def in_flight(self) -> set[str]:
        """The lanes with a delivery under way (the running loop's tasks)."""
        return set(self._in_flight)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        idle: float = 0.5,
        gather: float = 0.02,
        paced: float = 0.25,
        grace: float = 3.0,
    ) -> None:
        """Claim and start deliveries until ``stop`` is set, without waiting for the ones in flight:
        a finished delivery wakes the loop to claim its lane's next row. On stop, deliveries under
        way get ``grace`` seconds to finish; the rest are cancelled and their leases run out."""

        async def wake_on_stop() -> None:  # an idle wait ends at once on stop, not after ``idle``
            await stop.wait()
            self._wake.set()

        stopping = asyncio.create_task(wake_on_stop(), name="outbox-stop")
        woken = False  # this claim follows a commit's wake-up (not the idle timeout)
        try:
            while not stop.is_set():
                self._wake.clear()  # before the claim, so a wake-up during it is not lost
                try:
                    started = await self._launch()
                    self._outage.succeeded()
                except Exception as exc:  # the loop must outlive a bad claim (DB blip); rows stay claimable
                    self._outage.failed(exc, "outbox claim failed")
                    started = []
                if woken:
                    self._woken_for_nothing, woken = not started, False
                if started:
                    continue  # more lanes may be due than one claim takes
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=idle)
                except TimeoutError:
                    continue
                if stop.is_set():
                    break
                # Commits come in bursts (a storm of clicks, one ingest opening many incidents):
                # let the burst land so one claim takes it, instead of one claim per commit
                # competing with the acks on the same loop. If the last claim came back empty
                # because lanes were waiting for their pacing slot, new rows most likely joined
                # those lanes, so claim at most every ``paced`` seconds rather than rescanning
                # their backlog after every commit (a new page then waits that long at most).
                # The same when the last claim a commit woke us for found nothing due: commits
                # that only queue rows for later (a classification's post waits for a correction,
                # a card's next edit waits its second) would otherwise cost a write transaction
                # each, competing with the acks of the storm that queues them.
                throttled = self._waiting_on_pacing or self._woken_for_nothing
                await asyncio.sleep(paced if throttled else gather)
                woken = True
        except asyncio.CancelledError:
            for task in self._in_flight.values():
                task.cancel()
            raise
        finally:
            stopping.cancel()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight.values()), timeout=grace)
            for task in self._in_flight.values():
                task.cancel()

    async def step(self) -> int:
        """Claim at most one due row per lane (lanes with a delivery under way excepted) and
        deliver them; returns when all of them are settled, each within its deadline."""
        started = await self._launch()
        if started:
            await asyncio.gather(*started)
        return len(started)

    async def _launch(self) -> list[asyncio.Task[None]]:
        room = self.max_in_flight - len(self._in_flight)
        if room <= 0:
            return []  # a finished delivery wakes the loop
        now = self.clock.now()
        blocked = {lane for lane, bucket in self._buckets.items() if not bucket.ready(now)}
        items = await asyncio.to_thread(
            store.claim,
            self.engine,
            now=now,
            worker=self.worker_id,
            kinds=set(self.handlers),
            skip_lanes=blocked | set(self._in_flight),
            limit=room,
            lease=self.lease,
        )
        self._waiting_on_pacing = not items and bool(blocked)
        return [self._start(item) for item in items]

    def _start(self, item: OutboxItem) -> asyncio.Task[None]:
        lane = item.lane
        task = asyncio.create_task(self._deliver(item), name=f"outbox:{item.kind}:{item.id}")
        self._in_flight[lane] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._in_flight.get(lane) is finished:
                del self._in_flight[lane]
            if not finished.cancelled() and finished.exception() is not None:
                # Settling failed (a DB blip): the row stays ``sending`` until its lease runs out.
                log.error("outbox delivery of row %s failed", item.id, exc_info=finished.exception())
            # The lane is free: its next row may be due now, and it was not pacing that held it.
            self._waiting_on_pacing = self._woken_for_nothing = False
            self._wake.set()

        task.add_done_callback(done)
        return task

    # -- one row ----------------------------------------------------------------------------------

    def _bucket(self, lane: str) -> _Bucket | None:
        if not self.paced(lane):
            return None
        return self._buckets.setdefault(lane, _Bucket(self.lane_rate, self.lane_burst))

    async def _deliver(self, item: OutboxItem) -> None:
        assert item.id is not None
        bucket = self._bucket(item.lane)
        if bucket is not None:
            bucket.ready(self.clock.now())
            bucket.take()
        deadline = self.deadline(item.kind)
        budget = asyncio.timeout(deadline)
        try:
            async with budget:
                result = await self.handlers[item.kind](item)
        except TimeoutError as exc:
            if budget.expired():
                # Cancelled where it stood (a bd child is killed, a socket closed): try again later.
                log.warning("outbox %s row %s: not delivered within %gs, retrying", item.kind, item.id, deadline)
                await self._failed(item, f"not delivered within the {deadline:g}s deadline")
            else:
                await self._failed(item, f"{type(exc).__name__}: {exc}")
        except RetryLater as exc:
            await self._settle(item, DeliveryState.PENDING, after=exc.after, error=str(exc), count=False)
        except PermanentFailure as exc:
            await self._dead(item, str(exc), reason="refused")
        except SlackApiError as exc:
            await self._slack_error(item, exc, bucket)
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            await self._failed(item, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            if getattr(exc, "retryable", None) is False:
                await self._dead(item, str(exc), reason="refused")
            elif getattr(exc, "retryable", None) is True:
                await self._failed(item, str(exc))
            else:
                log.exception("outbox handler %s crashed on row %s", item.kind, item.id)
                await self._failed(item, f"{type(exc).__name__}: {exc}")
        else:
            self.stats.delivered += 1
            self.stats.by_kind[item.kind] = self.stats.by_kind.get(item.kind, 0) + 1
            await self._settle(item, DeliveryState.DONE, result=result)
            self._report(item, DeliveryState.DONE, None)

    async def _slack_error(self, item: OutboxItem, exc: SlackApiError, bucket: _Bucket | None) -> None:
        status = exc.response.status_code
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if status == 429 or error in ("ratelimited", "rate_limited"):
            retry_after = _retry_after(exc)
            self.stats.rate_limited += 1
            if bucket is not None:
                bucket.paused_until = self.clock.now() + timedelta(seconds=retry_after)
            await self._settle(
                item, DeliveryState.PENDING, after=retry_after, error=f"rate limited ({retry_after}s)", count=False
            )
        elif status >= 500:
            await self._failed(item, f"Slack HTTP {status}")
        elif error in PERMANENT_SLACK_ERRORS:
            await self._dead(item, f"Slack error: {error}", reason=slack_reason(error))
        else:
            await self._failed(item, f"Slack error: {error or status}")

    async def _failed(self, item: OutboxItem, error: str) -> None:
        policy = self.retry_policies.get(item.kind)
        if self._exhausted(item, policy):
            await self._dead(
                item, f"{error} (after {item.attempts + 1} attempts)", attempts_delta=1, reason="exhausted"
            )
            return
        self.stats.retried += 1
        cap = policy.max_backoff if policy is not None else 300.0
        backoff = min(cap, 2.0 ** min(item.attempts, 30)) * (0.75 + self.jitter() / 2)
        await self._settle(item, DeliveryState.PENDING, after=backoff, error=error, count=True)
        self._report(item, "retry", error)

    def _exhausted(self, item: OutboxItem, policy: RetryPolicy | None) -> bool:
        attempts = item.attempts + 1
        if policy is None:
            return attempts >= self.max_attempts
        if policy.max_attempts is not None and attempts >= policy.max_attempts:
            return True
        if policy.give_up_after is not None:
            return self.clock.now() - as_utc(item.created_at) >= policy.give_up_after
        return policy.max_attempts is None and attempts >= self.max_attempts

    async def _dead(self, item: OutboxItem, error: str, attempts_delta: int = 0, *, reason: str) -> None:
        self.stats.dead += 1
        now = self.clock.now()
        settled = False

        def work() -> None:
            nonlocal settled
            with session_scope(self.engine) as session:
                if not store.settle(
                    session,
                    item.id or 0,
                    self.worker_id,
                    state=DeliveryState.DEAD.value,
                    now=now,
                    error=error,
                    attempts_delta=attempts_delta,
                ):
                    return
                settled = True
                effects = Effects(now=now)
                if item.incident_id is not None:
                    effects.record(
                        Event.DELIVERY_FAILED,
                        f"{item.kind} could not be delivered: {error}",
                        incident_id=item.incident_id,
                        source="system",
                        data={"outbox_id": item.id, "kind": item.kind},
                    )
                hook = self.dead_hooks.get(item.kind)
                if hook is not None:
                    hook(session, item, effects, error)
                if self.ops_channel and item.kind != EffectKind.OPS_NOTICE:
                    effects.enqueue(
                        EffectKind.OPS_NOTICE,
                        Key.dead_letter(item.id),
                        {
                            "text": f"Outbox row {item.id} ({item.kind}) was dead-lettered: {error}",
                            "incident_id": item.incident_id,
                        },
                        lane=self.ops_channel,
                    )
                effects.flush(session)

        await asyncio.to_thread(work)
        if settled:  # not when another replica had taken the row over meanwhile
            # One line a person can act on: what could not be delivered, for which incident, and why.
            incident = f"INC-{item.incident_id}" if item.incident_id is not None else "-"
            log.error(
                "outbox %s dead-lettered (%s): row %s, key %s, incident %s: %s",
                item.kind,
                reason,
                item.id,
                item.dedup_key,
                incident,
                error,
            )
            if self.on_dead_letter is not None:
                self.on_dead_letter(item, reason, error)
        self._report(item, DeliveryState.DEAD, error)
        self.wake()

    async def _settle(
        self,
        item: OutboxItem,
        state: str,
        *,
        after: float = 0.0,
        error: str | None = None,
        count: bool = False,
        result: dict[str, Any] | None = None,
    ) -> None:
        now = self.clock.now()

        def work() -> None:
            with self.engine.begin() as connection:  # no ORM session: this runs for every delivery
                store.settle(
                    connection,
                    item.id or 0,
                    self.worker_id,
                    state=state,
                    now=now,
                    next_attempt_at=now + timedelta(seconds=after) if state == DeliveryState.PENDING else None,
                    attempts_delta=1 if count or state == DeliveryState.DONE else 0,
                    error=error,
                    result=result,
                )

        await asyncio.to_thread(work)

    def _report(self, item: OutboxItem, outcome: str, error: str | None) -> None:
        if self.on_result is not None:
            self.on_result(item, outcome, error)


def _retry_after(exc: SlackApiError) -> float:
    """Slack's ``Retry-After`` in seconds. The async client hands headers back as a multidict
    (any case, possibly a list of values), so read it through ``get`` in both spellings."""
    headers = getattr(exc.response, "headers", None) or {}
    for key in ("Retry-After", "retry-after"):
        value = headers.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return 1.0
