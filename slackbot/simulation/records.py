"""What a simulation is given and what it leaves behind: its configuration, the run record the
invariants and the report read, and the outside world's view (Slack, PagerDuty, bd, GitHub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slackbot.config import Playbooks
from slackbot.settings import DEFAULT_RUNBOOKS
from slackbot.simulation.alerts import Alerts
from slackbot.simulation.faults import FaultPlan
from slackbot.simulation.responders import People
from slackbot.simulation.traffic import Traffic

START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


@dataclass
class SimulationConfig:
    days: int = 14
    seed: int = 7
    runbooks_dir: Path = DEFAULT_RUNBOOKS
    responders: bool = False
    database_url: str | None = None  # default: SQLite in the work directory
    workdir: Path | None = None  # default: a temporary directory, removed afterwards
    faults: bool = True
    start: datetime = START
    inject_bug: str | None = None  # "duplicate-card": prove the invariants catch a broken bot


@dataclass
class Outcome:
    """One delivery outcome the worker reported (retries and dead letters), in virtual time."""

    at: datetime
    kind: str
    outbox_id: int
    outcome: str
    error: str | None


@dataclass
class Restart:
    at: datetime
    reason: str
    process: int
    in_flight: list[str] = field(default_factory=list)  # deliveries the dead process left half-done


@dataclass
class SimulationRun:
    """Everything the invariants and the report need once the bot has stopped."""

    config: SimulationConfig
    runbook_dir: Path
    database_url: str
    traffic: Traffic
    faults: FaultPlan
    people: People
    snapshot: Snapshot
    outcomes: list[Outcome]
    restarts: list[Restart]
    started: datetime
    ended: datetime
    drained_at: datetime
    wall_seconds: float
    ingest_answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # run id -> 202 bodies
    alerts: Alerts | None = None  # Alertmanager's webhooks, from the playbooks' alert rules
    sabotage: list[str] = field(default_factory=list)
    playbooks: Playbooks | None = None  # as the run loaded them (None: load them from runbook_dir)
    socket_processes: list[int] = field(default_factory=list)  # the bot processes that took Slack over Socket Mode


@dataclass
class SnapMessage:
    channel: str
    ts: str
    text: str
    thread_ts: str | None
    metadata: dict[str, Any] | None
    header: str
    user: str
    edited: int
    at: float  # the virtual time the message was posted (its ts)
    block_ids: list[str] = field(default_factory=list)  # as the message reads now (a card's last version)


@dataclass
class Snapshot:
    """What the outside world saw, captured at the end: Slack, PagerDuty, bd, GitHub."""

    messages: list[SnapMessage]
    calls: dict[str, dict[int, int]]  # method -> HTTP status -> count
    pagerduty: list[dict[str, Any]]  # events with "_received_at"
    pagerduty_refused: int
    beads: list[dict[str, Any]]
    github_issues: list[dict[str, Any]]
    # (repository, run id, artifact name) the fake GitHub Actions handed out, in order
    github_downloads: list[tuple[str, str, str]] = field(default_factory=list)
    # (repository, run id, HTTP status) of each request GitHub's outage refused, in order
    github_refused: list[tuple[str, str, int]] = field(default_factory=list)
    # (repository, run id) -> when the fake GitHub first handed out the run's report (virtual time)
    github_fetched_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # (repository, issue title or #number, HTTP status) of each request the Issues API outage refused
    github_issue_refused: list[tuple[str, str, int]] = field(default_factory=list)
    github_issue_outages: list[tuple[datetime, datetime]] = field(default_factory=list)  # (began, ended)
    # (envelope type, what it carried, acked) of each Slack request delivered over Socket Mode, in order
    socket_envelopes: list[tuple[str, str, bool]] = field(default_factory=list)

    def top_level(self, channel: str | None = None) -> list[SnapMessage]:
        return [m for m in self.messages if m.thread_ts in (None, m.ts) and channel in (None, m.channel)]

    def replies(self) -> list[SnapMessage]:
        return [m for m in self.messages if m.thread_ts not in (None, m.ts)]


@dataclass
class Check:
    key: str
    promise: str  # the promise in plain words, as the report shows it
    checked: int  # how many things were looked at
    violations: list[str] = field(default_factory=list)
    outside: bool = False  # computed from the YAML and the traffic, compared with the fakes only
    per_playbook: dict[str, int] = field(default_factory=dict)  # of ``checked``: the cases of each playbook

    def examined(self, playbook: str, cases: int = 1) -> None:
        self.checked += cases
        self.per_playbook[playbook] = self.per_playbook.get(playbook, 0) + cases

    @property
    def passed(self) -> bool:
        return not self.violations and self.checked > 0  # examining nothing proves nothing

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "promise": self.promise,
            "passed": self.passed,
            "checked": self.checked,
            "checked_per_playbook": dict(self.per_playbook),
            "violations": self.violations,
            "from_the_outside": self.outside,
        }
