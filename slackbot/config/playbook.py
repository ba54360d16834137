"""A playbook (one team's runbook as data) and the set of them one bot serves.

Everything the bot does that depends on a team's words goes through here: which classes,
severities, milestones and flags exist and how people may spell them, who a role means for a
class, which channel a suite's cards go to, and which playbook a failure belongs to.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from slackbot.config.base import ChoiceError, normalise, spellings
from slackbot.config.policy import AlertRunbook, FlagRule, Milestone, Policy, SeverityRule
from slackbot.config.routing import ClassRoute, MatchRule, Routing, Source, text_match, text_matcher
from slackbot.config.targets import Role, Target
from slackbot.config.taxonomy import Taxonomy, TaxonomyEntry
from slackbot.config.workspace import Workspace


@dataclass(frozen=True)
class PageTarget:
    role: Role  # the role whose target was used (after falling back along the chain)
    failure_class: str | None  # the class whose routing entry it came from (None: playbook-wide)
    target: Target

    @property
    def dm_user(self) -> str | None:
        return self.target.dm_user


_Link = tuple[Role, Target | None, str | None]  # (role used, its target, the class it belongs to)


@dataclass(frozen=True)
class FailureContext:
    """What routing looks at to pick a playbook for a failure."""

    source: Source
    repository: str | None = None
    suite: str | None = None
    workflow: str | None = None
    branch: str | None = None
    test_file: str | None = None
    test_name: str | None = None
    command: str | None = None
    alertname: str | None = None
    slack_channel: str | None = None


def _choose(text: str, names: dict[str, set[str]], what: str, shown: Sequence[str]) -> str:
    wanted = normalise(text)
    for key, spelled in names.items():
        if wanted in spelled:
            return key
    raise ChoiceError(f"unknown {what} '{text.strip()}'; use one of: {', '.join(shown)}")


@dataclass(frozen=True, eq=False)
class Playbook:
    name: str
    directory: Path
    taxonomy: Taxonomy
    routing: Routing
    policy: Policy
    workspace: Workspace
    template_dirs: tuple[Path, ...]

    # -- who it is ----------------------------------------------------------------------------

    @property
    def title(self) -> str:
        return self.policy.title or self.name

    # -- classes --------------------------------------------------------------------------------

    @property
    def classes(self) -> dict[str, ClassRoute]:
        return self.routing.classes

    def class_route(self, key: str | None) -> ClassRoute | None:
        return self.routing.classes.get(key) if key else None

    def class_label(self, key: str | None) -> str:
        if not key:
            return "unclassified"
        route = self.routing.classes.get(key)
        return route.label if route else key

    def parse_class(self, text: str) -> str:
        names = {k: spellings(k, r.label, r.aliases) for k, r in self.classes.items()}
        shown = [f"{r.label} ({k})" for k, r in self.classes.items()]
        return _choose(text, names, "class", shown)

    def class_with(self, flag: str) -> str | None:
        return next((k for k, r in self.classes.items() if getattr(r, flag)), None)

    @functools.cached_property
    def missing_ids_class(self) -> str | None:
        """Where a failure without the contract's ids goes (seed 001: harness/diagnostics)."""
        return self.class_with("takes_missing_ids")

    @functools.cached_property
    def run_escalation_class(self) -> str | None:
        return self.class_with("run_escalation")

    @functools.cached_property
    def class_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        """(class, pattern) for every message/log pattern the classes declare, compiled once."""
        return [(k, re.compile(p, re.IGNORECASE)) for k, r in self.classes.items() for p in r.patterns]

    def classes_for(self, signal: str) -> list[str]:
        """The classes that claim a kind of evidence (``ClassRoute.signals``)."""
        return [k for k, r in self.classes.items() if signal in r.signals]

    def contract_violation(self, scenario_id: str | None, invariant_id: str | None) -> bool:
        contract = self.policy.id_contract
        if contract == "none":
            return False
        if contract == "scenario":
            return not scenario_id
        return not (scenario_id and invariant_id)

    def missing_ids(self, scenario_id: str | None, invariant_id: str | None) -> list[str]:
        wanted = {"both": ("scenarioId", "invariantId"), "scenario": ("scenarioId",), "none": ()}
        values = {"scenarioId": scenario_id, "invariantId": invariant_id}
        return [name for name in wanted[self.policy.id_contract] if not values[name]]

    # -- severities, milestones, flags ----------------------------------------------------------

    @property
    def severities(self) -> dict[str, SeverityRule]:
        return self.policy.severities

    def severity_rule(self, name: str | None) -> SeverityRule:
        return self.policy.severities.get(name or "") or self.policy.severities[self.policy.default_severity]

    def severity_label(self, name: str | None) -> str:
        rule = self.policy.severities.get(name or "")
        return (rule.label or name or "") if rule else (name or self.policy.default_severity)

    def parse_severity(self, text: str) -> str:
        names = {k: spellings(k, r.label, r.aliases) for k, r in self.severities.items()}
        return _choose(text, names, "severity", list(self.severities))

    def severity_rank(self, name: str | None) -> int:
        """0 is the most severe; unknown names rank last."""
        order = list(self.severities)
        return order.index(name) if name in order else len(order)

    @property
    def milestones(self) -> list[Milestone]:
        return self.policy.milestones

    def milestone(self, key: str | None) -> Milestone | None:
        return self.policy.milestone(key)

    def milestone_label(self, key: str | None) -> str:
        milestone = self.policy.milestone(key)
        return milestone.label if milestone else "Open"

    def parse_milestone(self, text: str) -> Milestone:
        names = {m.key: spellings(m.key, m.label, m.aliases) for m in self.milestones}
        key = _choose(text, names, "milestone", [m.key for m in self.milestones])
        milestone = self.policy.milestone(key)
        assert milestone is not None
        return milestone

    def milestones_after(self, key: str | None) -> list[Milestone]:
        keys = [m.key for m in self.milestones]
        start = keys.index(key) + 1 if key in keys else 0
        return self.milestones[start:]

    @property
    def flags(self) -> dict[str, FlagRule]:
        return self.policy.flags

    def parse_flag(self, text: str) -> str:
        if not self.flags:
            raise ChoiceError(f"the {self.name} playbook declares no flags")
        names = {k: spellings(k, r.label, r.aliases) for k, r in self.flags.items()}
        return _choose(text, names, "flag", [f"{r.label} ({k})" for k, r in self.flags.items()])

    # -- people ---------------------------------------------------------------------------------

    def target(self, role: Role, failure_class: str | None) -> PageTarget | None:
        """Who ``role`` means for a class, falling back along a fixed chain when the playbook does
        not name one (seed 002 has no timed escalation target, for instance). Unclassified
        incidents belong to ``unrouted`` first, then to the release maintainer."""
        route = self.class_route(failure_class)
        maintainer: _Link = ("release_maintainer", self.routing.release_maintainer, None)
        unrouted: _Link = ("owner", self.routing.unrouted, None)
        chain: list[_Link]
        if route is None:
            chain = [unrouted, maintainer] if role == "owner" else [maintainer, unrouted]
        else:
            mine: dict[Role, _Link] = {
                "owner": ("owner", route.owner, failure_class),
                "secondary_owner": ("secondary_owner", route.secondary_owner, failure_class),
                "escalation": ("escalation", route.escalation, failure_class),
                "fallback": ("fallback", route.fallback, failure_class),
            }
            order: dict[Role, list[Role]] = {
                "owner": ["owner"],
                "secondary_owner": ["secondary_owner"],
                "escalation": ["escalation"],
                "fallback": ["fallback", "secondary_owner", "escalation"],
                "release_maintainer": [],
            }
            chain = [mine[name] for name in order[role]]
            if role not in ("owner", "secondary_owner"):  # a class's own people have no stand-in
                chain += [maintainer, unrouted]
        for used, target, from_class in chain:
            if target is not None:
                return PageTarget(used, from_class, target)
        return None

    def targets(self, roles: Sequence[Role], failure_class: str | None) -> list[PageTarget]:
        seen: set[str] = set()
        out: list[PageTarget] = []
        for role in roles:
            found = self.target(role, failure_class)
            if found is not None and found.target.mention() not in seen:
                seen.add(found.target.mention())
                out.append(found)
        return out

    def owner_target(self, failure_class: str | None) -> Target:
        found = self.target("owner", failure_class)
        assert found is not None  # routing requires release_maintainer or unrouted
        return found.target

    # -- channels and ids -----------------------------------------------------------------------

    @property
    def default_channel(self) -> str:
        return self.routing.default_channel or self.workspace.default_channel

    def channel_for_suite(self, suite: str | None) -> str:
        route = self.routing.suites.get(suite or "")
        return route.channel if route else self.default_channel

    @property
    def channels(self) -> set[str]:
        return {self.default_channel, *(s.channel for s in self.routing.suites.values())}

    def owner_for_path(self, path: str | None) -> tuple[str, str] | None:
        """The class whose scope holds the test file, and the pattern (``Routing.owner_for_path``).
        A report names the same few test files thousands of times, so each path is matched once."""
        owners = self._owners
        if path not in owners:
            if len(owners) >= _REMEMBERED_PATHS:
                owners.clear()
            owners[path] = self.routing.owner_for_path(path)
        return owners[path]

    @functools.cached_property
    def _owners(self) -> dict[str | None, tuple[str, str] | None]:
        return {}

    def scenario_entry(self, identifier: str | None) -> TaxonomyEntry | None:
        return self._scenarios.get(prefix_of(identifier) or "")

    def invariant_entry(self, identifier: str | None) -> TaxonomyEntry | None:
        return self._invariants.get(prefix_of(identifier) or "")

    @functools.cached_property
    def _scenarios(self) -> dict[str, TaxonomyEntry]:
        return {e.prefix: e for e in self.taxonomy.scenarios}

    @functools.cached_property
    def _invariants(self) -> dict[str, TaxonomyEntry]:
        return {e.prefix: e for e in self.taxonomy.invariants}

    def alert(self, alertname: str | None) -> AlertRunbook | None:
        return next((a for a in self.policy.alerts if a.alertname == alertname), None)

    def repro_command(self, failure_class: str | None, scenario_id: str | None, invariant_id: str | None) -> str | None:
        """The most specific repro the playbook knows: the prefix's, the class's, its own."""
        for entry in (self.scenario_entry(scenario_id), self.invariant_entry(invariant_id)):
            if entry is not None and entry.repro:
                return entry.repro
        route = self.class_route(failure_class)
        if route is not None and route.repro:
            return route.repro
        return self.policy.commands.repro

    # -- routing --------------------------------------------------------------------------------

    def triggered_by(self, ctx: FailureContext) -> bool:
        for trigger in self.policy.triggers:
            if trigger.command and ctx.command and ctx.command.strip() == trigger.command.strip():
                return True
            if trigger.workflow and text_match(trigger.workflow, ctx.workflow):
                return True
        return False


