"""Tables. One row type per thing a responder or an auditor asks about.

Times are stored as naive UTC (SQLite has no time zones); ``slackbot.clock.as_utc`` reads them back.
Constraints do the concurrency work: ``incidents.open_key`` is unique while an incident is open and
NULL once resolved (the Grafana OnCall trick), so two replicas ingesting the same failure at the same
moment cannot open two incidents for one fingerprint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from slackbot.domain.states import ClassSource


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("repository", "run_id", "run_attempt", name="uq_runs_identity"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str
    repository: str = Field(index=True)
    run_id: str
    run_attempt: int = 1
    url: str | None = None
    workflow: str | None = None
    suite: str
    branch: str | None = None
    sha: str | None = None
    finished_at: datetime | None = None
    received_at: datetime
    results_total: int = 0
    results_failed: int = 0
    results_passed: int = 0
    scenario_prefixes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    multi_prefix: bool = False


# Written out (not bound) in the index and in the query that uses it: a database uses a partial index
# only for a query whose condition it can see implies the index's.
PAST_WHERE = f"class_source = '{ClassSource.HUMAN.value}' AND failure_class IS NOT NULL"


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("open_key", name="uq_incidents_open_key"),
        Index("ix_incidents_status_created", "status", "created_at"),
        # Newest first over all of them (/api/incidents, its cursor) and /triage stats' windows:
        # it carries every column the stats read, so their range scan never visits the table.
        Index(
            "ix_incidents_created",
            "created_at",
            "id",
            "failure_class",
            "status",
            "contract_violation",
            "classified_at",
            "acknowledged_at",
            "resolved_at",
            "channel",
        ),
        Index("ix_incidents_class_created", "failure_class", "created_at"),
        # The team's past (slackbot/suggest/past.py): every ingest reads a playbook's newest
        # incidents that people classified. Only those are in it, so opening an incident never
        # writes to it, and it carries what is read, so the read never visits the table.
        Index(
            "ix_incidents_past",
            "playbook",
            "id",
            "failure_class",
            "suggested_class",
            "symptom",
            "class_source",  # constant here, but SQLite counts a column in the condition as read
            sqlite_where=text(PAST_WHERE),
            postgresql_where=text(PAST_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True)
    open_key: str | None = Field(default=None, description="= fingerprint while open, NULL when resolved")
    playbook: str = Field(default="integration-triage", description="the playbook it was opened under")
    repository: str
    scenario_id: str | None = None
    invariant_id: str | None = None
    test_identity: str
    test_file: str | None = None
    symptom: str = ""
    organization_under_test: str | None = None
    key_entity_ids: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    suite: str
    channel: str
    status: str = Field(default="open", description="open | resolved")
    milestone: str | None = None
    failure_class: str | None = None
    class_source: str | None = Field(default=None, description="contract | human | rule")
    severity: str = "SEV-3"
    severity_source: str | None = Field(default=None, description="default | class | rule | human")
    # Server defaults: a bulk ingest leaves both out of its rows rather than encode thousands of
    # empty values.
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
    record: dict[str, str] = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default="{}"),
        description="fields milestones asked for",
    )
    alert: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="an Alertmanager incident's alert as last notified (status, labels, summary, links)",
    )
    assignee: str | None = None
    suggested_class: str | None = None
    suggested_reason: str | None = None
    suggested_confidence: float | None = Field(default=None, description="0..1; how sure the suggestion is")
    suggestion_votes: list[dict[str, Any]] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="every signal's vote behind the suggestion, so later evidence can join them",
    )
    suspects: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="changes between the last green and the first failing sha, with their owners",
    )
    # Validation by evidence (slackbot/incidents/validation.py): where the green runs are awaited
    # ("repository\nbranch", NULL when nothing is awaited: an ingest looks up only its own branch),
    # and the progress the card shows (the runs counted, the run that interrupted them).
    validation_scope: str | None = Field(default=None, index=True)
    validation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # A flake's lease (slackbot/incidents/leases.py): the owning role and class, the due time and
    # when it escalated; kept once granted, so reclassifying back to a flake does not restart it.
    lease: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    contract_violation: bool = False
    documentation_gap: str | None = None
    multi_prefix: bool = False
    occurrence_count: int = 0
    first_seen: datetime
    last_seen: datetime
    first_run_pk: int | None = Field(default=None, foreign_key="runs.id")
    last_run_pk: int | None = Field(default=None, foreign_key="runs.id")
    classify_deadline: datetime | None = Field(default=None, description="None: the playbook has no timed rule")
    classified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_note: str | None = None
    escalation_level: int = 0
    card_ts: str | None = Field(default=None, description="set once by compare-and-set; later changes update it")
    bead_id: str | None = None
    bead_state: str = Field(default="none", description="none | pending | filed | failed")
    revision: int = Field(default=0, description="bumped on every change; the card shows the latest")
    card_details: bool = Field(default=False, description="the card shows its details (taxonomy, evidence, repro)")
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        """The id people type: ``/triage show INC-42``."""
        return f"INC-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def owning_class(self) -> str | None:
        """The class whose people own it: the chosen one, else the suggested one."""
        return self.failure_class or self.suggested_class


class Occurrence(SQLModel, table=True):
    __tablename__ = "occurrences"
    __table_args__ = (UniqueConstraint("run_pk", "occurrence_key", name="uq_occurrences_run_key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    run_pk: int = Field(foreign_key="runs.id", index=True)
    occurrence_key: str = Field(description="stable hash of the result, so a resent report adds nothing")
    status: str
    scenario_id: str | None = None
    invariant_id: str | None = None
    test_file: str | None = None
    test_name: str | None = None
    command: str | None = Field(default=None, sa_column=Column(Text), description="the failing command")
    message: str | None = Field(default=None, sa_column=Column(Text))
    detail: str | None = Field(default=None, sa_column=Column(Text))
    organization_under_test: str | None = None
    key_entity_ids: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    evidence: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    occurred_at: datetime


class RunResults(SQLModel, table=True):
    """Every result one report carried, passes included, as one packed row (slackbot/history): a
    run of 10,000 results is one insert, not 10,000. ``outcomes`` is the sorted records of
    (8-byte digest of the test, 1-byte outcome); a test's history is a binary search per run."""

    __tablename__ = "run_results"
    __table_args__ = (
        UniqueConstraint("run_pk", "content_key", name="uq_run_results_content"),
        Index("ix_run_results_branch", "repository", "branch", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_pk: int = Field(foreign_key="runs.id", index=True)
    content_key: str = Field(description="hash of the outcomes: the same report sent twice is one row")
    repository: str
    branch: str = Field(default="", description="'' when the run named none")
    sha: str | None = None
    attempt: int = 1
    results: int = 0
    failed: int = 0
    outcomes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    recorded_at: datetime


class TimelineEvent(SQLModel, table=True):
    """The audit trail: who did what, when, from where (button, command, timer, api, ingest)."""

    __tablename__ = "timeline"
    # /triage stats asks, per incident, whether one kind of row exists (was it reclassified?).
    __table_args__ = (Index("ix_timeline_incident_kind", "incident_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    # Its own index beside ix_timeline_incident_kind: an incident's rows in the order written
    # (``ORDER BY id``, runtime.timeline) come from it without a sort, however many there are.
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    run_pk: int | None = Field(default=None, foreign_key="runs.id")
    at: datetime = Field(index=True)
    actor: str
    source: str
    kind: str
    message: str = Field(sa_column=Column(Text, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RunbookExecution(SQLModel, table=True):
    """One click on a runbook checklist step (seed 004's ``runbook_executions`` audit table)."""

    __tablename__ = "runbook_executions"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    runbook: str = Field(description="which checklist: a class key or 'response'")
    runbook_version: int
    step_index: int
    step_text: str = Field(sa_column=Column(Text, nullable=False))
    result: str = Field(description="done | failed | skipped")
    actor: str
    at: datetime
    note: str | None = None


class OutboxItem(SQLModel, table=True):
    """A side effect (Slack post, page, bead) written in the same transaction as the state change
    and delivered after commit, so a crash can delay an effect but never lose or invent one."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_outbox_dedup_key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
        # An incident's rows of one kind in one state: a change looks for a card redraw already
        # queued (effects._without_queued_cards) and checklists look up their newest; an incident's
        # busy history (thousands of done rows) must not be scanned for that.
        Index("ix_outbox_incident_kind_state", "incident_id", "kind", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    dedup_key: str
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    lane: str = Field(default="default", description="pacing lane, e.g. the Slack channel")
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="pending", description="pending | sending | done | dead")
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    claimed_by: str | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    done_at: datetime | None = None


class Timer(SQLModel, table=True):
    """A durable timer. The database is the truth for due times; the in-process scheduler only
    wakes us. ``token`` changes whenever the timer is re-armed or cancelled, so a late or
    duplicate firing that carries an old token does nothing."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("subject", "kind", name="uq_timers_subject_kind"),
        Index("ix_timers_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(description="what the timer is about, e.g. incident:42 or run:7")
    kind: str
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    due_at: datetime
    token: str
    state: str = Field(default="pending", description="pending | fired | cancelled")
    step: int = 0
    fired_at: datetime | None = None
    fired_by: str | None = None


class ProcessedDelivery(SQLModel, table=True):
    """Inbound de-duplication: Slack event_id, GitHub X-GitHub-Delivery, Alertmanager notifications."""

    __tablename__ = "processed_deliveries"
    __table_args__ = (UniqueConstraint("source", "delivery_id", name="uq_processed_source_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    delivery_id: str
    received_at: datetime


class InboxItem(SQLModel, table=True):
    """A Slack interaction's change, written before its ack and applied after it (``slackbot.inbox``).

    ``id`` is the arrival sequence; ``request_key`` names the Slack request, so a redelivered one
    is recorded once; the row is marked in the same transaction as the change it asks for, so a
    crash either applied it and marked it, or did neither."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_inbox_request_key"),
        Index("ix_inbox_state_id", "state", "id"),  # what is still to apply, oldest first
        Index("ix_inbox_incident_state_id", "incident_id", "state", "id"),  # one incident's, in order
    )

    id: int | None = Field(default=None, primary_key=True)
    request_key: str
    # No foreign key: a click naming an incident that does not exist is recorded, then refused.
    incident_id: int
    actor: str = Field(description="the Slack user id")
    via: str = Field(description="button | command | modal")
    change: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    response_url: str | None = Field(default=None, sa_column=Column(Text))
    state: str = Field(default="pending", description="pending | done | refused")
    outcome: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime
    applied_at: datetime | None = None


class Digest(SQLModel, table=True):
    """A channel's weekly digest, scheduled once: the row and its outbox rows commit together, and
    the unique (channel, week_start) refuses a second one from another replica or a restart."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("channel", "week_start", name="uq_digests_channel_week"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    week_start: datetime = Field(description="the week it covers: incidents opened from here ...")
    week_end: datetime = Field(description="... until here, the scheduled moment it was due")
    scheduled_by: str = Field(description="the replica whose timer scheduled it")
    created_at: datetime
