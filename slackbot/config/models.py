"""The runbook as data: pydantic models for ``runbooks/taxonomy.yml``, ``routing.yml`` and ``policy.yml``.

These models are the single definition of what the runbook may say. The bot reads them at start
(and refuses to start when they are invalid), ``triagebot check`` validates them, and
``triagebot runbook render`` publishes them, so the bot and the published runbook cannot drift.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    """``20m``, ``90s``, ``3s``, ``1h``, ``7d`` (one unit; what an on-call lead types in YAML)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"durations need a unit, e.g. '{value}s' or '{value}m'")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '20m', '90s' or '1h'")
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration; use a number and one unit: ms, s, m, h or d (e.g. '20m')")
    amount, unit = match.groups()
    seconds = int(amount) * _UNITS[unit]
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,20}$", description="Slack user id, e.g. U04ONCALL")]
SlackGroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,20}$", description="Slack user group id, e.g. S04HARNESS")]
SlackChannelId = Annotated[str, Field(pattern=r"^[CG][A-Z0-9]{2,20}$", description="Slack channel id, e.g. C04TRIAGE")]
Prefix = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,15}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FailureClass(StrEnum):
    """The five causes a failure is classified into (seed 001, First-Response Checklist step 3)."""

    INFRA_CI = "infra_ci"
    HARNESS_DIAGNOSTICS = "harness_diagnostics"
    ALGORITHM_REGRESSION = "algorithm_regression"
    DATA_SCHEMA_DRIFT = "data_schema_drift"
    FLAKE_CONCURRENCY = "flake_concurrency"


class Severity(StrEnum):
    SEV1 = "SEV-1"
    SEV2 = "SEV-2"
    SEV3 = "SEV-3"


# ---------------------------------------------------------------------------------------------
# taxonomy.yml


class TaxonomyEntry(Strict):
    prefix: Prefix
    meaning: str = Field(min_length=3)
    failure_surface: str = Field(min_length=3, description="where failures of this kind typically show")
    evidence: list[str] = Field(min_length=1, description="evidence a responder must capture")
    likely_class: FailureClass | None = Field(default=None, description="a hint for the suggested owner")


class Taxonomy(Strict):
    version: int = Field(ge=1)
    updated: date
    id_format: str = Field(default="<PREFIX>-<NNN>", description="how scenario and invariant ids look")
    scenarios: list[TaxonomyEntry] = Field(min_length=1)
    invariants: list[TaxonomyEntry] = Field(min_length=1)

    @field_validator("scenarios", "invariants")
    @classmethod
    def _unique_prefixes(cls, entries: list[TaxonomyEntry]) -> list[TaxonomyEntry]:
        # The error is located at the repeated entry's prefix (e.g. scenarios[3].prefix), so
        # `triagebot check` names the line to edit, not the top of the file.
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if entry.prefix in seen:
                error = PydanticCustomError(
                    "duplicate_prefix",
                    "prefix {prefix} is listed twice (first at [{first}])",
                    {"prefix": entry.prefix, "first": seen[entry.prefix]},
                )
                raise ValidationError.from_exception_data(
                    "Taxonomy", [InitErrorDetails(type=error, loc=(index, "prefix"), input=entry.prefix)]
                )
            seen[entry.prefix] = index
        return entries

    def scenario(self, prefix: str | None) -> TaxonomyEntry | None:
        return next((s for s in self.scenarios if s.prefix == prefix), None)

    def invariant(self, prefix: str | None) -> TaxonomyEntry | None:
        return next((i for i in self.invariants if i.prefix == prefix), None)


# ---------------------------------------------------------------------------------------------
# routing.yml


