"""Scheduled faults for the founder-absence simulation: the outages nobody is around to fix.

* **Slack 429 bursts** and **Slack 5xx**: the local Slack emulator answers the next *n* calls of a
  method with ``429 Retry-After`` or an HTML 5xx page, exactly as Slack's edge does.
* **bd unavailable for hours**: the ``bd`` executable disappears (a package upgrade gone wrong, an
  unmounted volume) and comes back; every bead call in between fails.
* **PagerDuty down**: the local Events API answers 503 to everything for a while.
* **GitHub down**: the fake GitHub Actions API answers a 5xx page, or the rate limit's ``403``
  with ``x-ratelimit-reset``, over a run that comes through the GitHub webhook, so the bot's
  artifact download (an outbox job) meets it and must retry until GitHub is back.
* **Process crashes**: the bot process dies at a chosen kind of moment (right after Slack accepted
  a post but before the bot wrote that down, right before a post, right after bd filed a bead) and
  a fresh process starts on the same database.

Windows are placed on the traffic's schedule (a burst just before a nightly run, the bd outage
over a day whose failures file beads), so every fault meets real work instead of an idle bot.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from slackbot.simulation.traffic import CONTRACT, REGRESSION, CiRun, Traffic

SLACK_429 = "slack_429"
SLACK_5XX = "slack_5xx"
BD_OUTAGE = "bd_outage"
PAGERDUTY_OUTAGE = "pagerduty_outage"
GITHUB_OUTAGE = "github_outage"
GITHUB_ISSUES_OUTAGE = "github_issues_outage"
CRASH = "crash"

# crash points
AFTER_POST = "after_post"  # Slack accepted chat.postMessage; the bot has not recorded it yet
AFTER_UPDATE = "after_update"  # Slack accepted chat.update (a card redraw)
BEFORE_POST = "before_post"  # the process dies while sending: nothing reached Slack
AFTER_BEAD = "after_bead"  # bd filed the bead; the bot has not recorded its id yet

CRASH_POINTS = {
    AFTER_POST: "right after Slack accepted a post, before the bot recorded it",
    AFTER_UPDATE: "right after Slack accepted a card update",
    BEFORE_POST: "in the middle of sending a post (nothing reached Slack)",
    AFTER_BEAD: "right after bd filed a bead, before the bot recorded its id",
}


class ProcessCrash(BaseException):
    """The bot process dies here. A ``BaseException`` so that no ``except Exception`` in the bot
    can swallow it: a real crash does not pass through error handlers either."""


class FaultTargets(Protocol):
    """What the faults act on (the simulation's world)."""

    def slack_fail_next(self, method: str, *, status: int, count: int, retry_after: int) -> None: ...

    def set_bd_available(self, available: bool) -> None: ...

    def set_pagerduty_down(self, down: bool) -> None: ...

    def set_github_outage(self, status: int | None, reset: datetime | None) -> None: ...

    def arm_github_issues_outage(self, minutes: int | None, status: int) -> None: ...


@dataclass
class Fault:
    kind: str
    at: datetime
    until: datetime | None
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    ended: bool = False
    triggered_at: datetime | None = None  # crashes: when the armed crash actually happened
    interrupted: str | None = None  # crashes: what the process was doing

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "description": self.description,
            "params": self.params,
            "triggered_at": self.triggered_at.isoformat() if self.triggered_at else None,
            "interrupted": self.interrupted,
        }