_RUN_FIELDS = ("repository", "suite", "workflow", "branch", "alertname", "source", "slack_channel")


def _fits_run(rule: MatchRule, ctx: FailureContext) -> bool:
    """Every run-level field the rule sets matches (globs)."""
    for name in _RUN_FIELDS:
        pattern = getattr(rule, name)
        if pattern is not None and not text_match(pattern, getattr(ctx, name)):
            return False
    return True


_REMEMBERED_PATHS = 4096


class _FailureMatch:
    """A playbook's match rules that fit a run, by what each failure must still match: one regex
    for the rules with only a test glob, one for those with only a command glob, and the rules
    with both. A report's thousands of failures each cost a regex match or two."""

    __slots__ = ("both", "commands", "tests")

    def __init__(self, rules: list[MatchRule]) -> None:
        self.tests = _union([r.test for r in rules if r.test is not None and r.command is None])
        self.commands = _union([r.command for r in rules if r.command is not None and r.test is None])
        self.both = [
            (text_matcher(r.test), text_matcher(r.command))
            for r in rules
            if r.test is not None and r.command is not None
        ]

    def fits(self, test_file: str | None, test_name: str | None, command: str | None) -> bool:
        if command is not None and self.commands is not None and self.commands.match(command):
            return True
        for test, wanted in [(self.tests, None), *self.both]:
            if test is None or (wanted is not None and (command is None or not wanted.match(command))):
                continue
            if (test_file is not None and test.match(test_file)) or (test_name is not None and test.match(test_name)):
                return True
        return False


