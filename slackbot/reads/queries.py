"""Read-side queries shared by the CLI, the HTTP API, /triage and App Home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from slackbot.clock import as_utc
from slackbot.db.models import Incident, Run
from slackbot.domain.ids import IncidentRefError, incident_key, parse_incident_ref

STATUSES = ("open", "resolved")


class QueryError(ValueError):
    pass


def parse_incident_key(text: str) -> int:
    """``INC-42``, ``inc-42`` and ``42`` all mean incident 42 (``slackbot.domain.ids`` reads them)."""
    try:
        return parse_incident_ref(text)
    except IncidentRefError as exc:
        raise QueryError(str(exc)) from None


def get_incident(session: Session, key: str | int) -> Incident:
    incident_id = key if isinstance(key, int) else parse_incident_key(key)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise QueryError(f"no incident INC-{incident_id}")
    return incident


def incident_filter(
    *,
    status: str | None = None,
    failure_class: str | None = None,
    assignee: str | None = None,
    overdue_at: datetime | None = None,
) -> SelectOfScalar[Incident]:
    """One place that validates and applies the filters every incident listing accepts."""
    if status is not None and status not in STATUSES:
        raise QueryError(f"status must be one of {', '.join(STATUSES)}; got '{status[:40]}'")
    query = select(Incident)
    if status:
        query = query.where(Incident.status == status)
    if failure_class:
        query = query.where(Incident.failure_class == failure_class)
    if assignee:
        query = query.where(Incident.assignee == assignee)
    if overdue_at is not None:
        query = query.where(
            Incident.status == "open",
            col(Incident.failure_class).is_(None),
            col(Incident.classify_deadline) <= overdue_at,
        )
    return query


def list_incidents(
    session: Session,
    *,
    status: str | None = None,
    failure_class: str | None = None,
    assignee: str | None = None,
    overdue_at: datetime | None = None,
    limit: int = 500,
) -> list[Incident]:
    query = incident_filter(status=status, failure_class=failure_class, assignee=assignee, overdue_at=overdue_at)
    return list(session.exec(query.order_by(col(Incident.created_at), col(Incident.id)).limit(limit)))


@dataclass(frozen=True)
class Listing:
    """The first incidents of a listing, oldest first, and how many there are in all."""

    incidents: list[Incident]
    total: int


def first_incidents(session: Session, lines: int, *, total: int | None = None, **filters: Any) -> Listing:
    """What a bounded listing shows (``/triage list``, App Home): ``lines`` rows and a count,
    never every open incident loaded to show a few of them. ``total``: the count, when the caller
    has it already (App Home counts the open ones by class)."""
    query = incident_filter(**filters)
    first = list(session.exec(query.order_by(col(Incident.created_at), col(Incident.id)).limit(lines)))
    if total is not None:
        return Listing(first, total)
    total = len(first)
    if total == lines:
        total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
    return Listing(first, total)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat().replace("+00:00", "Z") if value else None


# What ``incident_json`` reads: ``/api/incidents`` selects only these, as plain rows (loading whole
# ORM incidents, with every JSON and date column decoded, cost more than the rest of the request).
JSON_COLUMNS = (
    "id", "playbook", "status", "milestone", "failure_class", "class_source", "severity", "flags", "record",
    "assignee", "scenario_id", "invariant_id", "symptom", "repository", "suite", "channel", "test_identity",
    "organization_under_test", "key_entity_ids", "occurrence_count", "first_seen", "last_seen", "classify_deadline",
    "suggested_class", "suggested_reason", "suggested_confidence", "suspects", "contract_violation",
    "documentation_gap", "multi_prefix", "escalation_level", "bead_id", "bead_state", "card_ts", "created_at",
    "resolved_at",
)  # fmt: skip


def incident_json(incident: Incident | Row[Any], run: Run | None = None) -> dict[str, Any]:
    """An incident, or a row of its ``JSON_COLUMNS``."""
    data: dict[str, Any] = {
        "id": incident_key(incident.id),
        "playbook": incident.playbook,
        "status": incident.status,
        "milestone": incident.milestone,
        "class": incident.failure_class,
        "classSource": incident.class_source,
        "severity": incident.severity,
        "flags": list(incident.flags),
        "record": dict(incident.record),
        "assignee": incident.assignee,
        "scenarioId": incident.scenario_id,
        "invariantId": incident.invariant_id,
        "symptom": incident.symptom,
        "repository": incident.repository,
        "suite": incident.suite,
        "channel": incident.channel,
        "testIdentity": incident.test_identity,
        "organizationUnderTest": incident.organization_under_test,
        "keyEntityIds": incident.key_entity_ids,
        "occurrences": incident.occurrence_count,
        "firstSeen": _iso(incident.first_seen),
        "lastSeen": _iso(incident.last_seen),
        "classifyDeadline": _iso(incident.classify_deadline),
        "suggestedClass": incident.suggested_class,
        "suggestedReason": incident.suggested_reason,
        "confidence": incident.suggested_confidence,
        "suspects": incident.suspects,
        "contractViolation": incident.contract_violation,
        "documentationGap": incident.documentation_gap,
        "multiPrefix": incident.multi_prefix,
        "escalationLevel": incident.escalation_level,
        "bead": incident.bead_id,
        "beadState": incident.bead_state,
        "cardTs": incident.card_ts,
        "createdAt": _iso(incident.created_at),
        "resolvedAt": _iso(incident.resolved_at),
    }
    if run is not None:
        data["run"] = {
            "runId": run.run_id,
            "attempt": run.run_attempt,
            "url": run.url,
            "branch": run.branch,
            "sha": run.sha,
        }
    return data
