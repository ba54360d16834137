"""Simulated people: responders who work the cards (``--responders``) and one passer-by.

Every action goes through Slack the way a person's would: the local emulator signs a slash
command or a click on the card's buttons and POSTs it to the bot's real Bolt app over HTTP. After
each action the simulation waits (in wall time) until the bot has handled it, so the change lands
at the virtual instant the person acted.

Responders follow the runbook: acknowledge and classify the card (from the evidence, which the
simulation knows), then post the status milestones (triage complete → mitigation active → fix
merged → validation complete) and resolve with the root cause. Their delays come from the seeded
RNG in virtual time; about a quarter of first reactions come after the 20-minute rule has fired, so
escalations happen with responders too. A merged fix stops the story's failures in CI. A flake's
first fix does not hold: it recurs, the bot reopens the incident, and the second fix sticks.

Responders are people, not oracles (issue 16): about half of them trust the card's suggested class
and press its Confirm when the card's confidence reaches the bot's own ``CONFIDENT``, reading only what the
card in Slack shows; the others classify by hand from the menu, and sometimes pick the wrong class
first and reclassify a few minutes later with ``/triage classify``. A trusting responder whose
confident suggestion was wrong notices it the same way and reclassifies.

Responders are people with weekends (issue 15): on Saturday and Sunday in the workspace's time
zone (workspace.yml's digest zone) nobody acts; whatever they would have done then waits until
Monday morning, when they catch up. The bot's escalations keep paging through the weekend. Ops on
call is the on-call escalation path: ``operator.py`` works every alert's runbook, weekends included.

Every CI playbook has its people (issue 15): an incident of another playbook than the default is
worked by the owner routing.yml names for its story's class, through that playbook's own milestones
in policy.yml, each record field filled the way its seed asks (seed 002: the remediation PR, the
validators' green output, the root cause and a prevention note; seed 003: version, environment and
failing operation, the mitigation, the fix PR, the regression runs). The fix lands at the milestone
the playbook's ``validation`` starts from (else ``fix_merged``) and stops the story's failures in
CI; the milestone validation reaches is left to the bot's green runs, and people resolve once it is
there (or post it by hand when it never comes). Where a class must have its incident issue before it
resolves and classifying does not file one, the responder asks for it (``/triage bead``) at triage,
as seed 003's triage step 3 says. Those people draw from their own playbook's seeded streams, so seed
001's responders keep every draw they had.

The passer-by exists in both worlds: a triage lead glances at the channel after the tenant leak
appears and marks it SEV-1 with ``/triage severity``. The report format has no severity field, so
a harness cannot say "SEV-1" by itself; someone has to, and that one command is the only human
action in the unattended run. Everything after it (paging the release maintainer at once, the
priority-0 bead) is the bot's.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.config import Playbook as Runbook
from slackbot.config import Playbooks
from slackbot.config.policy import ROOT_CAUSE, Milestone
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY
from slackbot.emulator import SlackEmulator
from slackbot.outbox.slack_deliveries import is_posted
from slackbot.simulation.alerts import Alerts
from slackbot.simulation.kept import KeptReads
from slackbot.simulation.operator import OP, Operator
from slackbot.simulation.traffic import FLAKE, SEV1, FailureClass, Story, Traffic
from slackbot.slack import card as card_ids
from slackbot.suggest.suggestion import CONFIDENT  # what the bot calls confident, shown on the card as a %

MILESTONE_STEPS = ("triage_complete", "mitigation_active", "fix_merged", "validation_complete")
TRUSTING = 0.5  # the share of responders who use the suggestion
WRONG_FIRST = 0.15  # the share of hand classifications that pick a wrong class first
CONFIRMED = "(confirmed the suggestion)"  # how the report tells a confirmed classification apart
_CONFIDENCE = re.compile(r"(\d{1,3})% confident")
OTHER = "m:"  # another playbook's milestone step: "m:<milestone key>"
AWAIT = "await"  # another playbook's people look whether the bot's green runs reached validation
AWAIT_TRIES = 8  # looks 3-8 h apart (about two days), then they post it by hand: no green run came

# What people write into another playbook's incident record, by the field's key (seeds 002 and 003
# ask for these); {pr}, {repository}, {test}, {command} are the story's. A field nobody listed here
# gets a pointer to the thread.
FIELD_WORDS = {
    "resolution_pr": "https://github.com/{repository}/pull/{pr}",
    "validation_proof": "{command} green on the remediation branch",
    "failing_operation": "{test}",
    "version": "2.4.1",
    "environment": "CI on main (ubuntu-latest, .NET 8)",
    "mitigation": "consumers pinned to the last known-good package version",
    "fix_pr": "https://github.com/{repository}/pull/{pr}",
    "validation": "targeted test and full regression green (dotnet test CBDD.slnx -c Release; coverage-check.sh)",
    "blast_radius": "CI on main only; no consumer reported impact",
    "fixed_package": "2.4.2",
    "prevention_followup": "the gate now fails the PR that changes one side without the other",
}
# A milestone that asks for nothing still gets a note in the thread.
MILESTONE_WORDS = {"classified": "bucket and owner recorded"}


class SimulationError(RuntimeError):
    """The simulation itself could not go on (not a finding about the bot)."""


@dataclass(order=True)
class Action:
    at: datetime
    seq: int
    incident_id: int = field(compare=False)
    step: str = field(compare=False)
    user: str = field(compare=False)


@dataclass
class Plan:
    incident_id: int
    story: Story | None
    user: str
    rounds: int = 1  # a reopened flake is worked again
    done: bool = False
    trusts_suggestion: bool = False
    playbook: str = ""  # another playbook's name ("" for the default playbook's seed-001 path)
    awaited: int = 0  # looks at whether the bot's green runs reached validation


@dataclass
class Done:
    """One thing a simulated person did, for the report."""

    at: datetime
    user: str
    incident: str
    what: str
    answer: str
    # The class the card offered to confirm as the person acted (None: no suggestion shown): once
    # classified the card shows it no more, and until then its owner is who a page goes to.
    shown: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "user": self.user, "incident": self.incident, "what": self.what}


# what people see of the open incidents when they look at the channels (the database stands in)
_OPEN = sa_select(
    col(Incident.id),
    col(Incident.card_ts),
    col(Incident.scenario_id),
    col(Incident.invariant_id),
    col(Incident.test_identity),
    col(Incident.suggested_class),
    col(Incident.repository),
    col(Incident.playbook),
).where(col(Incident.status) == "open")


class People:
    def __init__(
        self,
        runbook: Runbook,
        traffic: Traffic,
        emulator: SlackEmulator,
        *,
        seed: int,
        responders: bool,
        engine: Callable[[], Engine],
        reads: Callable[[], KeptReads],
        playbooks: Playbooks | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self.runbook = runbook
        self.traffic = traffic
        self.emulator = emulator
        self.rng = random.Random(f"people:{seed}")
        # who trusts the suggestion and who errs: their own stream, so adding them left every delay
        # the seed already gave unchanged
        self.minds = random.Random(f"minds:{seed}")
        self.responders = responders
        self.engine = engine
        self.reads = reads  # what people look at between moments (the open cards)
        self.queue: list[Action] = []
        self.plans: dict[int, Plan] = {}
        self.done: list[Done] = []
        self._seq = itertools.count()
        self._sev1_scheduled: set[int] = set()
        # The passer-by marks each playbook's SEV-1-grade story once (traffic comes from every
        # playbook); another playbook's notice times come from their own stream, so seed 001's
        # passer-by keeps its moment.
        self._sev1_seen: set[str] = set()
        self._sev1_told = {s.key for s in traffic.stories if s.kind == SEV1}
        self._seed = seed
        self.open = True  # False once the simulated period is over: nobody starts new work
        digest = playbooks.workspace.digest if playbooks is not None else None
        self.zone = digest.zone if digest is not None else (ZoneInfo("UTC") if playbooks is not None else None)
        self.waited: dict[str, datetime] = {}  # incident -> the weekend moment its first wait began
        self._keys: dict[int, str] = {}
        # the other CI playbooks, whose people work their own incidents (with responders)
        self.books = {p.name: p for p in playbooks or () if p.name != runbook.name}
        self._streams: dict[str, tuple[random.Random, random.Random]] = {}
        # ops on call works the alerts' runbooks (with responders; nobody does otherwise)
        self.operator = (
            Operator(self, list(playbooks), alerts, seed=seed)
            if responders and playbooks is not None and alerts is not None
            else None
        )

    # -- who --------------------------------------------------------------------------------------

    def _owner(self, failure_class: StrEnum | str | None, book: Runbook | None = None) -> str:
        book = book or self.runbook
        target = book.target("owner", str(failure_class) if failure_class else None)
        return (target.dm_user if target else None) or self._lead(book)

    def _lead(self, book: Runbook | None = None) -> str:
        """Who leads triage: a class's escalation person, else whoever owns the playbook's
        unclassified incidents (a release maintainer is no responder: the workspace leaves them out)."""
        book = book or self.runbook
        for route in book.routing.classes.values():
            if route.escalation is not None and route.escalation.user:
                return route.escalation.user
        unrouted = book.routing.unrouted
        # the default playbook's too: a team may adopt seed 003's playbook alone
        if unrouted is not None and unrouted.user:
            return unrouted.user
        maintainer = book.routing.release_maintainer
        return (maintainer.user if maintainer else None) or "U0LEAD"

    def _streams_of(self, playbook: str) -> tuple[random.Random, random.Random]:
        """(delays, minds) of a playbook's people: the default's are the seed's streams as they always
        were; another playbook's are its own, so its people never move a draw of seed 001's."""
        if playbook not in self.books:
            return self.rng, self.minds
        if playbook not in self._streams:
            self._streams[playbook] = (
                random.Random(f"people:{self._seed}:{playbook}"),
                random.Random(f"minds:{self._seed}:{playbook}"),
            )
        return self._streams[playbook]

    # -- scheduling -------------------------------------------------------------------------------

    def _schedule(self, at: datetime, incident_id: int, step: str, user: str, rng: random.Random | None = None) -> None:
        # ops on call works weekends; responders wait for Monday (the unattended world's one
        # passer-by keeps its story: it is not a responder)
        if self.responders and not step.startswith(OP):
            at = self._after_weekend(at, incident_id, rng or self.rng)
        heapq.heappush(self.queue, Action(at, next(self._seq), incident_id, step, user))

    def _after_weekend(self, at: datetime, incident_id: int, rng: random.Random) -> datetime:
        """Saturday or Sunday in the workspace's zone: the action waits until Monday morning."""
        if self.zone is None:
            return at
        local = at.astimezone(self.zone)
        if local.weekday() < 5:
            return at
        monday = (local + timedelta(days=7 - local.weekday())).replace(hour=8, minute=0, second=0, microsecond=0)
        self.waited.setdefault(self._keys.get(incident_id, f"INC-{incident_id}"), at)
        return (monday + timedelta(minutes=rng.randint(0, 90))).astimezone(at.tzinfo)

    def next_at(self) -> datetime | None:
        return self.queue[0].at if self.queue else None

    def observe(self, now: datetime) -> None:
        """Look at the channels (the database stands in for reading them) and decide what to do."""
        if not self.open or (not self.responders and self._sev1_scheduled and self._sev1_seen >= self._sev1_told):
            return  # nobody is looking (the passer-by has already passed)
        for (
            incident_id,
            card_ts,
            scenario_id,
            invariant_id,
            test_identity,
            suggested,
            repository,
            playbook,
        ) in self.reads().rows(_OPEN):
            assert incident_id is not None
            if not is_posted(card_ts):
                continue  # nobody can react to a card that is not in Slack yet
            self._keys.setdefault(incident_id, f"INC-{incident_id}")
            if repository == ALERTMANAGER_REPOSITORY:
                # an alert: ops on call runs its runbook (the CI stories' responders leave it alone)
                if self.operator is not None:
                    if incident_id not in self.operator.jobs:
                        # one draw, as when responders made a plan for an alert, so every later
                        # person's mind is what the seed gave it before ops ran the alerts
                        self.minds.random()
                    self.operator.observe(now, incident_id, f"INC-{incident_id}", scenario_id, playbook)
                continue
            plan = self.plans.get(incident_id)
            if plan is not None and not plan.done:
                continue  # being worked
            story = self.traffic.story_for(scenario_id, invariant_id, test_identity)
            fresh = story is not None and (story.key not in self._sev1_seen or self.responders)
            if story is not None and story.kind == SEV1 and incident_id not in self._sev1_scheduled and fresh:
                self._sev1_scheduled.add(incident_id)
                self._sev1_seen.add(story.key)
                rng = random.Random(f"passer-by:{self._seed}:{story.playbook}") if story.playbook else self.rng
                book = self.books.get(story.playbook)
                self._schedule(
                    self._noticed(now, rng), incident_id, "sev1", self._lead(book), self._streams_of(story.playbook)[0]
                )
            other = playbook != self.runbook.name
            if not self.responders or (other and playbook not in self.books):
                continue  # nobody simulates a playbook the run was not given
            rng, minds = self._streams_of(playbook if other else "")
            if plan is None:
                truth = story.truth if story else suggested
                book = self.books.get(playbook) if other else None
                plan = Plan(
                    incident_id,
                    story,
                    self._owner(truth, book),
                    trusts_suggestion=minds.random() < TRUSTING,
                    playbook=playbook if other else "",
                )
                self.plans[incident_id] = plan
                self._schedule(now + self._first_reaction(rng), incident_id, "triage", plan.user, rng)
            else:  # a resolved flake came back: work it again
                plan.done = False
                plan.rounds += 1
                plan.awaited = 0
                self._schedule(now + self._first_reaction(rng), incident_id, "triage", plan.user, rng)

    def _noticed(self, now: datetime, rng: random.Random) -> datetime:
        """When the passer-by sees the card: within the hour by day, the next morning by night."""
        if 8 <= now.hour < 19:
            return now + timedelta(minutes=rng.randint(25, 70))
        morning = now if now.hour < 8 else now + timedelta(days=1)
        return morning.replace(hour=8, minute=30, second=0, microsecond=0) + timedelta(minutes=rng.randint(0, 60))

    def _first_reaction(self, rng: random.Random | None = None) -> timedelta:
        rng = rng or self.rng
        if rng.random() < 0.25:
            return timedelta(minutes=rng.randint(22, 55))  # after the 20-minute rule fired
        return timedelta(minutes=rng.randint(3, 17))

    def _later(self, lo: float, hi: float, rng: random.Random | None = None) -> timedelta:
        return timedelta(minutes=(rng or self.rng).uniform(lo, hi))

    # -- acting -----------------------------------------------------------------------------------

    def act(self, now: datetime) -> int:
        """Carry out every action due at ``now``; returns how many ran."""
        ran = 0
        while self.queue and self.queue[0].at <= now:
            action = heapq.heappop(self.queue)
            if not self.open and action.step != "sev1":
                continue
            self._run(action, now)
            ran += 1
        return ran

    def _incident(self, incident_id: int) -> Incident:
        with Session(self.engine()) as session:
            found = session.get(Incident, incident_id)
            if found is None:
                raise SimulationError(f"INC-{incident_id} vanished from the database")
            return found

    def _run(self, action: Action, now: datetime) -> None:
        if action.step.startswith(OP) and self.operator is not None:
            self.operator.run(action.step, action.incident_id, now)
            return
        incident = self._incident(action.incident_id)
        key, user = incident.key, action.user
        if action.step == "sev1":
            if incident.status != "open" or incident.severity == "SEV-1":
                return  # the responder working it got there first
            shown = self.suggestion_shown(incident)[0]
            answer = self.command(user, incident.channel, f"severity {key} SEV-1")
            self._log(now, user, key, "marked it SEV-1 (/triage severity)", answer, shown)
            return
        plan = self.plans[action.incident_id]
        if incident.status != "open":
            plan.done = True
            return
        if plan.playbook:
            self._work(action.step, now, plan, incident, self.books[plan.playbook])
            return
        story = plan.story
        if action.step == "triage":
            if incident.assignee is None:
                answer = self.click(user, incident, card_ids.ACTION_ACK)
                self._log(now, user, key, "acknowledged it (card button)", answer)
            if story is not None and story.kind == SEV1 and incident.severity != "SEV-1":
                # whoever reads a tenant leak's evidence says SEV-1 (a report has no severity field)
                shown = self.suggestion_shown(incident)[0]
                answer = self.command(user, incident.channel, f"severity {key} SEV-1")
                self._log(now, user, key, "marked it SEV-1 (/triage severity)", answer, shown)
            truth = story.truth.value if story else (incident.suggested_class or FailureClass.INFRA_CI.value)
            if incident.failure_class is None:
                self._classify(now, plan, incident, truth, self.runbook, self.minds)
            elif incident.failure_class != truth and incident.class_source != "contract":
                answer = self.command(user, incident.channel, f"classify {key} {truth}")
                self._log(now, user, key, f"reclassified it {truth}", answer)
            self._schedule(now + self._later(8, 30), incident.id or 0, MILESTONE_STEPS[0], user)
        elif action.step == "reclassify":
            truth = story.truth.value if story else (incident.suggested_class or FailureClass.INFRA_CI.value)
            if incident.failure_class not in (None, truth) and incident.class_source != "contract":
                answer = self.command(user, incident.channel, f"classify {key} {truth}")
                self._log(now, user, key, f"reclassified it {truth}", answer)
        elif action.step in MILESTONE_STEPS:
            note = {
                "triage_complete": "reproduces locally with the single-scenario command",
                "mitigation_active": "fix in review",
                "fix_merged": "merged to main",
                "validation_complete": "single scenario and smoke green on the fix",
            }[action.step]
            answer = self.command(user, incident.channel, f"status {key} {action.step} {note}")
            self._log(now, user, key, f"posted milestone {action.step}", answer)
            if action.step == "fix_merged" and story is not None and not (story.kind == FLAKE and plan.rounds < 2):
                self.traffic.fix(story.key)  # the fix holds: CI stops failing (a flake's first fix does not)
            index = MILESTONE_STEPS.index(action.step)
            gaps = {0: (20, 90), 1: (120, 480), 2: (60, 240), 3: (10, 60)}[index]
            following = MILESTONE_STEPS[index + 1] if index + 1 < len(MILESTONE_STEPS) else "resolve"
            self._schedule(now + self._later(*gaps), incident.id or 0, following, user)
        elif action.step == "resolve":
            cause = story.root_cause if story else "root cause found and fixed"
            answer = self.command(user, incident.channel, f"resolve {key} {cause}")
            self._log(now, user, key, "resolved it with the root cause", answer)
            if "bead" in answer and "resolved" not in answer:
                # a flake is resolved only once its bead exists (bd may be down): ask, try later
                if incident.bead_state in ("none", "failed"):
                    self._log(now, user, key, "asked for the bead", self.command(user, incident.channel, f"bead {key}"))
                self._schedule(now + timedelta(minutes=30), incident.id or 0, "resolve", user)
            else:
                plan.done = True

    # -- another playbook's people ----------------------------------------------------------------

    @staticmethod
    def _script(book: Runbook) -> tuple[list[str], str, str | None]:
        """From the playbook's policy.yml: the milestones people post by hand, in order (not the one
        its green runs reach, not the resolving one), the one the fix lands at, and the one the bot
        reaches from green runs (None: no validation by evidence)."""
        rule = book.policy.validation
        awaits = rule.reaches if rule is not None else None
        steps = [m.key for m in book.milestones if not m.resolves and m.key != awaits]
        if rule is not None and rule.after in steps:
            fix_at = rule.after
        else:
            fix_at = "fix_merged" if "fix_merged" in steps else (steps[-1] if steps else "")
        return steps, fix_at, awaits

    def _record(self, milestone: Milestone, plan: Plan, incident: Incident) -> tuple[str, list[str]]:
        """What a person types after ``/triage status INC-n <milestone>``: the note (the first field
        the milestone asks for, or a few words) and the other fields as quoted key=value words."""
        story = plan.story
        first = story.results[0] if story and story.results else {}
        words = {
            "pr": str(4000 + (incident.id or 0)),
            "repository": incident.repository or "acme/app",
            "test": str(first.get("testName") or incident.test_identity or incident.key),
            "command": str(first.get("command") or "the failing check"),
        }
        values: dict[str, str] = {}
        for ask in milestone.asks:
            if ask.key == ROOT_CAUSE:
                values[ask.key] = story.root_cause if story else "root cause found and fixed"
            elif ask.key in FIELD_WORDS:
                values[ask.key] = FIELD_WORDS[ask.key].format(**words)
            elif not ask.optional:
                values[ask.key] = f"{ask.label}: see the incident thread"
        if not values:
            return shlex.quote(MILESTONE_WORDS.get(milestone.key, milestone.label.lower())), []
        note_key = next(iter(values))
        note = values.pop(note_key)
        return shlex.quote(note), [f"{key}={shlex.quote(value)}" for key, value in values.items()]

    def _work(self, step: str, now: datetime, plan: Plan, incident: Incident, book: Runbook) -> None:
        """One step of another playbook's incident, through its own milestones (see the module text)."""
        rng, minds = self._streams_of(plan.playbook)
        key, user, story = incident.key, plan.user, plan.story
        steps, fix_at, awaits = self._script(book)
        truth = story.truth.value if story else (incident.suggested_class or next(iter(book.classes), ""))

        def then(following: str) -> None:
            name = following.removeprefix(OTHER)
            gap = (
                (120, 480)
                if name == fix_at
                else (60, 240)
                if following == AWAIT
                else (10, 60)
                if following == "resolve"
                else (20, 90)
            )
            self._schedule(now + self._later(*gap, rng), incident.id or 0, following, user, rng)

        def after(milestone: str | None) -> str:
            at = steps.index(milestone) + 1 if milestone in steps else 0
            if milestone is not None and milestone not in steps:  # the validation milestone: done
                return "resolve"
            if at < len(steps):
                return OTHER + steps[at]
            return AWAIT if awaits else "resolve"

        if step == "triage":
            if incident.assignee is None:
                self._log(
                    now, user, key, "acknowledged it (card button)", self.click(user, incident, card_ids.ACTION_ACK)
                )
            sev1 = story is not None and story.kind == SEV1 and "SEV-1" in book.policy.severities
            if sev1 and incident.severity != "SEV-1":
                shown = self.suggestion_shown(incident)[0]
                answer = self.command(user, incident.channel, f"severity {key} SEV-1")
                self._log(now, user, key, "marked it SEV-1 (/triage severity)", answer, shown)
            if incident.failure_class is None:
                self._classify(now, plan, incident, truth, book, minds)
            elif incident.failure_class != truth and incident.class_source != "contract":
                answer = self.command(user, incident.channel, f"classify {key} {truth}")
                self._log(now, user, key, f"reclassified it {truth}", answer)
            route = book.class_route(truth)
            # seed 003's triage step 3: create the incident issue (unless a SEV-1 already did)
            needs_bead = route is not None and route.bead_before_resolve and not route.files_bead
            if needs_bead and self._incident(incident.id or 0).bead_state in ("none", "failed"):
                self._log(now, user, key, "asked for the bead", self.command(user, incident.channel, f"bead {key}"))
            then(after(incident.milestone if plan.rounds < 2 and incident.milestone in steps else None))
        elif step == "reclassify":
            if incident.failure_class not in (None, truth) and incident.class_source != "contract":
                answer = self.command(user, incident.channel, f"classify {key} {truth}")
                self._log(now, user, key, f"reclassified it {truth}", answer)
        elif step.startswith(OTHER):
            milestone = book.milestone(step.removeprefix(OTHER))
            assert milestone is not None
            note, named = self._record(milestone, plan, incident)
            answer = self.command(user, incident.channel, " ".join(["status", key, milestone.key, *named, note]))
            self._log(now, user, key, f"posted milestone {milestone.key}", answer)
            if milestone.key == fix_at and story is not None and not (story.kind == FLAKE and plan.rounds < 2):
                self.traffic.fix(story.key)  # the fix holds: CI stops failing (a flake's first fix does not)
            then(after(milestone.key))
        elif step == AWAIT:
            reached = [m.key for m in book.milestones]
            known = incident.milestone in reached and awaits in reached
            if known and reached.index(incident.milestone or "") >= reached.index(awaits or ""):
                then("resolve")  # the green runs reached it: the bot posted it in the thread
                return
            plan.awaited += 1
            # no green run yet (a weekend, a flake failing again): look again later, then say it by hand
            if plan.awaited < AWAIT_TRIES:
                self._schedule(now + self._later(180, 480, rng), incident.id or 0, AWAIT, user, rng)
            else:
                then(OTHER + (awaits or ""))
        elif step == "resolve":
            milestone = book.policy.resolving
            note, named = self._record(milestone, plan, incident)
            answer = self.command(user, incident.channel, " ".join(["status", key, milestone.key, *named, note]))
            self._log(now, user, key, "resolved it with the root cause", answer)
            if "bead" in answer and "resolved" not in answer:
                if incident.bead_state in ("none", "failed"):
                    self._log(now, user, key, "asked for the bead", self.command(user, incident.channel, f"bead {key}"))
                self._schedule(now + timedelta(minutes=30), incident.id or 0, "resolve", user, rng)
            else:
                plan.done = True

    def _classify(
        self, now: datetime, plan: Plan, incident: Incident, truth: str, book: Runbook, minds: random.Random
    ) -> None:
        """The first classification: the card's confident suggestion confirmed with one click, or the
        menu by hand (sometimes the wrong class first, among the playbook's own classes). A wrong one
        is put right minutes later."""
        key, user = incident.key, plan.user
        suggested, confidence = self.suggestion_shown(incident)
        if plan.trusts_suggestion and suggested is not None and confidence is not None and confidence >= CONFIDENT:
            answer = self.click(user, incident, card_ids.ACTION_CONFIRM)
            self._log(now, user, key, f"classified it {suggested} {CONFIRMED}", answer, suggested)
            chosen = suggested
        else:
            chosen = truth
            others = sorted(c for c in book.classes if c != truth)
            if others and minds.random() < WRONG_FIRST:
                chosen = minds.choice(others)
            answer = self.click(user, incident, card_ids.ACTION_CLASSIFY, option=chosen)
            self._log(now, user, key, f"classified it {chosen} (card menu)", answer, suggested)
        if chosen != truth:
            rng = self._streams_of(plan.playbook)[0] if plan.playbook else None
            self._schedule(now + timedelta(minutes=minds.uniform(3, 8)), incident.id or 0, "reclassify", user, rng)

    def suggestion_shown(self, incident: Incident) -> tuple[str | None, float | None]:
        """The class and confidence the card in Slack offers to confirm (what the person reads)."""
        with self.emulator.workspace.lock:
            channel = self.emulator.workspace.channels.get(incident.channel)
            message = channel.find(str(incident.card_ts)) if channel is not None else None
            blocks = list(message.blocks or []) if message is not None else []
        for block in blocks:
            block_id = str(block.get("block_id") or "")
            if block_id.startswith(card_ids.SUGGESTION_BLOCK):
                found = _CONFIDENCE.search(json.dumps(blocks))
                return block_id.removeprefix(card_ids.SUGGESTION_BLOCK), int(found[1]) / 100 if found else None
        return None, None

    def _log(self, now: datetime, user: str, key: str, what: str, answer: str, shown: str | None = None) -> None:
        self.done.append(Done(now, user, key, what, answer, shown))

    # -- through Slack ----------------------------------------------------------------------------

    def command(self, user: str, channel: str, text: str) -> str:
        """``/triage …`` as the user; returns what the bot answered (it always answers)."""
        mark = self._calls()
        response = self.emulator.slash_command(user, channel, text)
        if response.status != 200:
            raise SimulationError(f"/triage {text} by {user}: HTTP {response.status} {response.body[:200]!r}")
        return self._wait(lambda: self._answer_since(mark), f"an answer to /triage {text}")

    def click(self, user: str, incident: Incident, action_id: str, *, option: str | None = None) -> str:
        """A click on the card (button, or a select's option); waits until the bot has acted."""
        assert incident.card_ts is not None
        try:
            return self.press(user, incident.channel, incident.card_ts, action_id, option=option)
        except LookupError:  # the card no longer offers it (changed meanwhile): use the command
            verb = "ack" if option is None else "classify"
            return self.command(user, incident.channel, f"{verb} {incident.key} {option or ''}".strip())

    def press(self, user: str, channel: str, ts: str, action_id: str, *, option: str | None = None) -> str:
        """A click on a message's button or select (the card, a checklist); waits until the bot has
        acted. Raises LookupError when the message offers no such element."""
        mark, rows = self._calls(), self._timeline_rows(user)
        if option is None:
            response = self.emulator.click_button(user, channel, ts, action_id)
        else:
            response = self.emulator.select_option(user, channel, ts, action_id, option)
        if response.status != 200:
            raise SimulationError(f"click {action_id} by {user}: HTTP {response.status}")

        def handled() -> str | None:
            if self._timeline_rows(user) > rows:
                return "done"
            return self._answer_since(mark)

        return self._wait(handled, f"the bot to handle {action_id}")

    def _calls(self) -> int:
        with self.emulator.workspace.lock:
            return len(self.emulator.workspace.calls)

    def _answer_since(self, mark: int) -> str | None:
        with self.emulator.workspace.lock:
            for call in self.emulator.workspace.calls[mark:]:
                if call.method == "response_url":
                    return str(call.body.get("text", ""))
        return None

    def _timeline_rows(self, user: str) -> int:
        with Session(self.engine()) as session:
            return int(session.exec(select(func.count(col(TimelineEvent.id))).where(TimelineEvent.actor == user)).one())

    @staticmethod
    def _wait(condition: Callable[[], str | None], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise SimulationError(f"timed out waiting for {what}")
            time.sleep(0.002)
