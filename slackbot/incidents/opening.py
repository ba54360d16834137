"""A failure arrives: open an incident, count it on the open one, or reopen a resolved one.

Every source (reports, JUnit, GitHub runs, Slack alerts, Alertmanager) describes what it saw as
an ``Opening`` and goes through here, so an incident is born the same way whatever door it came
through: the contract rule, the playbook's defaults, the card, the checklist, the timed rule's
timer, and the pages and bead its severity asks for. New incidents are inserted in bulk (an ingest
of thousands of failures must not build thousands of ORM objects).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from slackbot.config import Playbook, Playbooks
from slackbot.config.targets import Role
from slackbot.db.bulk import insert_many
from slackbot.db.models import Incident, Run
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.ids import incident_key
from slackbot.domain.states import BeadState, ClassSource, IncidentStatus, SeveritySource, TimerKind, timer_subject
from slackbot.incidents import beads, leases
from slackbot.incidents.checklists import enqueue_checklist
from slackbot.incidents.effects import BOT_ACTOR, Effects, table, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import changed

_CHUNK = 500


@dataclass(frozen=True)
class Opening:
    """What a source knows about a failure that opens a new incident."""

    playbook: Playbook
    fingerprint: str
    repository: str
    test_identity: str
    suite: str
    symptom: str
    first_seen: datetime
    last_seen: datetime
    run_pk: int | None
    occurrences: int
    scenario_id: str | None = None
    invariant_id: str | None = None
    test_file: str | None = None
    organization_under_test: str | None = None
    key_entity_ids: dict[str, str] = field(default_factory=dict)
    multi_prefix: bool = False
    documentation_gap: str | None = None
    suggested: tuple[str, str] | None = None  # (class, why)
    suggested_confidence: float | None = None  # 0..1 (slackbot/suggest); None: a rule's guess
    suggestion_votes: list[dict[str, Any]] | None = None  # the signals behind it (slackbot/suggest)
    preset_class: str | None = None  # an alert's runbook names the failure mode
    preset_reason: str | None = None
    preset_severity: str | None = None
    page_owner: bool = False  # an operational alert pages its owner at once


@dataclass(frozen=True)
class Ref:
    """What the rest of an ingest needs to know about an incident, new (a bulk-inserted row) or
    existing (an ORM object)."""

    id: int
    channel: str
    failure_class: str | None
    contract_violation: bool
    documentation_gap: str | None

    @property
    def key(self) -> str:
        return incident_key(self.id)

    @classmethod
    def of(cls, incident: Incident) -> Ref:
        assert incident.id is not None
        return cls(
            incident.id,
            incident.channel,
            incident.failure_class,
            incident.contract_violation,
            incident.documentation_gap,
        )


def _severity(opening: Opening) -> tuple[str, SeveritySource]:
    playbook = opening.playbook
    if opening.preset_severity:
        return opening.preset_severity, SeveritySource.RULE
    for entry in (playbook.scenario_entry(opening.scenario_id), playbook.invariant_entry(opening.invariant_id)):
        if entry is not None and entry.default_severity:
            return entry.default_severity, SeveritySource.DEFAULT
    route = playbook.class_route(opening.preset_class)
    if route is not None and route.default_severity:
        return route.default_severity, SeveritySource.CLASS
    return playbook.policy.default_severity, SeveritySource.DEFAULT


# Plain strings: an enum member's ``.value`` is a descriptor call, per row of an ingest's thousands.
_OPEN = IncidentStatus.OPEN.value
_BEAD_NONE, _BEAD_PENDING = BeadState.NONE.value, BeadState.PENDING.value


def _utc(value: datetime) -> datetime:
    """``utc`` that returns a UTC time itself: an ingest's rows then share its few time objects,
    which the bulk insert converts once each."""
    return value if value.tzinfo is UTC else utc(value)


def incident_row(opening: Opening, now: datetime) -> dict[str, Any]:
    playbook = opening.playbook
    now = _utc(now)
    violation = playbook.contract_violation(opening.scenario_id, opening.invariant_id)
    failure_class, source = None, None
    if opening.preset_class:
        failure_class, source = opening.preset_class, ClassSource.RULE
    elif violation and playbook.missing_ids_class:
        failure_class, source = playbook.missing_ids_class, ClassSource.CONTRACT
    severity, severity_source = _severity(opening)
    within = playbook.policy.classify_within
    return {
        "playbook": playbook.name,
        "fingerprint": opening.fingerprint,
        "open_key": opening.fingerprint,
        "repository": opening.repository,
        "scenario_id": opening.scenario_id,
        "invariant_id": opening.invariant_id,
        "test_identity": opening.test_identity,
        "test_file": opening.test_file,
        "symptom": opening.symptom,
        "organization_under_test": opening.organization_under_test,
        "key_entity_ids": dict(opening.key_entity_ids),
        "suite": opening.suite,
        "channel": playbook.channel_for_suite(opening.suite),
        "status": _OPEN,
        "severity": severity,
        "severity_source": severity_source.value,
        "contract_violation": violation,
        "documentation_gap": opening.documentation_gap,
        "multi_prefix": opening.multi_prefix,
        "occurrence_count": opening.occurrences,
        "first_seen": _utc(opening.first_seen),
        "last_seen": _utc(opening.last_seen),
        "first_run_pk": opening.run_pk,
        "last_run_pk": opening.run_pk,
        "classify_deadline": now + within if within is not None and failure_class is None else None,
        "suggested_class": opening.suggested[0] if opening.suggested else opening.preset_class,
        "suggested_reason": opening.suggested[1] if opening.suggested else opening.preset_reason,
        "suggested_confidence": opening.suggested_confidence if opening.suggested else None,
        "suggestion_votes": opening.suggestion_votes if opening.suggested else None,
        "failure_class": failure_class,
        "class_source": source.value if source else None,
        "classified_at": now if failure_class else None,
        "escalation_level": 0,
        "bead_state": _BEAD_PENDING if violation and source == ClassSource.CONTRACT else _BEAD_NONE,
        "revision": 0,
        "created_at": now,
        "updated_at": now,
    }


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> list[Ref]:
    """Insert new incidents in one ``executemany`` and learn their ids: on SQLite from the last
    rowid (one writer at a time, and an ``executemany`` of rows without ids numbers them one
    after another from the table's largest id), elsewhere by one indexed IN query per chunk
    (every new incident is open, and an open incident's ``open_key``, its fingerprint, is unique)."""
    if not rows:
        return []
    insert_many(session, table(Incident), rows)
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        numbered = list(range(last - len(rows) + 1, last + 1))
    else:
        ids: dict[str, int] = {}
        keys = [r["open_key"] for r in rows]
        for start in range(0, len(keys), _CHUNK):
            found = session.execute(
                select(col(Incident.open_key), col(Incident.id)).where(
                    col(Incident.open_key).in_(keys[start : start + _CHUNK])
                )
            )
            ids.update((key, int(iid)) for key, iid in found)
        numbered = [ids[key] for key in keys]
    return [
        Ref(iid, r["channel"], r["failure_class"], r["contract_violation"], r["documentation_gap"])
        for iid, r in zip(numbered, rows, strict=True)
    ]


Announcement = Callable[[str], str]  # the created row's message, given the incident key


def announce(
    opening: Opening,
    ref: Ref,
    row: dict[str, Any],
    effects: Effects,
    *,
    created: Announcement,
    source: str,
    actor: str = BOT_ACTOR,
) -> None:
    """Everything a new incident starts with, after its row exists."""
    playbook, iid = opening.playbook, ref.id
    effects.record(
        Event.CREATED,
        created(ref.key),
        incident_id=iid,
        run_pk=opening.run_pk,
        source=source,
        actor=actor,
        data={"fingerprint": row["fingerprint"], "occurrences": opening.occurrences, "playbook": playbook.name},
    )
    if opening.suggested:
        effects.record(
            Event.ROUTED,
            f"Suggested owner: {opening.suggested[0]} because {opening.suggested[1]}",
            incident_id=iid,
            source=source,
            # the reason is the message's already (with a team's past, over 600 characters)
            data={"class": opening.suggested[0], "confidence": opening.suggested_confidence},
        )
    if row["class_source"] == ClassSource.CONTRACT:
        missing = playbook.missing_ids(opening.scenario_id, opening.invariant_id)
        effects.record(
            Event.CLASSIFIED,
            f"Classified {ref.failure_class} by the contract check: the failure lacks " + " and ".join(missing),
            incident_id=iid,
            source="rule",
            data={"class": ref.failure_class, "rule": "contract"},
        )
        effects.enqueue(
            EffectKind.BEAD_FILE, Key.bead_file(iid), {"reason": "contract_violation"}, incident_id=iid, lane=Lane.BEADS
        )
    elif row["class_source"] == ClassSource.RULE:
        effects.record(
            Event.CLASSIFIED,
            f"Classified {ref.failure_class} by {opening.preset_reason or 'a runbook rule'} ({row['severity']})",
            incident_id=iid,
            source="rule",
            data={"class": ref.failure_class, "rule": "alert_runbook"},
        )
    if ref.documentation_gap:
        effects.record(Event.DOCUMENTATION_GAP, ref.documentation_gap, incident_id=iid, source=source)
    effects.enqueue(EffectKind.CARD, Key.card(iid, 0), incident_id=iid, lane=ref.channel)
    if row["classify_deadline"] is not None:
        effects.new_timer(
            subject=timer_subject(iid), kind=TimerKind.CLASSIFY, due_at=row["classify_deadline"], incident_id=iid
        )
    rule = playbook.severity_rule(row["severity"])
    roles: list[Role] = [*(["owner"] if opening.page_owner else []), *rule.pages]  # type: ignore[list-item]
    if roles or rule.file_bead or ref.failure_class is not None:
        incident = Incident.model_validate({**row, "id": iid})
        if ref.failure_class is not None:  # preset by a rule: its checklist applies now
            enqueue_checklist(effects, incident, failure_class=ref.failure_class, reclassified=False)
        if roles:
            reason = "alert" if opening.page_owner else "opened"
            note = opening.symptom if opening.page_owner else ""
            enqueue_page(
                effects, incident, targets_for(playbook, incident, roles), reason=reason, step="open", note=note
            )
        if rule.file_bead and row["bead_state"] == BeadState.NONE:
            effects.enqueue(
                EffectKind.BEAD_FILE, Key.bead_file(iid), {"reason": "severity"}, incident_id=iid, lane=Lane.BEADS
            )
            row["bead_state"] = BeadState.PENDING.value


def open_one(
    session: Session, opening: Opening, effects: Effects, *, created: Announcement, source: str, actor: str
) -> Incident:
    """One incident (an alert group): inserted like an ingest's, returned as a row to work with."""
    row = incident_row(opening, effects.now)
    [ref] = insert_rows(session, [row])
    announce(opening, ref, row, effects, created=created, source=source, actor=actor)
    incident = session.get(Incident, ref.id)
    assert incident is not None
    if row["bead_state"] != incident.bead_state:  # the severity filed a bead after the insert
        incident.bead_state = row["bead_state"]
        session.add(incident)
    return incident


def recur(
    session: Session,
    playbook: Playbook,
    incident: Incident,
    run: Run,
    added: int,
    effects: Effects,
    *,
    post: tuple[EffectKind, str, dict[str, Any]] | None = None,
    message: str | None = None,
    source: str = "ingest",
    actor: str = BOT_ACTOR,
) -> None:
    """Seen again while open: a counter on the card and a post in its thread, never a new card.
    The caller moves the quiet-thread reminders of a batch back at once."""
    assert incident.id is not None
    incident.occurrence_count += added
    incident.last_seen = utc(run.finished_at or effects.now)
    incident.last_run_pk = run.id
    effects.record(
        Event.OCCURRENCE,
        message
        or (
            f"Seen again in run {run.repository}#{run.run_id} attempt {run.run_attempt} (+{added}, "
            f"{incident.occurrence_count} in all)"
        ),
        incident_id=incident.id,
        run_pk=run.id,
        source=source,
        actor=actor,
        data={"added": added, "total": incident.occurrence_count},
    )
    beads.comment_recurrence(incident, run, added, effects)
    kind, key, payload = post or (
        EffectKind.THREAD_POST,
        Key.recurrence(incident.id, run.id),
        {
            "template": "occurrence",
            "run_pk": run.id,
            "added": added,
            # The post is rendered when it is delivered, maybe after later runs: it carries what
            # it says (this run, the count and time so far), not a pointer to the incident's latest.
            "run": {"repository": run.repository, "run_id": run.run_id, "attempt": run.run_attempt, "url": run.url},
            "total": incident.occurrence_count,
            "last_seen": incident.last_seen.isoformat() if incident.last_seen else None,
        },
    )
    effects.enqueue(kind, key, payload, incident_id=incident.id, lane=incident.channel)
    changed(session, playbook, incident, effects, remind=False)


_INCIDENTS = table(Incident)
# Resolved incidents that may reopen, as ids: built once, the fingerprints one expanding parameter.
# Most of a report's failures have none, and the ORM query with 500 literal fingerprints (each
# coerced, the statement compiled, its rows loaded) cost several times SQLite's answer; only the
# incidents found are loaded. `|| ''`: no index answers these two terms. Without statistics (the
# bot never runs ANALYZE) SQLite otherwise searches the status index for 'resolved' and walks
# every resolved incident once per chunk (0.65 s of a 10,000-result ingest with 100,000
# incidents); the fingerprints are the selective key.
_RESOLVED_SINCE = sa_select(_INCIDENTS.c.id).where(
    _INCIDENTS.c.fingerprint.in_(bindparam("fingerprints", expanding=True)),
    _INCIDENTS.c.status + "" == IncidentStatus.RESOLVED.value,
    (_INCIDENTS.c.failure_class + "").in_(bindparam("classes", expanding=True)),
    _INCIDENTS.c.resolved_at >= bindparam("since"),
)


def reopenable(session: Session, playbooks: Playbooks, fingerprints: list[str], now: datetime) -> dict[str, Incident]:
    """Resolved incidents whose class reopens on recurrence (seed 001's flake policy: a flake that
    recurs within the window reopens and escalates rather than starting over)."""
    windows = {
        (p.name, key): route.reopens_within
        for p in playbooks
        for key, route in p.classes.items()
        if route.reopens_within
    }
    if not fingerprints or not windows:
        return {}
    since = utc(now - max(windows.values()))
    classes = sorted({key for _, key in windows})
    ids: list[int] = []
    for start in range(0, len(fingerprints), _CHUNK):
        chunk = fingerprints[start : start + _CHUNK]
        ids.extend(session.scalars(_RESOLVED_SINCE, {"fingerprints": chunk, "classes": classes, "since": since}))
    found: dict[str, Incident] = {}
    ids.sort(reverse=True)  # the latest resolved incident of a fingerprint is the one to reopen
    for start in range(0, len(ids), _CHUNK):
        rows = session.exec(
            select(Incident).where(col(Incident.id).in_(ids[start : start + _CHUNK])).order_by(col(Incident.id).desc())
        )
        for incident in rows:
            window = windows.get((playbooks.get(incident.playbook).name, incident.failure_class or ""))
            if (
                window is not None
                and incident.resolved_at is not None
                and utc(incident.resolved_at) >= utc(now - window)
            ):
                found.setdefault(incident.fingerprint, incident)
    return found


def reopen(session: Session, playbook: Playbook, incident: Incident, effects: Effects) -> None:
    assert incident.id is not None
    route = playbook.class_route(incident.failure_class)
    window = route.reopens_within if route else None
    incident.status = IncidentStatus.OPEN
    incident.open_key = incident.fingerprint
    incident.milestone = None
    incident.resolved_at = None
    incident.revision += 1
    label = route.label if route else incident.failure_class
    effects.record(
        Event.REOPENED,
        f"{label} recurred within {window} of being resolved: reopened and escalated"
        + (" (fixed deterministically, never rerun until green)" if playbook.policy.flake else ""),
        incident_id=incident.id,
        source="rule",
    )
    targets = targets_for(playbook, incident, ["owner", "escalation"])
    enqueue_page(effects, incident, targets, reason="recurred", step=str(incident.revision))
    beads.reopen_with(incident, effects)
    leases.resume(session, playbook, incident)


def run_escalation(
    playbook: Playbook,
    run: Run,
    prefixes: list[str],
    existing: list[Incident],
    incident_ids: list[int],
    effects: Effects,
) -> None:
    """Seed 001: failures across several scenario classes point at the harness or a shared service.
    One run-level escalation, not one per incident, to the playbook's run-escalation class."""
    for incident in existing:
        incident.multi_prefix = True
    effects.record(
        Event.MULTI_PREFIX,
        f"Run spans {len(prefixes)} scenario prefixes ({', '.join(prefixes)}): likely harness or "
        "shared-service regression; escalating once for the run",
        run_pk=run.id,
        source="rule",
        data={"prefixes": prefixes, "incidents": incident_ids, "playbook": playbook.name},
    )
    target_class = playbook.run_escalation_class
    found = playbook.target("escalation", target_class)
    ref = {
        "role": found.role if found else "escalation",
        "class": found.failure_class if found else target_class,
        "reason": "multi_prefix",
        "step": f"run-{run.id}",
        "playbook": playbook.name,
    }
    effects.enqueue(
        EffectKind.RUN_ESCALATION,
        Key.run_escalation(run.id),
        {"run_pk": run.id, "prefixes": prefixes, "incident_ids": incident_ids, "playbook": playbook.name},
        lane=playbook.channel_for_suite(run.suite),
    )
    if found is None:
        return
    if found.dm_user:
        effects.enqueue(
            EffectKind.DM,
            f"{Key.run_escalation(run.id)}:dm",
            {**ref, "user": found.dm_user, "run_pk": run.id},
            lane=Lane.dm(found.dm_user),
        )
    if found.target.pagerduty_routing_key:
        effects.enqueue(
            EffectKind.PAGERDUTY,
            f"{Key.run_escalation(run.id)}:pd",
            {**ref, "action": "trigger", "run_pk": run.id},
            lane=Lane.PAGERDUTY,
        )
