"""Delivering outbox rows after commit: paced per lane, retried with backoff, dead-lettered.

One bounded step (``step``) claims at most one row per lane and delivers them concurrently; the
long-running loop (``run``) repeats steps until told to stop. The 14-day simulation calls ``step``
directly under a virtual clock, so the same code is exercised in both worlds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from slackbot.clock import Clock, as_utc
from slackbot.db.engine import session_scope
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
    EffectKind.DM: RetryPolicy(60.0, _HOUR),
    EffectKind.PAGERDUTY: RetryPolicy(60.0, _HOUR),
    EffectKind.PAGERDUTY_FOLLOW: RetryPolicy(300.0, _DAY),
}


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
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.handlers = handlers
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.lane_rate, self.lane_burst = lane_rate, lane_burst
        self.max_attempts = max_attempts
        self.ops_channel = ops_channel
        self.paced = paced
        self.on_result = on_result
        self.lease = lease
        self.stats = OutboxStats()
        # kind -> its retry budget; kinds without one use max_attempts (see RetryPolicy)
        self.retry_policies: dict[str, RetryPolicy] = dict(retry_policies or {})
        self.jitter = jitter  # in [0, 1): spreads retries; the simulation passes its seeded RNG
        # kind -> hook(session, item, effects, error), run in the transaction that dead-letters the row
        self.dead_hooks: dict[str, Callable[[Session, OutboxItem, Effects, str], None]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._wake = asyncio.Event()
        self._waiting_on_pacing = False  # the last claim found nothing while lanes were paced

    # -- loop -------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows (thread-safe via the loop when needed)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, idle: float = 0.5, gather: float = 0.02, paced: float = 0.25) -> None:
        while not stop.is_set():
            self._wake.clear()  # before the step, so a wake-up during the step is not lost
            try:
                delivered = await self.step()
            except Exception:  # the loop must outlive a bad step (DB blip); the row stays claimable
                log.exception("outbox step failed")
                delivered = 0
            if delivered == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=idle)
                except TimeoutError:
                    continue
                # Commits come in bursts (a storm of clicks, one ingest opening many incidents):
                # let the burst land so one claim takes it, instead of one claim per commit
                # competing with the acks on the same loop. If the last claim came back empty
                # because lanes were waiting for their pacing slot, new rows most likely joined
                # those lanes, so claim at most every ``paced`` seconds rather than rescanning
                # their backlog after every commit (a new page then waits that long at most).
                await asyncio.sleep(paced if self._waiting_on_pacing else gather)

    async def step(self) -> int:
        now = self.clock.now()
        blocked = {lane for lane, bucket in self._buckets.items() if not bucket.ready(now)}
        items = await asyncio.to_thread(
            store.claim,
            self.engine,
            now=now,
            worker=self.worker_id,
            kinds=set(self.handlers),
            skip_lanes=blocked,
            lease=self.lease,
        )
        self._waiting_on_pacing = not items and bool(blocked)
        if not items:
            return 0
        await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

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
        try:
            result = await self.handlers[item.kind](item)
        except RetryLater as exc:
            await self._settle(item, DeliveryState.PENDING, after=exc.after, error=str(exc), count=False)
        except PermanentFailure as exc:
            await self._dead(item, str(exc))
        except SlackApiError as exc:
            await self._slack_error(item, exc, bucket)
        except (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self._failed(item, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            if getattr(exc, "retryable", None) is False:
                await self._dead(item, str(exc))
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
            await self._dead(item, f"Slack error: {error}")
        else:
            await self._failed(item, f"Slack error: {error or status}")

    async def _failed(self, item: OutboxItem, error: str) -> None:
        policy = self.retry_policies.get(item.kind)
        if self._exhausted(item, policy):
            await self._dead(item, f"{error} (after {item.attempts + 1} attempts)", attempts_delta=1)
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

    async def _dead(self, item: OutboxItem, error: str, attempts_delta: int = 0) -> None:
        self.stats.dead += 1
        now = self.clock.now()

        def work() -> None:
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
            with session_scope(self.engine) as session:
                store.settle(
                    session,
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