class FaultPlan:
    def __init__(self, traffic: Traffic, *, seed: int, enabled: bool = True) -> None:
        self.rng = random.Random(f"faults:{seed}")
        self.faults: list[Fault] = []
        self._armed: Fault | None = None
        if enabled and traffic.schedule:
            self._plan(traffic)
            # its own RNG: the faults planned before GitHub's outages keep their seed's draws
            self._plan_github(traffic, random.Random(f"faults:github:{seed}"))
            self._plan_github_issues(traffic, random.Random(f"faults:github-issues:{seed}"))
        self.faults.sort(key=lambda f: f.at)

    # -- planning ---------------------------------------------------------------------------------

    def _plan(self, traffic: Traffic) -> None:
        rng = self.rng
        nightlies = [r for r in traffic.schedule if r.suite == "nightly"] or _daily_anchors(traffic.schedule)
        by_day = {r.day: r for r in nightlies}

        def nightly(day: int) -> datetime:
            run = by_day.get(day) or rng.choice(nightlies)
            return run.at

        for day in sorted(rng.sample(range(len(nightlies)), k=min(3, len(nightlies)))):
            count, wait = rng.randint(6, 16), rng.randint(3, 30)
            self._add(
                SLACK_429,
                nightly(day) - timedelta(minutes=1),
                None,
                f"Slack answers 429 (Retry-After {wait}s) to the next {count} posts",
                method="chat.postMessage",
                status=429,
                count=count,
                retry_after=wait,
            )
        day = rng.randrange(len(nightlies))
        count = rng.randint(4, 10)
        self._add(
            SLACK_429,
            nightly(day) + timedelta(minutes=rng.randint(20, 40)),
            None,
            f"Slack answers 429 (Retry-After 10s) to the next {count} card updates",
            method="chat.update",
            status=429,
            count=count,
            retry_after=10,
        )
        for method, label in (("chat.postMessage", "posts"), ("chat.update", "card updates")):
            day = rng.randrange(len(nightlies))
            status, count = rng.choice((500, 502, 503)), rng.randint(4, 10)
            self._add(
                SLACK_5XX,
                nightly(day) - timedelta(minutes=1),
                None,
                f"Slack answers HTTP {status} to the next {count} {label}",
                method=method,
                status=status,
                count=count,
                retry_after=0,
            )

        # bd is gone for hours over the night a contract violation files its bead
        contract_day = traffic.milestones.get(CONTRACT, 0)
        hours = rng.randint(4, 7)
        start = nightly(contract_day) - timedelta(minutes=rng.randint(30, 90))
        self._add(BD_OUTAGE, start, start + timedelta(hours=hours), f"bd is unavailable for {hours} hours")
        later = rng.randrange(len(nightlies))
        if later != contract_day:
            start = nightly(later) + timedelta(hours=rng.randint(3, 8))
            self._add(BD_OUTAGE, start, start + timedelta(hours=2), "bd is unavailable for 2 hours")

        # PagerDuty is down while the regression's first escalations page
        regression_day = traffic.milestones.get(REGRESSION, 0)
        minutes = rng.randint(40, 55)
        start = nightly(regression_day) + timedelta(minutes=5)
        self._add(
            PAGERDUTY_OUTAGE,
            start,
            start + timedelta(minutes=minutes),
            f"PagerDuty answers 503 to every event for {minutes} minutes",
        )

        # crashes: armed at a time, they happen at the next moment of their kind
        points = [AFTER_POST, AFTER_POST, BEFORE_POST, AFTER_UPDATE]
        for point in points:
            day = rng.randrange(len(nightlies))
            at = nightly(day) + timedelta(minutes=rng.choice((-1, 25, 65, 200)))
            self._add(CRASH, at, None, f"the bot process crashes {CRASH_POINTS[point]}", point=point)
        second_contract = max(
            (d for d in range(len(nightlies)) if any(s.kind == CONTRACT and d in s.days for s in traffic.stories)),
            default=contract_day,
        )
        self._add(
            CRASH,
            nightly(second_contract) - timedelta(minutes=5),
            None,
            f"the bot process crashes {CRASH_POINTS[AFTER_BEAD]}",
            point=AFTER_BEAD,
        )

    def _plan_github(self, traffic: Traffic, rng: random.Random) -> None:
        """GitHub down over a failed run that comes through its webhook (the webhook is accepted;
        the artifact download behind it meets the outage): a 5xx outage, then, three hours or more later,
        the token's rate limit spent until its reset. Which door a run takes depends on whether it
        failed, known only when it is sent: each outage is armed a minute before a run that may
        take the webhook and begins with the next run that does (:meth:`before_send`)."""
        likely = [r for r in traffic.schedule if int(r.run_id) % 8 in (1, 4)]
        if not likely:
            return
        first = rng.choice(likely[: max(1, len(likely) // 2)])
        status, minutes = rng.choice((500, 502, 503)), rng.randint(20, 50)
        self._add(
            GITHUB_OUTAGE,
            first.at - timedelta(minutes=1),
            None,
            f"GitHub's Actions API answers HTTP {status} for {minutes} minutes",
            status=status,
            minutes=minutes,
        )
        later = [r for r in likely if r.at - first.at >= timedelta(hours=3)]
        if later:
            minutes = rng.randint(10, 40)
            self._add(
                GITHUB_OUTAGE,
                later[0].at - timedelta(minutes=1),
                None,
                f"GitHub's rate limit is spent for {minutes} minutes (403, x-ratelimit-remaining 0 until "
                "x-ratelimit-reset)",
                status=403,
                minutes=minutes,
            )

    def _plan_github_issues(self, traffic: Traffic, rng: random.Random) -> None:
        """The Issues API, where playbooks file their beads as GitHub issues: armed from the start,
        it begins with the first issue GitHub files (whose answer it loses) and lasts its minutes."""
        minutes = rng.randint(30, 90)
        self._add(
            GITHUB_ISSUES_OUTAGE,
            traffic.schedule[0].at,
            None,
            f"GitHub's Issues API loses the answer to the first issue it files, then answers HTTP 503 for "
            f"{minutes} minutes",
            status=503,
            minutes=minutes,
        )

    def before_send(self, run: CiRun, now: datetime, world: FaultTargets) -> None:
        """CI is about to send ``run``: an armed GitHub outage begins if it takes the webhook."""
        if run.door != "github" or not run.failures:
            return
        if any(f.kind == GITHUB_OUTAGE and f.until is not None and not f.ended for f in self.faults):
            return  # one outage at a time: the next armed one waits for the next webhook run
        armed = next((f for f in self.faults if f.kind == GITHUB_OUTAGE and f.started and f.until is None), None)
        if armed is None:
            return
        armed.at, armed.until = now, now + timedelta(minutes=armed.params["minutes"])
        armed.params["run"] = run.run_id
        world.set_github_outage(armed.params["status"], armed.until)

    def _add(self, kind: str, at: datetime, until: datetime | None, description: str, **params: Any) -> None:
        self.faults.append(Fault(kind, at, until, description, dict(params)))

    # -- driving ----------------------------------------------------------------------------------

    def next_at(self) -> datetime | None:
        moments = [f.at for f in self.faults if not f.started]
        moments += [f.until for f in self.faults if f.started and not f.ended and f.until is not None]
        return min(moments) if moments else None

    def apply(self, now: datetime, world: FaultTargets) -> list[Fault]:
        """Start and end the faults due at ``now``; returns the ones that changed."""
        changed = []
        for fault in self.faults:
            if not fault.started and fault.at <= now:
                fault.started = True
                self._start(fault, world, now)
                changed.append(fault)
            if fault.started and not fault.ended and fault.until is not None and fault.until <= now:
                fault.ended = True
                self._end(fault, world)
                changed.append(fault)
        return changed

    def heal(self, world: FaultTargets) -> None:
        """End every fault window and cancel what has not started (the simulated period is over;
        the drain runs without faults)."""
        for fault in self.faults:
            if fault.started and not fault.ended and fault.until is not None:
                fault.ended = True
                self._end(fault, world)
            elif not fault.started:
                fault.started = fault.ended = True  # never happened: the report says so
            elif fault.kind == GITHUB_ISSUES_OUTAGE:
                world.arm_github_issues_outage(None, 0)  # armed and not begun: it never will
        self._armed = None

    def _start(self, fault: Fault, world: FaultTargets, now: datetime) -> None:
        if fault.kind in (SLACK_429, SLACK_5XX):
            p = fault.params
            world.slack_fail_next(p["method"], status=p["status"], count=p["count"], retry_after=p["retry_after"])
        elif fault.kind == BD_OUTAGE:
            world.set_bd_available(False)
        elif fault.kind == PAGERDUTY_OUTAGE:
            world.set_pagerduty_down(True)
        elif fault.kind == GITHUB_OUTAGE:
            pass  # armed: it begins with the next run through the webhook (before_send)
        elif fault.kind == GITHUB_ISSUES_OUTAGE:
            world.arm_github_issues_outage(fault.params["minutes"], fault.params["status"])
        elif fault.kind == CRASH and self._armed is None:
            self._armed = fault
        elif fault.kind == CRASH:  # one crash at a time: this one is armed a little later
            fault.started = False
            fault.at = now + timedelta(minutes=30)

    def _end(self, fault: Fault, world: FaultTargets) -> None:
        if fault.kind == BD_OUTAGE:
            world.set_bd_available(True)
        elif fault.kind == PAGERDUTY_OUTAGE:
            world.set_pagerduty_down(False)
        elif fault.kind == GITHUB_OUTAGE:
            world.set_github_outage(None, None)

    # -- crash hooks (called by the bot's Slack client and bd tracker in the simulation) ---------

    def _maybe_crash(self, point: str, now: Callable[[], datetime], what: str) -> None:
        armed = self._armed
        if armed is None or armed.params.get("point") != point:
            return
        self._armed = None
        armed.triggered_at = now()
        armed.interrupted = what
        raise ProcessCrash(f"simulated crash {CRASH_POINTS[point]} ({what})")

    def before_slack_call(self, method: str, kwargs: dict[str, Any], now: Callable[[], datetime]) -> None:
        if method == "chat.postMessage":
            self._maybe_crash(BEFORE_POST, now, _describe_post(kwargs))

    def after_slack_call(self, method: str, kwargs: dict[str, Any], now: Callable[[], datetime]) -> None:
        if method == "chat.postMessage":
            self._maybe_crash(AFTER_POST, now, _describe_post(kwargs))
        elif method == "chat.update":
            self._maybe_crash(AFTER_UPDATE, now, f"card update in {kwargs.get('json', {}).get('channel')}")

    def after_bead(self, title: str, now: Callable[[], datetime]) -> None:
        self._maybe_crash(AFTER_BEAD, now, f"bead {title[:60]!r}")

    @property
    def armed(self) -> Fault | None:
        return self._armed

    # -- numbers ----------------------------------------------------------------------------------

    def by_kind(self, kind: str) -> list[Fault]:
        return [f for f in self.faults if f.kind == kind]

    def github_lines(self, refused: list[tuple[str, str, int]], downloads: list[tuple[str, str, str]]) -> list[str]:
        """The report's lines on GitHub's outages: what GitHub refused, and which runs behind it
        were downloaded once it was back (the github_outage check judges them)."""
        outages = self.by_kind(GITHUB_OUTAGE)
        if not outages:
            return []
        runs = list(dict.fromkeys((repo, run_id) for repo, run_id, _ in refused))
        fetched = {(repo, run_id) for repo, run_id, _ in downloads}
        later = sum(1 for r in runs if r in fetched)
        windows = "; ".join(f"{f.at:%a %d %b %H:%M} to {f.until:%H:%M}: {f.description}" for f in outages if f.until)
        return [
            f"- **GitHub down** ({windows}). GitHub refused {len(refused)} requests about {len(runs)} runs; the bot "
            f"retried each run's download and {later} of them were downloaded once GitHub was back."
        ]


def _daily_anchors(schedule: list[CiRun]) -> list[CiRun]:
    """Each day's first run of the busiest suite: where the faults meet work when the runbooks have
    no nightly suite (a playbook set without seed 001's stories). With a nightly suite the plan is
    anchored on it as it always was, so seed 001's faults keep their times."""
    busiest = Counter(r.suite for r in schedule).most_common(1)
    first: dict[int, CiRun] = {}
    for run in sorted((r for r in schedule if busiest and r.suite == busiest[0][0]), key=lambda r: r.at):
        first.setdefault(run.day, run)
    return list(first.values())


def github_issue_lines(
    faults: FaultPlan, outages: list[tuple[datetime, datetime]], refused: list[tuple[str, str, int]]
) -> list[str]:
    """The report's line on the Issues API outage: when it was down, and what it refused."""
    planned = faults.by_kind(GITHUB_ISSUES_OUTAGE)
    if not planned:
        return []
    if not outages:
        return [
            f"- **GitHub's Issues API outage planned but not reached:** {planned[0].description} (no issue was filed)."
        ]
    windows = "; ".join(f"{began:%a %d %b %H:%M} to {ended:%H:%M}" for began, ended in outages)
    lost = [what for _, what, status in refused if status == 502]
    return [
        f"- **GitHub's Issues API down** ({windows}): it filed {len(lost)} issue{'s' if len(lost) != 1 else ''} and "
        f"lost the answer ({', '.join(repr(w[:60]) for w in lost)}), then refused {len(refused) - len(lost)} requests; "
        "the github_issues_outage check judges what GitHub holds afterwards."
    ]


def _describe_post(kwargs: dict[str, Any]) -> str:
    body = kwargs.get("json") or kwargs.get("params") or {}
    channel = str(body.get("channel", "?"))
    metadata = body.get("metadata") or {}
    event = metadata.get("event_type") if isinstance(metadata, dict) else None
    if event == "triagebot_card":
        return f"card post in {channel}"
    if body.get("thread_ts"):
        return f"thread post in {channel}"
    if channel.startswith("D"):
        return f"page DM in {channel}"
    return f"post in {channel}"
