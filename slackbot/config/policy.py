"""``policy.yml``: how the playbook responds: severities, milestones, flags, the timed escalation
rule, the id contract, commands, checklists, triggers, alert runbooks and task runbooks."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from slackbot.config.base import Key, SeverityName, Strict, normalise, spellings, unique_spellings
from slackbot.config.durations import Duration
from slackbot.config.targets import Role

# What a command template may say; anything else in braces is a typo the bot would print as is.
PLACEHOLDERS = (
    "runId",
    "date",
    "scenarioId",
    "invariantId",
    "testFile",
    "testName",
    "testCase",
    "repository",
    "branch",
    "sha",
    "suite",
    "command",
)
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z]+)\}")


def check_placeholders(template: str) -> str:
    unknown = sorted({m for m in _PLACEHOLDER.findall(template) if m not in PLACEHOLDERS})
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        raise ValueError(f"unknown placeholder {names}; use {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return template


class EscalationLevel(Strict):
    """One rung of the timed rule. ``notify`` names who is mentioned and paged at this level."""

    notify: list[Role] = Field(min_length=1)
    note: str = ""


class EscalationPolicy(Strict):
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat_every: Duration = Field(description="time between levels, and between repeats of the last level")
    max_repeats: int = Field(default=3, ge=0, le=20, description="repeats of the last level before it stops")


class SeverityRule(Strict):
    label: str | None = None
    aliases: list[str] = Field(default_factory=list)
    definition: str
    pages: list[Role] = Field(default_factory=list, description="roles paged as soon as an incident gets it")
    pagerduty_severity: Literal["critical", "error", "warning", "info"] = "error"
    bead_priority: int = Field(default=2, ge=0, le=4)
    file_bead: bool = False


class RecordField(Strict):
    """A field of the incident record a milestone asks for (seed 002: resolution PR, validation proof)."""

    key: Key
    label: str = Field(min_length=2, max_length=60)
    optional: bool = False


class Milestone(Strict):
    key: Key
    label: str = Field(min_length=2, max_length=60)
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    asks: list[RecordField] = Field(default_factory=list)
    requires_class: bool = Field(default=False, description="the incident must be classified first")
    resolves: bool = Field(default=False, description="reaching it resolves the incident (the last milestone)")


ROOT_CAUSE = "root_cause"  # the record field resolving always keeps (the incident's resolution note)

# Seed 003's status milestones: the shape incidents had before playbooks declared their own.
DEFAULT_MILESTONES = (
    Milestone(key="triage_complete", label="Triage complete", requires_class=True),
    Milestone(key="mitigation_active", label="Mitigation active"),
    Milestone(key="fix_merged", label="Fix merged"),
    Milestone(key="validation_complete", label="Validation complete"),
    Milestone(key="resolved", label="Resolved", resolves=True, asks=[RecordField(key=ROOT_CAUSE, label="Root cause")]),
)


class Validation(Strict):
    """Validation by evidence (issue 16): once an incident reaches ``after``, its test's next
    ``green_runs`` green runs on the branch it failed on reach ``reaches`` by themselves, the runs'
    links kept as proof in the first field ``reaches`` asks for. A failure in between starts the
    count again. A person may still post ``reaches`` by hand."""

    after: Key = Field(description="the milestone that starts counting, e.g. fix_merged")
    reaches: Key = Field(description="the milestone the green runs reach, e.g. validation_complete")
    green_runs: int = Field(ge=1, le=20, description="green runs in a row, on the incident's branch")


class FlagRule(Strict):
    """A condition a responder sets on an incident, e.g. seed 003's "rollback is required"."""

    label: str = Field(min_length=2, max_length=60)
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    pages: list[Role] = Field(default_factory=list, description="roles paged when it is set (an escalation)")


class FlakeLease(Strict):
    """Who owes a flake its deterministic fix, and by when (issue 16). Granted when an incident is
    first classified into a class whose ``signals`` include ``flake``; a flake still open at its due
    time pages ``escalate_to`` once. A recurrence keeps the lease it has: only fixing it ends it."""

    owner: Role = Field(default="owner", description="the flake class's role that owns the fix")
    due: Duration = Field(description="how long the owner has, from the first classification as a flake")
    escalate_to: list[Role] = Field(min_length=1, description="paged when the flake is still open at its due time")


