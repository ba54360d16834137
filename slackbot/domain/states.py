"""Incident, bead, timer and delivery states. Stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class BeadState(StrEnum):
    NONE = "none"
    PENDING = "pending"  # requested; the outbox files it after commit
    FILED = "filed"
    FAILED = "failed"  # permanently: the thread says why; a new request tries again


class ClassSource(StrEnum):
    """Who decided the class: a person, the id contract, a runbook rule (an alert's runbook)."""

    HUMAN = "human"
    CONTRACT = "contract"
    RULE = "rule"


class SeveritySource(StrEnum):
    DEFAULT = "default"  # the playbook's (or the prefix's) default
    CLASS = "class"  # the class's default, taken when classified
    RULE = "rule"  # an alert's runbook
    HUMAN = "human"


class TimerKind(StrEnum):
    CLASSIFY = "classify"  # the timed escalation rule (seed 001's 20 minutes)
    REMINDER = "reminder"  # a quiet thread asks for a status update
    LEASE = "lease"  # a flake's lease runs out (slackbot/incidents/leases.py)
    DIGEST = "digest"  # a channel's weekly digest (subject digest:<channel>)


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DONE = "done"
    DEAD = "dead"
    # Never delivered, on purpose: a newer row carries what it would have said (a classification
    # replaced before its post went out; see slackbot/incidents/coalescing.py). Not an error.
    SUPERSEDED = "superseded"


class StepResult(StrEnum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


def timer_subject(incident_id: int) -> str:
    return f"incident:{incident_id}"
