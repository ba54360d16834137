"""``routing.yml``: the playbook's classes (who owns each cause), its channels, and which failures
it takes (``match``)."""

from __future__ import annotations

import fnmatch
import functools
import re
from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator

from slackbot.config.base import (
    Key,
    SeverityName,
    SlackChannelId,
    SlackGroupId,
    SlackUserId,
    Strict,
    spellings,
    unique_spellings,
)
from slackbot.config.durations import Duration
from slackbot.config.targets import Owner, Target

Source = Literal["report", "junit", "github", "alertmanager", "slack"]
# Evidence the bot gathers itself that a class may claim (slackbot/suggest): a test that failed and
# passed on one sha (flake), failing since one change (regression), one infrastructure error across
# many tests (infra), a run across prefixes or without the contract's ids (harness), migrations or
# seeds changed since the last green run (drift).
Signal = Literal["flake", "regression", "infra", "harness", "drift"]


def _valid_patterns(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
    return patterns


class Raci(Strict):
    responsible: str
    accountable: str
    consulted: list[str] = Field(default_factory=list)
    informed: list[str] = Field(default_factory=list)


class ClassRoute(Strict):
    """One cause a failure is classified into, and everything that follows from it."""

    label: str = Field(min_length=2, max_length=60, description="shown on buttons and cards")
    aliases: list[str] = Field(default_factory=list, description="other names people type for it")
    description: str
    examples: list[str] = Field(default_factory=list)
    owner: Owner = Field(description="mentioned and paged first (the primary owner)")
    secondary_owner: Target | None = Field(default=None, description="consulted; paged after the owner")
    required_action: str | None = Field(default=None, description="what the owner must do (routing matrix)")
    fallback: Target | None = Field(default=None, description="paged when paging the owner finally fails")
    escalation: Target | None = Field(default=None, description="paged when the timed rule fires")
    scope: list[str] = Field(default_factory=list, description="file globs this class owns (CODEOWNERS style)")
    raci: Raci | None = None
    first_response: list[str] = Field(default_factory=list, description="the class's first-response checklist")
    default_severity: SeverityName | None = Field(default=None, description="severity when classified into it")
    repro: str | None = Field(default=None, description="repro command for this class (overrides the playbook's)")
    tracker: Literal["beads", "github"] = "beads"
    github_repository: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    # Behaviour, as data rather than special-cased keys:
    takes_missing_ids: bool = Field(
        default=False, description="failures without the ids the contract requires are preset to this class"
    )
    files_bead: bool = Field(default=False, description="classifying into this class files the defect at once")
    bead_before_resolve: bool = Field(default=False, description="resolving needs a filed defect")
    reopens_within: Duration | None = Field(
        default=None, description="a resolved incident failing again within this reopens and escalates"
    )
    run_escalation: bool = Field(
        default=False, description="target of the run-level escalation when a run spans several prefixes"
    )
    # What makes the bot suggest this class (slackbot/suggest), each team in its own words:
    patterns: list[str] = Field(
        default_factory=list, description="regular expressions over the failure's message and log (case-insensitive)"
    )
    signals: list[Signal] = Field(default_factory=list, description="evidence kinds that suggest this class")

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return _valid_patterns(patterns)

    @model_validator(mode="after")
    def _github_needs_repo(self) -> ClassRoute:
        if self.tracker == "github" and not self.github_repository:
            raise ValueError("tracker 'github' needs github_repository (owner/name)")
        return self


class SuiteRoute(Strict):
    channel: SlackChannelId
    description: str = ""


class MatchRule(Strict):
    """Failures this playbook takes. Every field given must match (``fnmatch`` globs); a rule with
    no field matches nothing."""

    repository: str | None = None
    suite: str | None = None
    workflow: str | None = None
    branch: str | None = None
    test: str | None = Field(default=None, description="glob over the test file, JUnit classname or test name")
    command: str | None = Field(default=None, description="glob over the failing command")
    alertname: str | None = None
    source: Source | None = None
    slack_channel: SlackChannelId | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> MatchRule:
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("a match rule needs at least one field")
        return self


class AlertSource(Strict):
    """A bot or app whose messages in a routed channel may open incidents (CI notifiers)."""

    name: str
    bot_id: str | None = None
    user: SlackUserId | None = None


class Routing(Strict):
    version: int = Field(ge=1)
    updated: date
    classes: dict[Key, ClassRoute] = Field(min_length=1)
    suites: dict[str, SuiteRoute] = Field(default_factory=dict, description="channel by suite")
    default_channel: SlackChannelId | None = Field(default=None, description="cards of any other suite")
    release_maintainer: Target | None = Field(default=None, description="paged on SEV-1 or a rollback (seed 003)")
    unrouted: Target | None = Field(default=None, description="owns an incident nobody has classified yet")
    match: list[MatchRule] = Field(default_factory=list, description="failures this playbook takes")
    # Workspace settings. In a directory with workspace.yml they belong there; a single-playbook
    # directory (the layout before playbooks) keeps them here.
    ops_channel: SlackChannelId | None = None
    responders: list[SlackGroupId] | None = None
    triage_reaction: str | None = None
    alert_sources: list[AlertSource] | None = None

    @field_validator("classes")
    @classmethod
    def _classes(cls, classes: dict[str, ClassRoute]) -> dict[str, ClassRoute]:
        unique_spellings({k: spellings(k, r.label, r.aliases) for k, r in classes.items()}, "class")
        for flag in ("takes_missing_ids", "run_escalation"):
            holders = [key for key, route in classes.items() if getattr(route, flag)]
            if len(holders) > 1:
                raise ValueError(f"only one class may set {flag}; {', '.join(holders)} do")
        return classes

    @model_validator(mode="after")
    def _catch_all(self) -> Routing:
        if self.release_maintainer is None and self.unrouted is None:
            raise ValueError("set release_maintainer or unrouted: someone must own an unclassified incident")
        return self

    def owner_for_path(self, path: str | None) -> tuple[str, str] | None:
        """CODEOWNERS semantics: the last matching pattern (in file order) wins."""
        if not path:
            return None
        found: tuple[str, str] | None = None
        for key, route in self.classes.items():
            for pattern in route.scope:
                if glob_match(pattern, path):
                    found = (key, pattern)
        return found


def glob_match(pattern: str, path: str) -> bool:
    """CODEOWNERS-style globs: ``**`` spans directories, ``*`` and ``?`` stay within one, a
    trailing ``/**`` matches everything below, and a pattern without a slash matches at any depth."""
    pattern = pattern.strip()
    path = path.removeprefix("./").lstrip("/")
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    return _compiled(pattern.lstrip("/")).fullmatch(path) is not None


def text_match(pattern: str, value: str | None) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def text_matcher(*patterns: str) -> re.Pattern[str]:
    """``text_match`` for any of the patterns, compiled once to try against many values."""
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_glob_regex(pattern))


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    if pattern.endswith("/"):
        out.append(".*")
    return "".join(out)