class FlakePolicy(Strict):
    rerun_until_green: Literal[False] = Field(
        default=False, description="never offered: flakes are fixed deterministically"
    )
    statement: str
    lease: FlakeLease | None = None


class Commands(Strict):
    """Exact command templates; placeholders in braces, e.g. ``{runId}`` (see ``PLACEHOLDERS``)."""

    artifact_download: str | None = None
    artifact_list: str | None = None
    repro: str | None = Field(default=None, description="reproduce one failure locally")
    suites: dict[str, list[str]] = Field(default_factory=dict, description="named command sequences")

    @field_validator("artifact_download", "artifact_list", "repro")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        return check_placeholders(value) if value else value

    @field_validator("suites")
    @classmethod
    def _suite_placeholders(cls, suites: dict[str, list[str]]) -> dict[str, list[str]]:
        for commands in suites.values():
            for command in commands:
                check_placeholders(command)
        return suites


class EnvVar(Strict):
    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    value: str
    secret: bool = False
    meaning: str


class RunbookStep(Strict):
    phase: Key | None = Field(default=None, description="e.g. detect, diagnose, recover, verify, document")
    text: str = Field(min_length=2)


class Trigger(Strict):
    """A validator or CI check whose failure this playbook triages (seed 002's trigger conditions)."""

    name: str = Field(min_length=2)
    command: str | None = None
    workflow: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _something(self) -> Trigger:
        if not (self.command or self.workflow):
            raise ValueError("a trigger needs a command or a workflow")
        return self


class AlertRunbook(Strict):
    """An operational alert (seed 004) and the runbook it opens with."""

    alertname: str = Field(min_length=1, max_length=50)
    detection: str
    severity: SeverityName | None = None
    failure_class: Key | None = Field(default=None, description="the failure mode (a class key) it presets")
    escalate_to: list[str] = Field(default_factory=list, description="who the alert rule says to escalate to")
    steps: list[RunbookStep] = Field(default_factory=list, description="empty: the class's checklist is the runbook")


class TaskRunbook(Strict):
    """An operational task (seed 004): prerequisites → steps → verification → rollback."""

    key: Key
    title: str
    role: str = Field(default="ops", description="who may run it: ops, engineering, admin")
    prerequisites: list[str] = Field(default_factory=list)
    steps: list[str] = Field(min_length=1)
    verification: list[str] = Field(min_length=1)
    rollback: list[str] = Field(default_factory=list)


class EscalationProcedure(Strict):
    """When to escalate beyond the runbook, to whom, with what information (seed 004)."""

    to: str
    when: list[str] = Field(min_length=1)
    information: list[str] = Field(default_factory=list)


