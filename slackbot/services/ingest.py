"""Ingest a report: one transaction from raw results to grouped incidents and pending effects.

The whole report lands or nothing does. Re-sending the same report adds nothing, because every
occurrence carries a key derived from its content and ``(run, key)`` is unique.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from slackbot.clock import Clock, as_utc
from slackbot.config.models import FailureClass, Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, Run
from slackbot.report import Report, Result
from slackbot.services.effects import Effects, arm_timer, utc
from slackbot.services.fingerprint import fingerprint, prefix_of, short_symptom
from slackbot.services.paging import enqueue_page, resolve_target, targets_for

_CHUNK = 500


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc).lower()
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text


@dataclass
class IngestedIncident:
    key: str
    id: int
    fingerprint: str
    created: bool
    occurrences_added: int
    scenario_id: str | None
    invariant_id: str | None
    failure_class: str | None
    contract_violation: bool
    documentation_gap: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "occurrencesAdded": self.occurrences_added,
            "scenarioId": self.scenario_id,
            "invariantId": self.invariant_id,
            "class": self.failure_class,
            "contractViolation": self.contract_violation,
            "documentationGap": self.documentation_gap,
        }


@dataclass
class IngestResult:
    run_key: str
    duplicate: bool
    results: int
    failures: int
    multi_prefix: bool
    incidents: list[IngestedIncident] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run_key,
            "duplicate": self.duplicate,
            "results": self.results,
            "failures": self.failures,
            "multiPrefix": self.multi_prefix,
            "incidents": [i.as_json() for i in self.incidents],
        }


@dataclass
class _Group:
    fingerprint: str
    results: list[tuple[Result, str]]  # (result, occurrence key)

    @property
    def first(self) -> Result:
        return self.results[0][0]


class IngestService:
    def __init__(self, runbook: Runbook, clock: Clock) -> None:
        self.runbook = runbook
        self.clock = clock

    # -- public ---------------------------------------------------------------------------------

    def ingest_report(self, engine: Engine, report: Report, *, source: str = "api", attempts: int = 5) -> IngestResult:
        """Ingest in its own transaction. Two replicas ingesting the same failure at once collide
        on a unique key (run identity, open incident fingerprint); the loser retries and then
        sees the winner's rows, so the outcome is the same as if they had taken turns."""
        for attempt in range(attempts):
            try:
                with session_scope(engine) as session:
                    return self.ingest(session, report, source=source)
            except (IntegrityError, OperationalError) as exc:
                if attempt == attempts - 1 or not _retryable(exc):
                    raise
                time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")

    def ingest(self, session: Session, report: Report, *, source: str = "api") -> IngestResult:
        now = self.clock.now()
        effects = Effects(now=now)
        run, run_is_new = self._upsert_run(session, report, now)
        assert run.id is not None
        failures = [r for r in report.results if r.is_failure]
        groups = self._group(report.run.repository, failures)
        known_keys = self._existing_occurrence_keys(session, run.id, groups)
        fresh_groups = {fp: [(r, k) for r, k in g.results if k not in known_keys] for fp, g in groups.items()}
        duplicate = not run_is_new and not any(fresh_groups.values())

        prefixes = sorted({p for r in failures if (p := prefix_of(r.scenario_id))})
        multi_prefix = len(prefixes) >= self.runbook.policy.multi_prefix_threshold
        if run_is_new or not duplicate:
            self._count_run(run, report, prefixes, multi_prefix, run_is_new)
            session.add(run)

        open_incidents = self._open_incidents(session, list(fresh_groups))
        reopenable = self._recent_flakes(session, [fp for fp in fresh_groups if fp not in open_incidents], now)
        ingested: list[IngestedIncident] = []
        occurrence_rows: list[dict[str, Any]] = []
        new_incidents: list[tuple[Incident, _Group]] = []

        for fp, fresh in fresh_groups.items():
            group = groups[fp]
            incident = open_incidents.get(fp)
            created = False
            if incident is None and fresh:
                incident = reopenable.get(fp)
                if incident is not None:
                    self._reopen_flake(incident, effects, now)
            if incident is None:
                if not fresh:
                    continue
                incident = self._new_incident(report, run, group, now)
                new_incidents.append((incident, group))
                created = True
            if not created and fresh:
                self._absorb(incident, run, len(fresh), now, multi_prefix, effects)
            ingested.append(
                IngestedIncident(
                    key="",
                    id=0,
                    fingerprint=fp,
                    created=created,
                    occurrences_added=len(fresh),
                    scenario_id=group.first.scenario_id,
                    invariant_id=group.first.invariant_id,
                    failure_class=None,
                    contract_violation=False,
                    documentation_gap=None,
                )
            )
            occurrence_rows.extend(self._occurrence_row(fp, run, r, k, now) for r, k in fresh)

        self._insert_incidents(session, [i for i, _ in new_incidents])
        by_fp = {i.fingerprint: i for i, _ in new_incidents} | open_incidents | reopenable
        for incident, group in new_incidents:
            self._announce_new(session, incident, group, run, effects)
        for row in occurrence_rows:
            row["incident_id"] = by_fp[row.pop("fingerprint")].id
        for start in range(0, len(occurrence_rows), _CHUNK * 4):
            session.execute(insert(Occurrence), occurrence_rows[start : start + _CHUNK * 4])

        for item in ingested:
            incident = by_fp[item.fingerprint]
            assert incident.id is not None
            item.id = incident.id
            item.key = incident.key
            item.failure_class = incident.failure_class
            item.contract_violation = incident.contract_violation
            item.documentation_gap = incident.documentation_gap

        if not duplicate:
            if run.multi_prefix:
                touched = [by_fp[i.fingerprint] for i in ingested]
                self._flag_multi_prefix(run, run.scenario_prefixes, touched, effects)
            effects.record(
                "run_ingested",
                f"Run {report.run.repository}#{report.run.run_id} attempt {report.run.run_attempt}: "
                f"{len(failures)} failing of {len(report.results)} results",
                run_pk=run.id,
                source=source,
                data={"incidents": [i.key for i in ingested]},
            )
        effects.flush(session)
        return IngestResult(
            run_key=f"{report.run.repository}#{report.run.run_id}.{report.run.run_attempt}",
            duplicate=duplicate,
            results=len(report.results),
            failures=len(failures),
            multi_prefix=run.multi_prefix,
            incidents=ingested,
        )

    # -- runs and grouping ----------------------------------------------------------------------

    def _upsert_run(self, session: Session, report: Report, now: datetime) -> tuple[Run, bool]:
        info = report.run
        run = session.exec(
            select(Run).where(
                Run.repository == info.repository,
                Run.run_id == info.run_id,
                Run.run_attempt == info.run_attempt,
            )
        ).first()
        if run is not None:
            return run, False
        run = Run(
            provider=info.provider,
            repository=info.repository,
            run_id=info.run_id,
            run_attempt=info.run_attempt,
            url=info.url,
            workflow=info.workflow,
            suite=info.suite,
            branch=info.branch,
            sha=info.sha,
            finished_at=utc(info.finished_at) if info.finished_at else None,
            received_at=utc(now),
        )
        session.add(run)
        session.flush()
        return run, True

    @staticmethod
    def _count_run(run: Run, report: Report, prefixes: list[str], multi: bool, is_new: bool) -> None:
        counts = Counter("failed" if r.is_failure else r.status for r in report.results)
        run.results_total += len(report.results)
        run.results_failed += counts["failed"]
        run.results_passed += counts["passed"]
        run.scenario_prefixes = sorted(set(run.scenario_prefixes) | set(prefixes))
        run.multi_prefix = run.multi_prefix or multi

    @staticmethod
    def _group(repository: str, failures: list[Result]) -> dict[str, _Group]:
        groups: dict[str, _Group] = {}
        seen: Counter[str] = Counter()
        for result in failures:
            fp = fingerprint(repository, result)
            basis = "|".join(
                (
                    fp,
                    result.test_identity,
                    result.status,
                    result.message or "",
                    result.organization_under_test or "",
                )
            )
            seen[basis] += 1
            key = hashlib.sha256(f"{basis}|{seen[basis]}".encode()).hexdigest()[:40]
            groups.setdefault(fp, _Group(fp, [])).results.append((result, key))
        return groups

    @staticmethod
    def _existing_occurrence_keys(session: Session, run_pk: int, groups: dict[str, _Group]) -> set[str]:
        keys = [k for g in groups.values() for _, k in g.results]
        found: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found.update(
                session.scalars(
                    select(Occurrence.occurrence_key).where(
                        Occurrence.run_pk == run_pk, col(Occurrence.occurrence_key).in_(chunk)
                    )
                )
            )
        return found

    @staticmethod
    def _open_incidents(session: Session, fingerprints: list[str]) -> dict[str, Incident]:
        found: dict[str, Incident] = {}
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start : start + _CHUNK]
            query = select(Incident).where(col(Incident.open_key).in_(chunk)).order_by(col(Incident.id))
            if session.get_bind().dialect.name == "postgresql":
                # Lock the open incidents we will add to, so concurrent ingests count every
                # occurrence (read committed would otherwise lose one replica's increment).
                query = query.with_for_update()
            for incident in session.exec(query):
                found[incident.fingerprint] = incident
        return found

    def _recent_flakes(self, session: Session, fingerprints: list[str], now: datetime) -> dict[str, Incident]:
        """A resolved flake that fails again within the recurrence window is the same episode:
        the flake policy says it reopens and escalates rather than starting over."""
        if not fingerprints:
            return {}
        since = utc(now - self.runbook.policy.flake.recurrence_window)
        found: dict[str, Incident] = {}
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start : start + _CHUNK]
            rows = session.exec(
                select(Incident)
                .where(
                    col(Incident.fingerprint).in_(chunk),
                    Incident.status == "resolved",
                    Incident.failure_class == FailureClass.FLAKE_CONCURRENCY.value,
                    col(Incident.resolved_at) >= since,
                )
                .order_by(col(Incident.id).desc())
            )
            for incident in rows:
                found.setdefault(incident.fingerprint, incident)
        return found

    # -- incidents ------------------------------------------------------------------------------

    def _new_incident(self, report: Report, run: Run, group: _Group, now: datetime) -> Incident:
        first = group.first
        policy = self.runbook.policy
        contract_violation = not (first.scenario_id and first.invariant_id)
        occurred = utc(report.run.finished_at or now)
        incident = Incident(
            fingerprint=group.fingerprint,
            open_key=group.fingerprint,
            repository=report.run.repository,
            scenario_id=first.scenario_id,
            invariant_id=first.invariant_id,
            test_identity=first.test_identity,
            test_file=first.test_file,
            symptom=short_symptom(first.message),
            organization_under_test=first.organization_under_test,
            key_entity_ids=dict(first.key_entity_ids),
            suite=report.run.suite,
            channel=self.runbook.routing.channel_for_suite(report.run.suite),
            severity=policy.default_severity.value,
            contract_violation=contract_violation,
            documentation_gap=self._documentation_gap(first),
            multi_prefix=False,
            occurrence_count=len(group.results),
            first_seen=occurred,
            last_seen=occurred,
            first_run_pk=run.id,
            last_run_pk=run.id,
            classify_deadline=utc(now + policy.classify_within),
            created_at=utc(now),
            updated_at=utc(now),
        )
        suggestion = self.suggest_owner(first)
        if suggestion:
            incident.suggested_class, incident.suggested_reason = suggestion
        if contract_violation:
            # Seed 001: a failure without both ids is a harness/diagnostics defect, filed as such.
            incident.failure_class = FailureClass.HARNESS_DIAGNOSTICS.value
            incident.class_source = "contract"
            incident.classified_at = utc(now)
        return incident

    def suggest_owner(self, result: Result) -> tuple[str, str] | None:
        routing, taxonomy = self.runbook.routing, self.runbook.taxonomy
        match = routing.owner_for_path(result.test_file)
        if match:
            failure_class, pattern = match
            return failure_class.value, f"test file {result.test_file} matches scope {pattern}"
        for label, entry in (
            ("scenario", taxonomy.scenario(prefix_of(result.scenario_id))),
            ("invariant", taxonomy.invariant(prefix_of(result.invariant_id))),
        ):
            if entry is not None and entry.likely_class is not None:
                return (
                    entry.likely_class.value,
                    f"{label} prefix {entry.prefix}-* is usually {entry.likely_class.value}",
                )
        return None

    def _documentation_gap(self, result: Result) -> str | None:
        gaps = []
        scenario_prefix, invariant_prefix = prefix_of(result.scenario_id), prefix_of(result.invariant_id)
        if result.scenario_id and self.runbook.taxonomy.scenario(scenario_prefix) is None:
            gaps.append(f"scenario prefix {scenario_prefix or result.scenario_id} is not in the taxonomy")
        if result.invariant_id and self.runbook.taxonomy.invariant(invariant_prefix) is None:
            gaps.append(f"invariant prefix {invariant_prefix or result.invariant_id} is not in the taxonomy")
        return "; ".join(gaps) or None

    @staticmethod
    def _insert_incidents(session: Session, incidents: list[Incident]) -> None:
        if not incidents:
            return
        session.add_all(incidents)
        session.flush()

    def _announce_new(self, session: Session, incident: Incident, group: _Group, run: Run, effects: Effects) -> None:
        assert incident.id is not None
        iid = incident.id
        effects.record(
            "created",
            f"{incident.key} opened from run {run.repository}#{run.run_id} "
            f"({incident.scenario_id or 'no scenarioId'} / {incident.invariant_id or 'no invariantId'})",
            incident_id=iid,
            run_pk=run.id,
            source="ingest",
            data={"fingerprint": incident.fingerprint, "occurrences": len(group.results)},
        )
        if incident.suggested_class:
            effects.record(
                "routed",
                f"Suggested owner: {incident.suggested_class} because {incident.suggested_reason}",
                incident_id=iid,
                source="ingest",
                data={"class": incident.suggested_class, "reason": incident.suggested_reason},
            )
        if incident.contract_violation:
            effects.record(
                "classified",
                "Classified harness_diagnostics by the contract check: the failure lacks "
                + " and ".join(
                    n
                    for n, v in (("scenarioId", incident.scenario_id), ("invariantId", incident.invariant_id))
                    if not v
                ),
                incident_id=iid,
                source="rule",
                data={"class": incident.failure_class, "rule": "contract"},
            )
            effects.enqueue("bead_file", f"bead:{iid}", {"reason": "contract_violation"}, incident_id=iid, lane="beads")
        if incident.documentation_gap:
            effects.record("documentation_gap", incident.documentation_gap, incident_id=iid, source="ingest")
        effects.enqueue("card", f"card:{iid}:{incident.revision}", incident_id=iid, lane=incident.channel)
        if incident.failure_class is None:
            arm_timer(
                session,
                subject=f"incident:{iid}",
                kind="classify",
                due_at=as_utc(incident.classify_deadline),
                incident_id=iid,
            )

    def _absorb(self, incident: Incident, run: Run, added: int, now: datetime, multi: bool, effects: Effects) -> None:
        assert incident.id is not None
        incident.occurrence_count += added
        incident.last_seen = utc(run.finished_at or now)
        incident.last_run_pk = run.id
        incident.updated_at = utc(now)
        incident.revision += 1
        effects.record(
            "occurrence",
            f"Seen again in run {run.repository}#{run.run_id} attempt {run.run_attempt} (+{added}, "
            f"{incident.occurrence_count} in all)",
            incident_id=incident.id,
            run_pk=run.id,
            source="ingest",
            data={"added": added, "total": incident.occurrence_count},
        )
        effects.enqueue(
            "thread_post",
            f"recur:{incident.id}:{run.id}",
            {"template": "occurrence", "run_pk": run.id, "added": added},
            incident_id=incident.id,
            lane=incident.channel,
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )

    def _reopen_flake(self, incident: Incident, effects: Effects, now: datetime) -> None:
        assert incident.id is not None
        incident.status = "open"
        incident.open_key = incident.fingerprint
        incident.milestone = None
        incident.resolved_at = None
        incident.revision += 1
        effects.record(
            "reopened",
            f"Flake recurred within {self.runbook.policy.flake.recurrence_window}: reopened and escalated "
            "(flakes are fixed deterministically, never rerun until green)",
            incident_id=incident.id,
            source="rule",
        )
        enqueue_page(
            effects,
            self.runbook,
            incident,
            targets_for(self.runbook, incident, ["owner", "escalation"]),
            reason="flake_recurred",
            step=str(incident.revision),
        )
        if incident.bead_id:
            effects.enqueue(
                "bead_reopen",
                f"bead-reopen:{incident.id}:{incident.revision}",
                incident_id=incident.id,
                lane="beads",
            )

    def _flag_multi_prefix(self, run: Run, prefixes: list[str], incidents: list[Incident], effects: Effects) -> None:
        """Seed 001: failures across several scenario classes point at the harness or a shared
        service. One run-level escalation, not one per incident."""
        for incident in incidents:
            incident.multi_prefix = True
        effects.record(
            "multi_prefix",
            f"Run spans {len(prefixes)} scenario prefixes ({', '.join(prefixes)}): likely harness or "
            "shared-service regression; escalating once for the run",
            run_pk=run.id,
            source="rule",
            data={"prefixes": prefixes, "incidents": [i.id for i in incidents]},
        )
        harness = resolve_target(self.runbook, "escalation", FailureClass.HARNESS_DIAGNOSTICS.value)
        ref = {
            "role": harness.role,
            "class": harness.failure_class,
            "reason": "multi_prefix",
            "step": f"run-{run.id}",
        }
        effects.enqueue(
            "run_escalation",
            f"run-escalation:{run.id}",
            {"run_pk": run.id, "prefixes": prefixes, "incident_ids": [i.id for i in incidents]},
            lane=self.runbook.routing.channel_for_suite(run.suite),
        )
        if harness.dm_user:
            effects.enqueue(
                "dm",
                f"run-escalation:{run.id}:dm",
                {**ref, "user": harness.dm_user, "run_pk": run.id},
                lane=f"dm:{harness.dm_user}",
            )
        if harness.target.pagerduty_routing_key:
            effects.enqueue(
                "pagerduty",
                f"run-escalation:{run.id}:pd",
                {**ref, "action": "trigger", "run_pk": run.id},
                lane="pagerduty",
            )

    @staticmethod
    def _occurrence_row(fp: str, run: Run, result: Result, key: str, now: datetime) -> dict[str, Any]:
        return {
            "fingerprint": fp,
            "run_pk": run.id,
            "occurrence_key": key,
            "status": result.status,
            "scenario_id": result.scenario_id,
            "invariant_id": result.invariant_id,
            "test_file": result.test_file,
            "test_name": result.test_name,
            "message": result.message,
            "detail": result.detail,
            "organization_under_test": result.organization_under_test,
            "key_entity_ids": dict(result.key_entity_ids),
            "evidence": [e.model_dump(by_alias=True, exclude_none=True) for e in result.evidence],
            "occurred_at": utc(run.finished_at or now),
        }
