"""Seeded CI traffic for the founder-absence simulation, shaped by the runbook's own taxonomy.

Every day has one nightly full run (a few failures among many passing results) and several smoke
runs (mostly green). On top of that noise, a handful of *stories* play out, each the kind of
failure seed 001 names:

* a **flake** (an ``ADV``-style concurrency scenario) that fails every few nights;
* a **deterministic regression** that starts on one day and fails every run until it is fixed
  (responders fix it; without them it fails to the end);
* **schema drift** after a migration day: failures whose test files lie under the
  ``data_schema_drift`` scope globs of routing.yml;
* **contract violations**: results without ``invariantId`` (or without both ids);
* a **multi-prefix run**: a shared service breaks scenarios of several prefixes at once;
* a **SEV-1**: a tenant-isolation leak (a ``TENANT`` invariant when the taxonomy has one);
* **one-off** infrastructure blips that never come back.

Ids, prefixes and test paths come from the runbooks being simulated (``--runbooks DIR``), so the
same generator exercises someone else's taxonomy and routing. Run contents are built lazily when a
run is due, so a fix a responder merged in the meantime is reflected; the schedule itself and every
random choice come from the seed, so a seed always tells the same story.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET  # builds CI's JUnit files (nothing here parses XML)
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from slackbot.config import Playbook as Runbook
from slackbot.config.routing import glob_match
from slackbot.config.taxonomy import TaxonomyEntry
from slackbot.simulation.phrasebook import EPISODES, Episode, Line


class FailureClass(StrEnum):
    """The classes of the integration-triage playbook (seed 001) the stories are written for."""

    INFRA_CI = "infra_ci"
    HARNESS_DIAGNOSTICS = "harness_diagnostics"
    ALGORITHM_REGRESSION = "algorithm_regression"
    DATA_SCHEMA_DRIFT = "data_schema_drift"
    FLAKE_CONCURRENCY = "flake_concurrency"


REPOSITORY = "acme/dispatch"

# story kinds, in the order the report lists them
FLAKE = "flake"
REGRESSION = "regression"
SCHEMA_DRIFT = "schema_drift"
CONTRACT = "contract_violation"
MULTI_PREFIX = "multi_prefix"
SEV1 = "sev1"
ONE_OFF = "one_off"
# the other playbooks' stories (seeds 002 and 003, or a team's own classes)
CONTRACT_DRIFT = "contract_drift"
STALE_FIXTURE = "stale_fixture"
INFRA_OUTAGE = "infra_outage"
CLASS_STORY = "class_story"
KINDS = (
    FLAKE,
    REGRESSION,
    SCHEMA_DRIFT,
    CONTRACT,
    MULTI_PREFIX,
    SEV1,
    ONE_OFF,
    CONTRACT_DRIFT,
    STALE_FIXTURE,
    INFRA_OUTAGE,
    CLASS_STORY,
)

KIND_LABELS = {
    FLAKE: "recurring flake",
    REGRESSION: "deterministic regression",
    SCHEMA_DRIFT: "schema drift after a migration",
    CONTRACT: "contract violation (missing ids)",
    MULTI_PREFIX: "multi-prefix run (shared service)",
    SEV1: "SEV-1 tenant leak",
    ONE_OFF: "one-off infrastructure blip",
    CONTRACT_DRIFT: "contract drift after a schema change",
    STALE_FIXTURE: "stale fixture after an intended change",
    INFRA_OUTAGE: "infra outage failing many tests at once",
    CLASS_STORY: "a class's own example (no phrasebook)",
}


@dataclass
class Story:
    """One failure episode: the results it contributes and when it stops."""

    key: str
    kind: str
    # the class a responder who read the evidence would choose: a FailureClass for seed 001, a
    # member of its own playbook's classes (``playbook_classes``) for the others
    truth: StrEnum
    results: list[dict[str, Any]]
    root_cause: str
    fixed: bool = False
    # the days (0-based) and suites it fails in; smoke_chance: probability per smoke run
    days: set[int] = field(default_factory=set)
    nightly: bool = True
    smoke_chance: float = 0.0
    persistent_from: int | None = None  # fails every run from this day until fixed
    only_runs: set[str] = field(default_factory=set)  # one-offs: exactly these run ids
    playbook: str = ""  # whose story it is ("" for the default playbook's seed-001 stories)
    suites: set[str] = field(default_factory=set)  # other playbooks: the suites it fails in (empty: all)

    def active(self, day: int, suite: str, run_id: str, rng: random.Random) -> bool:
        if self.fixed:
            return False
        if self.only_runs:
            return run_id in self.only_runs
        if self.persistent_from is not None:
            return day >= self.persistent_from and (suite == "nightly" or rng.random() < max(self.smoke_chance, 0.0))
        if day not in self.days:
            return False
        if self.suites:
            return suite in self.suites
        return self.nightly if suite == "nightly" else rng.random() < self.smoke_chance


@dataclass(frozen=True)
class SentFailure:
    story: str
    kind: str
    scenario_id: str | None
    invariant_id: str | None
    test_identity: str
    message: str = ""  # what CI said failed: the outside checks find the card, DM and bead by it
    test_file: str = ""
    playbook: str = ""  # the playbook the generator wrote it for ("": the default playbook)


@dataclass
class CiRun:
    at: datetime
    day: int
    suite: str
    run_id: str
    passed: int
    failures: list[SentFailure] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    resent: bool = False  # CI uploaded the same report twice (must change nothing)
    playbook: str = ""  # the playbook whose traffic it is ("": the default playbook's seed-001 runs)

    @property
    def door(self) -> str:
        """How the run reaches the bot (``slackbot.simulation.doors`` sends it): every third smoke run
        as JUnit XML (``triagebot send --junit``'s request); of the failed runs, a quarter through
        GitHub's ``workflow_run`` webhook and an eighth each through a CI notifier's Slack message, a
        person's triage reaction and ``@triagebot triage``; the rest as report JSON. Fixed by the run
        id, so the seed's story is unchanged."""
        number = int(self.run_id)
        if self.suite == "smoke" and number % 3 == 0:
            return "junit"
        if not self.failures:  # green: the webhook would only post evidence, a notifier says nothing
            return "report"
        pick = number % 8
        if pick in (1, 4):
            return "github"
        if self.resent:  # nobody posts a failure twice in Slack; CI re-uploads (or GitHub redelivers)
            return "report"
        return {2: "notifier", 5: "reaction", 7: "mention"}.get(pick, "report")

    @property
    def prefixes(self) -> set[str]:
        return {f.scenario_id.split("-", 1)[0] for f in self.failures if f.scenario_id and "-" in f.scenario_id}


def concrete_path(runbook: Runbook, failure_class: FailureClass, name: str) -> str:
    """A test file the routing table assigns to ``failure_class`` (its scope globs), so the bot's
    owner suggestion is exercised; a plain integration test path when no glob yields one."""
    route = runbook.class_route(failure_class)
    for pattern in route.scope if route else []:
        if "**" in pattern:
            candidate = pattern.split("**", 1)[0].rstrip("/") + "/" + name
        else:
            candidate = pattern.replace("*", name.rsplit(".", 1)[0])
        owner = runbook.routing.owner_for_path(candidate)
        if glob_match(pattern, candidate) and owner is not None and owner[0] == failure_class:
            return candidate
    return f"tests/integration/{name}"


def _pick(entries: list[TaxonomyEntry], rng: random.Random, *, likely: FailureClass | None = None) -> TaxonomyEntry:
    preferred = [e for e in entries if likely is not None and e.likely_class == likely]
    return rng.choice(preferred or entries)


def _invariant(runbook: Runbook, rng: random.Random, prefix: str | None = None) -> TaxonomyEntry:
    entries = runbook.taxonomy.invariants
    wanted = [e for e in entries if e.prefix == prefix]
    return wanted[0] if wanted else rng.choice(entries)


def _result(
    scenario: str | None,
    invariant: str | None,
    message: str,
    test_file: str,
    test_name: str,
    *,
    org: str = "org-a",
    status: str = "failed",
    entities: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "scenarioId": scenario,
        "invariantId": invariant,
        "status": status,
        "message": message,
        "testFile": test_file,
        "testName": test_name,
        "organizationUnderTest": org,
        "keyEntityIds": entities or {"orgId": org},
        "evidence": [{"kind": "db_snapshot", "path": f"evidence/{scenario or 'harness'}/rows.json"}],
    }


class Traffic:
    """The CI side of the simulation: which runs happen when, and what each one reports."""

    def __init__(
        self,
        runbook: Runbook,
        *,
        days: int,
        seed: int,
        start: datetime,
        playbooks: Sequence[Runbook] = (),
    ) -> None:
        """``runbook`` is the default playbook: seed 001's stories are told in it when it has their
        classes and a taxonomy. Every other playbook in ``playbooks`` without alert rules (those are
        Alertmanager's, see alerts.py) gets stories of its own classes, from its own seeded RNG, so
        adding or editing one playbook never changes another's story."""
        self.runbook = runbook
        self.days = days
        self.start = start
        self.seed = seed
        self.rng = random.Random(f"traffic:{seed}")
        self.stories: list[Story] = []
        self.schedule: list[CiRun] = []
        self.sent: list[CiRun] = []
        self.milestones: dict[str, int] = {}  # story kind -> the day it starts (for the report)
        self.playbooks: dict[str, Runbook] = {}  # name -> playbook, for every playbook with traffic
        self.skipped: dict[str, str] = {}  # playbook -> why it has no traffic
        self._extra: dict[str, PlaybookTraffic] = {}
        # story_for's lookups, rebuilt when a story is added: (stories indexed, by ids, by test)
        self._story_index: tuple[int, dict[tuple[Any, Any], Story], dict[str, Story]] = (-1, {}, {})
        if seed_001_fits(runbook):
            self.playbooks[runbook.name] = runbook
            self._build_schedule()
            self._build_stories()
        else:
            self.skipped[runbook.name] = seed_001_gap(runbook)
        for playbook in playbooks:
            if playbook.name in self.playbooks:
                continue
            if playbook.policy.alerts:
                self.skipped[playbook.name] = "its failures are Alertmanager's alerts (alerts.py)"
                continue
            extra = PlaybookTraffic(playbook, days=days, seed=seed, start=start, first_run=self._first_run(playbook))
            if not extra.stories:
                self.skipped[playbook.name] = "it has no class to tell a story of"
                continue
            self._extra[playbook.name] = extra
            self.playbooks[playbook.name] = playbook
            self.stories.extend(extra.stories)
            self.schedule.extend(extra.schedule)
        # the default playbook's runs first at one instant, so seed 001's runs go out as they always did
        self.schedule.sort(key=lambda r: r.at)
        # what was meant to go out, kept as the schedule is consumed: which promises apply is read from it
        self.planned: tuple[CiRun, ...] = tuple(self.schedule)

    # -- schedule ---------------------------------------------------------------------------------

    def _build_schedule(self) -> None:
        rng = self.rng
        run_number = 41000
        for day in range(self.days):
            midnight = self.start + timedelta(days=day)
            nightly = midnight + timedelta(hours=2, minutes=rng.randint(5, 50))
            slots = [(nightly, "nightly", 46)]
            for hour in (8.5, 11.75, 14.5, 17.25)[: rng.choice((3, 4, 4))]:
                jitter = rng.randint(-20, 20)
                slots.append((midnight + timedelta(hours=hour, minutes=jitter), "smoke", 12))
            for at, suite, total in sorted(slots, key=lambda s: s[0]):
                run_number += rng.randint(1, 9)
                self.schedule.append(CiRun(at=at, day=day, suite=suite, run_id=str(run_number), passed=total))
        # CI sometimes uploads the same report twice (a retried upload step): two random runs
        for run in rng.sample(self.schedule, k=min(2, len(self.schedule))):
            run.resent = True

    def _first_run(self, playbook: Runbook) -> int:
        """Run numbers of the playbook's own range, from its name: adding or removing another playbook
        leaves them (and the story's one-off runs) as they were."""
        first = 100000 + zlib.crc32(playbook.name.encode()) % 900 * 10000
        taken = {extra.first_run for extra in self._extra.values()}
        while first in taken:
            first += 10000
        return first

    def _day(self, lo: float, hi: float) -> int:
        """A day between the fractions lo..hi of the simulated period (at least day 0)."""
        low = int(lo * self.days)
        return min(max(self.days - 1, 0), self.rng.randint(low, max(low, int(hi * self.days))))

    # -- stories ----------------------------------------------------------------------------------

    def _build_stories(self) -> None:
        rb, rng = self.runbook, self.rng
        scenarios = rb.taxonomy.scenarios

        # a flake that recurs every few nights (and now and then in smoke)
        flaky = _pick(scenarios, rng, likely=FailureClass.FLAKE_CONCURRENCY)
        idemp = _invariant(rb, rng, "IDEMP")
        first = rng.randint(0, 1)
        period = rng.choice((2, 3, 3, 4))
        self._add(
            Story(
                key=f"{FLAKE}:{flaky.prefix}",
                kind=FLAKE,
                truth=FailureClass.FLAKE_CONCURRENCY,
                results=[
                    _result(
                        f"{flaky.prefix}-007",
                        f"{idemp.prefix}-002",
                        "expected 1 notification row for bid window bw-88, found 2 (concurrent accept)",
                        concrete_path(rb, FailureClass.FLAKE_CONCURRENCY, "double-accept.test.ts"),
                        f"{flaky.prefix}-007 concurrent accepts create one assignment",
                        entities={"orgId": "org-a", "bidWindowId": "bw-88"},
                    )
                ],
                root_cause="two concurrent accepts raced past the uniqueness check; added a unique "
                "constraint and an idempotency key on accept",
                days=set(range(first, self.days, period)),
                smoke_chance=0.08,
            )
        )

        # a deterministic regression from day N on
        algo = _pick(scenarios, rng, likely=FailureClass.ALGORITHM_REGRESSION)
        assign = _invariant(rb, rng, "ASSIGN")
        start = self._day(0.15, 0.3)
        self._add(
            Story(
                key=f"{REGRESSION}:{algo.prefix}",
                kind=REGRESSION,
                truth=FailureClass.ALGORITHM_REGRESSION,
                results=[
                    _result(
                        f"{algo.prefix}-014",
                        f"{assign.prefix}-002",
                        "driver drv-12 assigned two overlapping shifts in week 48 (cap 1)",
                        "tests/integration/scheduling.test.ts",
                        f"{algo.prefix}-014 weekly cap holds across the DST boundary",
                        entities={"orgId": "org-a", "driverId": "drv-12"},
                    )
                ],
                root_cause="the weekly cap counted shifts in local time and missed the 25-hour DST day; "
                "reverted the cap refactor",
                persistent_from=start,
                smoke_chance=0.7,
            )
        )

        # schema drift after a migration day: test files under the data_schema_drift scope
        migration = self._day(0.35, 0.5)
        state = _invariant(rb, rng, "STATE")
        drift_a, _ = rng.sample(scenarios, k=2) if len(scenarios) > 1 else (scenarios[0], scenarios[0])
        self._add(
            Story(
                key=f"{SCHEMA_DRIFT}:{drift_a.prefix}",
                kind=SCHEMA_DRIFT,
                truth=FailureClass.DATA_SCHEMA_DRIFT,
                results=[
                    _result(
                        f"{drift_a.prefix}-031",
                        f"{state.prefix}-004",
                        'column "cap_minutes" of relation "shifts" does not exist',
                        concrete_path(rb, FailureClass.DATA_SCHEMA_DRIFT, "0042_add_shift_caps.sql"),
                        f"{drift_a.prefix}-031 seed loads after migration 0042",
                    ),
                    _result(  # the same scenario breaks a second invariant: its own incident
                        f"{drift_a.prefix}-031",
                        f"{state.prefix}-005",
                        'null value in column "cap_minutes" violates not-null constraint',
                        concrete_path(rb, FailureClass.DATA_SCHEMA_DRIFT, "0042_seed_caps.sql"),
                        f"{drift_a.prefix}-031 fixtures match the schema after migration 0042",
                    ),
                ],
                root_cause="migration 0042 added shifts.cap_minutes NOT NULL but the seed still inserts "
                "without it; fixed the seed in the same PR as the migration",
                persistent_from=migration,
                smoke_chance=0.5,
            )
        )

        # contract violations: one result without invariantId, later one without both ids
        contract_day = self._day(0.2, 0.45)
        harness_file = concrete_path(rb, FailureClass.HARNESS_DIAGNOSTICS, "reset.test.ts")
        self._add(
            Story(
                key=f"{CONTRACT}:no-invariant",
                kind=CONTRACT,
                truth=FailureClass.HARNESS_DIAGNOSTICS,
                results=[
                    _result(
                        f"{rng.choice(scenarios).prefix}-050",
                        None,
                        "reset helper left 3 rows in notifications before the scenario ran",
                        harness_file,
                        "resets the database between scenarios",
                    )
                ],
                root_cause="the reset helper skipped the notifications table; it now truncates every table",
                days={contract_day},
            )
        )
        second = min(self.days - 1, contract_day + rng.randint(2, 4))
        self._add(
            Story(
                key=f"{CONTRACT}:no-ids",
                kind=CONTRACT,
                truth=FailureClass.HARNESS_DIAGNOSTICS,
                results=[
                    _result(
                        None,
                        None,
                        "TypeError: cannot read properties of undefined (reading 'now') in freezeClock",
                        concrete_path(rb, FailureClass.HARNESS_DIAGNOSTICS, "clock.test.ts"),
                        "freezes the clock for the scenario",
                    )
                ],
                root_cause="freezeClock was called before the harness installed the fake timers",
                days={second, min(self.days - 1, second + 1)},
            )
        )

        # one nightly where a shared service breaks three scenario classes at once
        multi_day = self._day(0.5, 0.65)
        notif = _invariant(rb, rng, "NOTIF")
        shared = rng.sample(scenarios, k=min(3, len(scenarios)))
        self._add(
            Story(
                key=f"{MULTI_PREFIX}:day{multi_day}",
                kind=MULTI_PREFIX,
                truth=FailureClass.INFRA_CI,
                results=[
                    _result(
                        f"{entry.prefix}-{60 + n:03d}",
                        f"{notif.prefix}-{n + 1:03d}",
                        "notification service returned 503 while the scenario asserted fanout",
                        f"tests/integration/{entry.prefix.lower()}-fanout.test.ts",
                        f"{entry.prefix}-{60 + n:03d} fanout reaches every recipient",
                    )
                    for n, entry in enumerate(shared)
                ],
                root_cause="the notification service container ran out of memory in CI; raised its limit",
                days={multi_day},
            )
        )

        # the SEV-1: a tenant-isolation leak
        sev_day = self._day(0.6, 0.8)
        tenant = _invariant(rb, rng, "TENANT")
        bid = _pick(scenarios, rng, likely=FailureClass.ALGORITHM_REGRESSION)
        self._add(
            Story(
                key=f"{SEV1}:{tenant.prefix}",
                kind=SEV1,
                truth=FailureClass.ALGORITHM_REGRESSION,
                results=[
                    _result(
                        f"{bid.prefix}-001",
                        f"{tenant.prefix}-001",
                        "notification for org-b visible to org-a (cross-tenant read)",
                        "tests/integration/tenant-isolation.test.ts",
                        f"{bid.prefix}-001 org-a never sees org-b notifications",
                        entities={"orgId": "org-a", "foreignOrgId": "org-b", "notificationId": "n-9"},
                    )
                ],
                root_cause="the notification query lost its orgId filter in the pagination refactor; "
                "restored the filter and added a tenant guard",
                persistent_from=sev_day,
                smoke_chance=0.3,
            )
        )

        # one-off blips: a random run every other day or so, never seen again
        for number, run in enumerate(r for r in self.schedule if self.rng.random() < 0.09):
            entry = rng.choice(scenarios)
            inv = rng.choice(rb.taxonomy.invariants)
            self._add(
                Story(
                    key=f"{ONE_OFF}:{run.run_id}",
                    kind=ONE_OFF,
                    truth=FailureClass.INFRA_CI,
                    results=[
                        _result(
                            f"{entry.prefix}-{200 + number:03d}",
                            f"{inv.prefix}-{100 + number:03d}",
                            "connect ECONNREFUSED 127.0.0.1:5432 (Postgres service not healthy)",
                            f"tests/integration/{entry.prefix.lower()}-journeys.test.ts",
                            f"{entry.prefix}-{200 + number:03d} journey {number}",
                            status="error",
                        )
                    ],
                    root_cause="the Postgres service container was not healthy in that CI job",
                    only_runs={run.run_id},
                )
            )
        for kind, day in (
            (FLAKE, first),
            (REGRESSION, start),
            (SCHEMA_DRIFT, migration),
            (CONTRACT, contract_day),
            (MULTI_PREFIX, multi_day),
            (SEV1, sev_day),
        ):
            self.milestones[kind] = day

    def _add(self, story: Story) -> None:
        self.stories.append(story)

    # -- the simulation's side --------------------------------------------------------------------

    def next_at(self) -> datetime | None:
        return self.schedule[0].at if self.schedule else None

    def due(self, now: datetime) -> list[CiRun]:
        """Runs that finished by ``now``, with their reports built from the stories' state now."""
        due = []
        while self.schedule and self.schedule[0].at <= now:
            run = self.schedule.pop(0)
            self._fill(run)
            self.sent.append(run)
            due.append(run)
        return due

    def _fill(self, run: CiRun) -> None:
        if run.playbook:
            self._extra[run.playbook].fill(run)
            return
        rng = random.Random(f"run:{self.seed}:{run.run_id}")
        results: list[dict[str, Any]] = []
        for story in self.stories:
            if not story.playbook and story.active(run.day, run.suite, run.run_id, rng):
                for result in story.results:
                    results.append(dict(result))
                    run.failures.append(
                        SentFailure(
                            story.key,
                            story.kind,
                            result["scenarioId"],
                            result["invariantId"],
                            "::".join(p for p in (result["testFile"], result["testName"]) if p),
                            str(result.get("message") or ""),
                            str(result.get("testFile") or ""),
                        )
                    )
        scenarios, invariants = self.runbook.taxonomy.scenarios, self.runbook.taxonomy.invariants
        for n in range(run.passed - len(results)):
            entry = scenarios[n % len(scenarios)]
            results.append(
                {
                    "scenarioId": f"{entry.prefix}-{900 + n:03d}",
                    "invariantId": f"{invariants[n % len(invariants)].prefix}-900",
                    "status": "passed",
                    "testFile": f"tests/integration/{entry.prefix.lower()}.test.ts",
                    "testName": f"{entry.prefix}-{900 + n:03d} passes",
                }
            )
        workflow = "integration-nightly" if run.suite == "nightly" else "integration-smoke"
        run.report = {
            "schemaVersion": 1,
            "run": {
                "provider": "github",
                "repository": REPOSITORY,
                "runId": run.run_id,
                "runAttempt": 1,
                "url": f"https://github.com/{REPOSITORY}/actions/runs/{run.run_id}",
                "workflow": workflow,
                "suite": run.suite,
                "branch": "main",
                "sha": f"{rng.getrandbits(160):040x}",
                "finishedAt": run.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "results": results,
        }

    def story(self, key: str) -> Story | None:
        return next((s for s in self.stories if s.key == key), None)

    def story_for(self, scenario_id: str | None, invariant_id: str | None, test_identity: str) -> Story | None:
        """The story a failure belongs to, matched the way the bot fingerprints (ids, else test):
        the first story with such a result. People ask for every open incident each time they look."""
        if self._story_index[0] != len(self.stories):
            self._index_stories()
        if scenario_id and invariant_id:
            return self._story_index[1].get((scenario_id, invariant_id))
        return self._story_index[2].get(test_identity)

    def _index_stories(self) -> None:
        by_ids: dict[tuple[Any, Any], Story] = {}
        by_test: dict[str, Story] = {}
        for story in self.stories:
            for result in story.results:
                by_ids.setdefault((result["scenarioId"], result["invariantId"]), story)
                by_test.setdefault("::".join(p for p in (result["testFile"], result["testName"]) if p), story)
        self._story_index = (len(self.stories), by_ids, by_test)

    def fix(self, key: str) -> None:
        story = self.story(key)
        if story is not None:
            story.fixed = True

    # -- numbers for the report -------------------------------------------------------------------

    def playbook_of(self, story: Story) -> Runbook:
        """The playbook a story's truth is a class of (responders classify with its words)."""
        return self.playbooks.get(story.playbook) or self.runbook

    def counts(self) -> dict[str, Any]:
        told = {s.kind for s in self.stories} | set(KINDS[:7])  # seed 001's kinds are always listed
        failures_by_kind = {kind: 0 for kind in KINDS if kind in told}
        by_playbook = {name: {"runs": 0, "failures": 0} for name in self.playbooks}
        for run in self.sent:
            mine = by_playbook.setdefault(run.playbook or self.runbook.name, {"runs": 0, "failures": 0})
            mine["runs"] += 1
            mine["failures"] += len(run.failures)
            for failure in run.failures:
                failures_by_kind[failure.kind] += 1
        return {
            "by_playbook": by_playbook,
            "playbooks_without_traffic": dict(self.skipped),
            "runs": len(self.sent),
            "nightly_runs": sum(1 for r in self.sent if r.suite == "nightly" and not r.playbook),
            "smoke_runs": sum(1 for r in self.sent if r.suite == "smoke" and not r.playbook),
            "green_runs": sum(1 for r in self.sent if not r.failures),
            "results": sum(len(r.report.get("results", [])) for r in self.sent),
            "failures": sum(len(r.failures) for r in self.sent),
            "failures_by_kind": failures_by_kind,
            "resent_reports": sum(1 for r in self.sent if r.resent),
            "junit_runs": sum(1 for r in self.sent if r.door == "junit"),
            "multi_prefix_runs": sum(1 for r in self.sent if len(r.prefixes) >= 2),
            "story_days": dict(self.milestones),
        }


def seed_001_gap(runbook: Runbook) -> str:
    """Why seed 001's stories cannot be told in ``runbook`` ("" when they can)."""
    missing = sorted({c.value for c in FailureClass} - set(runbook.classes))
    if missing:
        return f"seed 001's stories need the classes {', '.join(missing)}"
    if not runbook.taxonomy.scenarios or not runbook.taxonomy.invariants:
        return "seed 001's stories need a taxonomy of scenario and invariant prefixes"
    return ""


def seed_001_fits(runbook: Runbook) -> bool:
    return not seed_001_gap(runbook)


_CLASS_ENUMS: dict[tuple[str, tuple[str, ...]], type[StrEnum]] = {}


def playbook_classes(playbook: Runbook) -> type[StrEnum]:
    """A playbook's classes as an enum, so a story's truth reads like seed 001's (``truth.value``)."""
    keys = tuple(playbook.classes)
    key = (playbook.name, keys)
    if key not in _CLASS_ENUMS:
        name = "".join(part.capitalize() for part in playbook.name.replace("_", "-").split("-")) + "Class"
        _CLASS_ENUMS[key] = cast(type[StrEnum], StrEnum(name, [(k.upper(), k) for k in keys]))
    return _CLASS_ENUMS[key]


def _concrete(pattern: str, name: str) -> str:
    """A file (or .NET class) a glob of routing.yml matches."""
    if "**" in pattern:
        return pattern.split("**", 1)[0].rstrip("/") + "/" + name
    return pattern.replace("*", name.rsplit(".", 1)[0]).replace("?", "x")


class PlaybookTraffic:
    """One non-default playbook's CI: a few runs a day of the suite it routes, aimed at it by its own
    match rules (repository, workflow), failing with stories of its own classes."""

    RUNS_PER_DAY = ((3, 10, 20), (13, 40, 40))  # (hour, minute, jitter): a nightly gate and a push
    PASSED = 12  # results per run, passing ones included

    def __init__(self, playbook: Runbook, *, days: int, seed: int, start: datetime, first_run: int) -> None:
        self.playbook = playbook
        self.days = days
        self.seed = seed
        self.first_run = first_run
        self.rng = random.Random(f"traffic:{seed}:{playbook.name}")
        self.truths = playbook_classes(playbook)
        rules = playbook.routing.match
        self.suite = next(iter(playbook.routing.suites), None) or next(
            (r.suite.replace("*", "") for r in rules if r.suite), "ci"
        )
        self.repository = next(
            (r.repository.replace("*", "acme") for r in rules if r.repository and "/" in r.repository), REPOSITORY
        )
        workflows = [r.workflow for r in rules if r.workflow] + [
            t.workflow for t in playbook.policy.triggers if t.workflow
        ]
        self.workflow = workflows[0].replace("*", "") if workflows else self.suite
        self.schedule: list[CiRun] = []
        self.stories: list[Story] = []
        number = first_run
        for day in range(days):
            midnight = start + timedelta(days=day)
            for hour, minute, jitter in self.RUNS_PER_DAY:
                number += self.rng.randint(1, 9)
                at = midnight + timedelta(hours=hour, minutes=minute + self.rng.randint(-jitter, jitter))
                self.schedule.append(
                    CiRun(
                        at=at, day=day, suite=self.suite, run_id=str(number), passed=self.PASSED, playbook=playbook.name
                    )
                )
        if self.schedule:
            for failure_class in playbook.classes:
                self._story(failure_class)

    def _day(self, lo: float, hi: float) -> int:
        low = int(lo * self.days)
        return min(max(self.days - 1, 0), self.rng.randint(low, max(low, int(hi * self.days))))

    def _line(self, failure_class: str) -> Line:
        """A class without a phrasebook entry fails with its own first example, in a file its scope
        (or the playbook's test match rule) names."""
        route = self.playbook.classes[failure_class]
        globs = [*route.scope, *(r.test for r in self.playbook.routing.match if r.test)]
        name = f"{failure_class}_example"
        test_file = _concrete(globs[0], name) if globs else f"tests/{failure_class}/{name}"
        message = (route.examples[0] if route.examples else route.description).strip()
        return Line(test_file, f"{route.label}: {message[:60]}", message)

    def _story(self, failure_class: str) -> None:
        episode = EPISODES.get(failure_class) or Episode(
            CLASS_STORY, "outage", (self._line(failure_class),), f"{self.playbook.class_label(failure_class)} fixed"
        )
        kind = episode.kind
        if episode.shape == "sev1" and "SEV-1" not in self.playbook.policy.severities:
            kind = REGRESSION  # the passer-by says "SEV-1": only where the playbook has one
        story = Story(
            key=f"{self.playbook.name}:{kind}:{failure_class}",
            kind=kind,
            truth=self.truths(failure_class),
            results=[self._result(line) for line in episode.lines],
            root_cause=episode.root_cause,
            playbook=self.playbook.name,
            suites={self.suite},
        )
        if episode.shape in ("persistent", "sev1"):
            story.persistent_from = self._day(0.0, 0.5)
            story.smoke_chance = 1.0  # every run of the gate, from then on
        elif episode.shape == "flake":
            first = self.rng.randint(0, min(1, self.days - 1))
            story.days = set(range(first, self.days, self.rng.choice((2, 3))))
        else:  # one run, never again
            story.only_runs = {self.rng.choice(self.schedule).run_id}
        self.stories.append(story)

    def _result(self, line: Line, status: str = "failed") -> dict[str, Any]:
        result: dict[str, Any] = {
            "scenarioId": None,
            "invariantId": None,
            "status": status,
            "message": line.message,
            "testFile": line.test_file,
            "testName": line.test_name,
        }
        if line.command:
            result["command"] = line.command
        return result

    def fill(self, run: CiRun) -> None:
        rng = random.Random(f"run:{self.seed}:{self.playbook.name}:{run.run_id}")
        results: list[dict[str, Any]] = []
        failing: set[str] = set()
        for story in self.stories:
            if story.active(run.day, run.suite, run.run_id, rng):
                for result in story.results:
                    results.append(dict(result))
                    identity = "::".join(p for p in (result["testFile"], result["testName"]) if p)
                    failing.add(identity)
                    run.failures.append(
                        SentFailure(
                            story.key,
                            story.kind,
                            None,
                            None,
                            identity,
                            str(result["message"]),
                            str(result["testFile"]),
                            self.playbook.name,
                        )
                    )
        # the rest of the gate passes: the stories' own tests when they do not fail, then fillers
        passing = [r for s in self.stories for r in s.results if f"{r['testFile']}::{r['testName']}" not in failing]
        for n in range(max(run.passed - len(results), 0)):
            if n < len(passing):
                results.append({**passing[n], "status": "passed", "message": ""})
            else:
                results.append(self._result(Line(f"{self.suite}/checks", f"check {n} passes", ""), "passed"))
        run.report = {
            "schemaVersion": 1,
            "run": {
                "provider": "github",
                "repository": self.repository,
                "runId": run.run_id,
                "runAttempt": 1,
                "url": f"https://github.com/{self.repository}/actions/runs/{run.run_id}",
                "workflow": self.workflow,
                "suite": run.suite,
                "branch": "main",
                "sha": f"{rng.getrandbits(160):040x}",
                "finishedAt": run.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "results": results,
        }


def junit_xml(report: dict[str, Any]) -> str:
    """The same results as a JUnit file, the way a vitest or pytest job writes one: ids as
    ``<property>`` elements (absent when CI has none), the test file in ``file``, the message on
    ``<failure>``/``<error>``."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites, "testsuite", name=str(report["run"].get("suite", "tests")), tests=str(len(report["results"]))
    )
    for result in report["results"]:
        case = ET.SubElement(
            suite,
            "testcase",
            name=str(result["testName"]),
            classname=str(result["testFile"]),
            file=str(result["testFile"]),
        )
        properties = [(k, result.get(k)) for k in ("scenarioId", "invariantId") if result.get(k)]
        if properties:
            holder = ET.SubElement(case, "properties")
            for name, value in properties:
                ET.SubElement(holder, "property", name=name, value=str(value))
        if result["status"] in ("failed", "error"):
            tag = "failure" if result["status"] == "failed" else "error"
            ET.SubElement(case, tag, message=str(result.get("message") or ""), type="AssertionError").text = str(
                result.get("message") or ""
            )
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