def _union(patterns: list[str]) -> re.Pattern[str] | None:
    return text_matcher(*patterns) if patterns else None


def prefix_of(identifier: str | None) -> str | None:
    if not identifier or "-" not in identifier:
        return None
    return identifier.split("-", 1)[0]


@dataclass(frozen=True, eq=False)
class Playbooks:
    """Every playbook one bot serves, and the rules that pick one for a failure."""

    workspace: Workspace
    directory: Path
    items: dict[str, Playbook]

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    @property
    def default(self) -> Playbook:
        return self.items[self.workspace.default]

    def named(self, name: str | None) -> Playbook | None:
        return self.items.get(name or "")

    def get(self, name: str | None) -> Playbook:
        """The playbook an incident was opened under; the default when it no longer exists."""
        return self.items.get(name or "") or self.default

    def select(self, ctx: FailureContext) -> Playbook:
        """Explicit match rules first (in workspace order), then the playbook that owns the suite,
        the one whose trigger failed, the one with a runbook for the alert, then the default."""
        return self.router(ctx).pick(ctx.test_file, ctx.test_name, ctx.command)

    def router(self, run: FailureContext) -> Router:
        """``select`` for many failures of one run: what the run says is weighed once."""
        return Router(self, run)

    @property
    def routed_channels(self) -> set[str]:
        return {self.workspace.default_channel}.union(*(p.channels for p in self))

    def suite_of_channel(self, channel: str) -> tuple[Playbook, str]:
        """The playbook and suite whose cards go to ``channel`` (a Slack alert posted there)."""
        for playbook in self:
            for name, route in playbook.routing.suites.items():
                if route.channel == channel:
                    return playbook, name
        for playbook in self:
            if playbook.routing.default_channel == channel:
                return playbook, next(iter(playbook.routing.suites), "full")
        return self.default, "full"

    @property
    def taxonomy_prefixes(self) -> set[str]:
        return {e.prefix for p in self for e in p.taxonomy.entries()}