class Target(Strict):
    """Who to mention, DM or page. At least one of the three must be set."""

    usergroup: SlackGroupId | None = None
    user: SlackUserId | None = None
    channel: SlackChannelId | None = None
    handle: str | None = Field(default=None, description="human name for docs, e.g. @ci-maintainers")
    pagerduty_routing_key: str | None = Field(default=None, min_length=8, max_length=64)

    @model_validator(mode="after")
    def _someone(self) -> Target:
        if not (self.usergroup or self.user or self.channel):
            raise ValueError("a target needs at least one of usergroup, user or channel")
        return self

    def mention(self) -> str:
        """Slack mention markup built only from ids we configured, never from untrusted text."""
        if self.usergroup:
            return f"<!subteam^{self.usergroup}>"
        if self.user:
            return f"<@{self.user}>"
        return f"<#{self.channel}>"

    def describe(self) -> str:
        return self.handle or self.usergroup or self.user or self.channel or "?"


class Owner(Target):
    oncall_user: SlackUserId | None = Field(default=None, description="the person DMed when paged")


class Raci(Strict):
    responsible: str
    accountable: str
    consulted: list[str] = Field(default_factory=list)
    informed: list[str] = Field(default_factory=list)


class ClassRoute(Strict):
    label: str = Field(min_length=2, max_length=60, description="shown on buttons and cards")
    description: str
    examples: list[str] = Field(default_factory=list)
    owner: Owner
    fallback: Target = Field(description="who gets the page when paging the owner finally fails")
    escalation: Target = Field(description="who is paged when the 20-minute rule fires")
    scope: list[str] = Field(default_factory=list, description="file globs this class owns (CODEOWNERS style)")
    raci: Raci
    first_response: list[str] = Field(min_length=1, description="the class's first-response checklist")
    tracker: Literal["beads", "github"] = "beads"
    github_repository: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")

    @model_validator(mode="after")
    def _github_needs_repo(self) -> ClassRoute:
        if self.tracker == "github" and not self.github_repository:
            raise ValueError("tracker 'github' needs github_repository (owner/name)")
        return self


class SuiteRoute(Strict):
    channel: SlackChannelId
    description: str = ""


class AlertSource(Strict):
    """A bot or app whose messages in a routed channel may open incidents (CI notifiers)."""

    name: str
    bot_id: str | None = None
    user: SlackUserId | None = None


class Routing(Strict):
    version: int = Field(ge=1)
    updated: date
    classes: dict[FailureClass, ClassRoute]
    suites: dict[str, SuiteRoute] = Field(description="channel by suite: smoke, full, nightly")
    default_channel: SlackChannelId
    ops_channel: SlackChannelId = Field(description="dead-lettered deliveries and bot health notices")
    release_maintainer: Target = Field(description="paged at once on SEV-1 (seed 003)")
    responders: list[SlackGroupId] = Field(
        default_factory=list, description="user groups allowed to act on cards; empty means everyone"
    )
    triage_reaction: str = Field(default="rotating_light", description="emoji that opens a card from a message")
    alert_sources: list[AlertSource] = Field(default_factory=list)

    # Field validators (not one model validator) so the error points at the `classes:` or
    # `suites:` line rather than at the top of the file.
    @field_validator("classes")
    @classmethod
    def _all_classes(cls, classes: dict[FailureClass, ClassRoute]) -> dict[FailureClass, ClassRoute]:
        missing = [c.value for c in FailureClass if c not in classes]
        if missing:
            raise ValueError(f"missing routing for {', '.join(missing)}")
        return classes

    @field_validator("suites")
    @classmethod
    def _all_suites(cls, suites: dict[str, SuiteRoute]) -> dict[str, SuiteRoute]:
        for suite in ("smoke", "full", "nightly"):
            if suite not in suites:
                raise ValueError(f"missing channel for suite '{suite}'")
        return suites

    def route(self, failure_class: FailureClass) -> ClassRoute:
        return self.classes[failure_class]

    def channel_for_suite(self, suite: str) -> str:
        route = self.suites.get(suite)
        return route.channel if route else self.default_channel

    def owner_for_path(self, path: str | None) -> tuple[FailureClass, str] | None:
        """CODEOWNERS semantics: the last matching pattern (in file order) wins."""
        if not path:
            return None
        found: tuple[FailureClass, str] | None = None
        for failure_class, route in self.classes.items():
            for pattern in route.scope:
                if glob_match(pattern, path):
                    found = (failure_class, pattern)
        return found