class Policy(Strict):
    version: int = Field(ge=1)
    updated: date
    title: str | None = Field(default=None, description="the playbook's name for people")
    summary: str | None = None
    document: str | None = Field(
        default=None, pattern=r"^[\w.-]+\.md$", description="file name of the published document in docs/"
    )
    id_contract: Literal["both", "scenario", "none"] = Field(
        default="both", description="ids a failure must carry; one without them is a contract violation"
    )
    classify_within: Duration | None = Field(default=None, description="the timed rule (absent: none)")
    escalation: EscalationPolicy | None = None
    multi_prefix_threshold: int = Field(default=2, ge=2, description="prefixes in one run that escalate at once")
    severities: dict[SeverityName, SeverityRule] = Field(min_length=1, description="most severe first")
    default_severity: SeverityName
    milestones: list[Milestone] = Field(default_factory=lambda: list(DEFAULT_MILESTONES))
    validation: Validation | None = None
    flags: dict[Key, FlagRule] = Field(default_factory=dict)
    flake: FlakePolicy | None = None
    status_update_every: Duration | None = Field(default=None, description="a quiet thread is reminded after it")
    commands: Commands = Field(default_factory=Commands)
    environment: list[EnvVar] = Field(default_factory=list)
    response_steps: list[RunbookStep] = Field(default_factory=list, description="steps for every class")
    triggers: list[Trigger] = Field(default_factory=list)
    alerts: list[AlertRunbook] = Field(default_factory=list)
    tasks: list[TaskRunbook] = Field(default_factory=list)
    escalation_procedure: EscalationProcedure | None = None

    @field_validator("severities")
    @classmethod
    def _severity_names(cls, severities: dict[str, SeverityRule]) -> dict[str, SeverityRule]:
        unique_spellings({k: spellings(k, r.label, r.aliases) for k, r in severities.items()}, "severity")
        return severities

    @field_validator("flags")
    @classmethod
    def _flag_names(cls, flags: dict[str, FlagRule]) -> dict[str, FlagRule]:
        unique_spellings({k: spellings(k, r.label, r.aliases) for k, r in flags.items()}, "flag")
        return flags

    @field_validator("milestones")
    @classmethod
    def _milestones(cls, milestones: list[Milestone]) -> list[Milestone]:
        if not milestones:
            raise ValueError("declare at least the milestone that resolves the incident")
        seen: dict[str, int] = {}
        for index, milestone in enumerate(milestones):
            if milestone.key in seen:
                raise ValueError(f"milestone {milestone.key} is named twice ([{seen[milestone.key]}] and [{index}])")
            seen[milestone.key] = index
        unique_spellings({m.key: spellings(m.key, m.label, m.aliases) for m in milestones}, "milestone")
        resolving = [m.key for m in milestones if m.resolves]
        if resolving != [milestones[-1].key]:
            raise ValueError("exactly one milestone resolves the incident (resolves: true), and it comes last")
        if ROOT_CAUSE not in {f.key for f in milestones[-1].asks}:
            raise ValueError(f"the resolving milestone must ask for {ROOT_CAUSE} (resolving needs the root cause)")
        return milestones

    @field_validator("validation")
    @classmethod
    def _validation(cls, validation: Validation | None, info: ValidationInfo) -> Validation | None:
        milestones: list[Milestone] = info.data.get("milestones") or []
        if validation is None or not milestones:  # broken milestones are reported on their own
            return validation
        keys = [m.key for m in milestones]
        for name in ("after", "reaches"):
            if getattr(validation, name) not in keys:
                raise ValueError(f"{name}: milestone {getattr(validation, name)} is not declared ({', '.join(keys)})")
        reaches = milestones[keys.index(validation.reaches)]
        if keys.index(validation.after) >= keys.index(validation.reaches):
            raise ValueError(f"reaches: {validation.reaches} must come after {validation.after} in milestones")
        if reaches.resolves:
            raise ValueError(f"reaches: {reaches.key} resolves, and resolving needs a person's root cause")
        if not reaches.asks:
            raise ValueError(
                f"reaches: milestone {reaches.key} asks for no field to keep the runs' links in; give it "
                "asks: [{key: validation_proof, label: Validation proof, optional: true}]"
            )
        others = [f.key for f in reaches.asks[1:] if not f.optional]
        if others:
            raise ValueError(
                f"reaches: milestone {reaches.key} also asks for {', '.join(others)}, which no run can give"
            )
        return validation

    @field_validator("alerts")
    @classmethod
    def _alertnames(cls, alerts: list[AlertRunbook]) -> list[AlertRunbook]:
        names = [a.alertname for a in alerts]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"alert {', '.join(twice)} is listed twice")
        return alerts

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.default_severity not in self.severities:
            raise ValueError(
                f"default_severity {self.default_severity} is not declared in severities ({', '.join(self.severities)})"
            )
        for alert in self.alerts:
            if alert.severity is not None and alert.severity not in self.severities:
                raise ValueError(f"alert {alert.alertname}: severity {alert.severity} is not declared in severities")
        if self.classify_within is not None and self.escalation is None:
            raise ValueError("classify_within needs escalation.levels: who is paged when the timer fires")
        return self

    def milestone(self, key: str | None) -> Milestone | None:
        return next((m for m in self.milestones if m.key == key), None)

    @property
    def resolving(self) -> Milestone:
        return self.milestones[-1]


__all__ = ["PLACEHOLDERS", "ROOT_CAUSE", "Policy", "normalise"]