class Router:
    """Which playbook each failure of one run belongs to. The run's own fields (source, repository,
    suite, workflow, branch, alertname, Slack channel) are the same for all its failures, so the
    rules they rule out are dropped once; each failure is then weighed only on its test and command
    (an ingest of ten thousand failures asks this ten thousand times)."""

    def __init__(self, playbooks: Playbooks, run: FailureContext) -> None:
        self.playbooks = playbooks
        self.run = run
        # Per playbook in order, until one takes the whole run: its rules that fit this run.
        self.rules: list[tuple[Playbook, _FailureMatch]] = []
        self.taken_by: Playbook | None = None
        for playbook in playbooks:
            rules = [r for r in playbook.routing.match if _fits_run(r, run)]
            if any(r.test is None and r.command is None for r in rules):
                self.taken_by = playbook
                break
            if rules:
                self.rules.append((playbook, _FailureMatch(rules)))
        self.by_suite = next((p for p in playbooks if run.suite and run.suite in p.routing.suites), None)
        self.by_alert = next((p for p in playbooks if run.alertname and p.alert(run.alertname)), None)

    def pick(self, test_file: str | None, test_name: str | None, command: str | None) -> Playbook:
        for playbook, rules in self.rules:
            if rules.fits(test_file, test_name, command):
                return playbook
        if self.taken_by is not None:
            return self.taken_by
        if self.by_suite is not None:
            return self.by_suite
        failure = FailureContext(**{**self.run.__dict__, "command": command})
        for playbook in self.playbooks:
            if playbook.triggered_by(failure):
                return playbook
        return self.by_alert or self.playbooks.default