def glob_match(pattern: str, path: str) -> bool:
    """CODEOWNERS-style globs: ``**`` spans directories, ``*`` and ``?`` stay within one, a
    trailing ``/**`` matches everything below, and a pattern without a slash matches at any depth."""
    pattern = pattern.strip()
    path = path.removeprefix("./").lstrip("/")
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    return _compiled(pattern.lstrip("/")).fullmatch(path) is not None


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


# ---------------------------------------------------------------------------------------------
# policy.yml


class EscalationLevel(Strict):
    """One rung of the 20-minute rule. ``notify`` names who is mentioned and paged at this level."""

    notify: list[Literal["owner", "escalation", "fallback", "release_maintainer"]] = Field(min_length=1)
    note: str = ""


class EscalationPolicy(Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat_every: Duration = Field(description="time between levels, and between repeats of the last level")
    max_repeats: int = Field(default=3, ge=0, le=20, description="repeats of the last level before it stops")


class SeverityRule(Strict):
    definition: str
    pages: list[Literal["owner", "escalation", "release_maintainer"]] = Field(default_factory=list)
    pagerduty_severity: Literal["critical", "error", "warning", "info"]
    bead_priority: int = Field(ge=0, le=4)
    file_bead: bool = False


class FlakePolicy(Strict):
    rerun_until_green: Literal[False] = Field(
        default=False, description="never offered: flakes are fixed deterministically"
    )
    file_bead: bool = True
    recurrence_window: Duration = Field(description="a resolved flake recurring within this reopens and escalates")
    statement: str


class Commands(Strict):
    """Exact command templates. Placeholders: {runId} {date} {scenarioId} {invariantId} {testFile}
    {repository}."""

    artifact_download: str = Field(pattern=r"\{runId\}")
    artifact_list: str
    single_scenario: str = Field(pattern=r"\{scenarioId\}")
    smoke: list[str] = Field(min_length=1)
    full: list[str] = Field(min_length=1)


class EnvVar(Strict):
    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    value: str
    secret: bool = False
    meaning: str


class RunbookStep(Strict):
    phase: Literal["detect", "diagnose", "recover", "verify", "document"]
    text: str


class AlertRunbook(Strict):
    """An operational alert (seed 004) with its detect/diagnose/recover/verify runbook."""

    alertname: str
    detection: str
    steps: list[RunbookStep] = Field(min_length=1)
    severity: Severity = Severity.SEV2
    failure_class: FailureClass = FailureClass.INFRA_CI


class Policy(Strict):
    version: int = Field(ge=1)
    updated: date
    classify_within: Duration = Field(description="the 20-minute rule")
    escalation: EscalationPolicy
    severities: dict[Severity, SeverityRule]
    default_severity: Severity = Severity.SEV3
    flake: FlakePolicy
    status_update_every: Duration = Field(description="a quiet open incident thread gets a reminder after this")
    multi_prefix_threshold: int = Field(default=2, ge=2, description="prefixes in one run that escalate at once")
    commands: Commands
    environment: list[EnvVar] = Field(min_length=1)
    response_steps: list[RunbookStep] = Field(
        min_length=1, description="detect → diagnose → recover → verify → document, for every class"
    )
    alerts: list[AlertRunbook] = Field(default_factory=list)

    @field_validator("severities")
    @classmethod
    def _all_severities(cls, severities: dict[Severity, SeverityRule]) -> dict[Severity, SeverityRule]:
        missing = [s.value for s in Severity if s not in severities]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return severities


class Runbook(Strict):
    """Everything in ``runbooks/``, loaded and cross-checked."""

    taxonomy: Taxonomy
    routing: Routing
    policy: Policy
