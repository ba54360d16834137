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

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config.models import FailureClass, Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, Run
from slackbot.report import Report, Result
from slackbot.services import reminders
from slackbot.services.checklists import enqueue_checklist
from slackbot.services.effects import Effects, table, utc
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

    @classmethod
    def pending(cls, fp: str, first: Result, *, created: bool, added: int) -> IngestedIncident:
        """Known before the incident row has an id; ``resolve`` fills in the rest."""
        return cls("", 0, fp, created, added, first.scenario_id, first.invariant_id, None, False, None)

    def resolve(self, ref: _Ref) -> None:
        self.id, self.key = ref.id, ref.key
        self.failure_class = ref.failure_class
        self.contract_violation = ref.contract_violation
        self.documentation_gap = ref.documentation_gap

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


@dataclass(frozen=True)
class _Ref:
    """What the rest of an ingest needs to know about an incident, new (a bulk-inserted row) or
    existing (an ORM object): building ORM objects for thousands of new incidents is the slow part."""

    id: int
    channel: str
    failure_class: str | None
    contract_violation: bool
    documentation_gap: str | None

    @property
    def key(self) -> str:
        return f"INC-{self.id}"

    @classmethod
    def of(cls, incident: Incident) -> _Ref:
        assert incident.id is not None
        return cls(
            incident.id,
            incident.channel,
            incident.failure_class,
            incident.contract_violation,
            incident.documentation_gap,
        )


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
        new_rows: list[tuple[dict[str, Any], _Group]] = []
        refs: dict[str, _Ref] = {}
        absorbed: list[int] = []  # recurrences post in their thread: reminders move back

        for fp, fresh in fresh_groups.items():
            group = groups[fp]
            incident = open_incidents.get(fp)
            if incident is None and fresh:
                incident = reopenable.get(fp)
                if incident is not None:
                    self._reopen_flake(incident, effects, now)
                    # resolving cancelled its reminders; open again, it is reminded again
                    reminders.push_back(session, incident, now, self.runbook.policy.status_update_every)
            if incident is None and not fresh:
                continue
            if incident is None:
                new_rows.append((self._new_incident_row(report, run, group, now), group))
            else:
                if fresh:
                    self._absorb(incident, run, len(fresh), now, effects)
                    absorbed.append(incident.id or 0)
                refs[fp] = _Ref.of(incident)
            ingested.append(IngestedIncident.pending(fp, group.first, created=incident is None, added=len(fresh)))
            occurrence_rows.extend(self._occurrence_row(fp, run, r, k, now) for r, k in fresh)

        inserted = self._insert_incidents(session, [row for row, _ in new_rows])
        for (row, group), ref in zip(new_rows, inserted, strict=True):
            refs[row["fingerprint"]] = ref
            self._announce_new(ref, row, len(group.results), run, effects)
        for row in occurrence_rows:
            row["incident_id"] = refs[row.pop("fingerprint")].id
        for start in range(0, len(occurrence_rows), _CHUNK * 4):
            session.execute(table(Occurrence).insert(), occurrence_rows[start : start + _CHUNK * 4])
        for item in ingested:
            item.resolve(refs[item.fingerprint])
        reminders.push_back_many(session, absorbed, now, self.runbook.policy.status_update_every)

        if not duplicate:
            if run.multi_prefix:
                existing = [i for fp, i in (open_incidents | reopenable).items() if fp in refs]
                self._flag_multi_prefix(run, run.scenario_prefixes, existing, [r.id for r in refs.values()], effects)
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

    def _new_incident_row(self, report: Report, run: Run, group: _Group, now: datetime) -> dict[str, Any]:
        first = group.first
        policy = self.runbook.policy
        contract_violation = not (first.scenario_id and first.invariant_id)
        occurred = utc(report.run.finished_at or now)
        suggestion = self.suggest_owner(first)
        row: dict[str, Any] = {
            "fingerprint": group.fingerprint,
            "open_key": group.fingerprint,
            "repository": report.run.repository,
            "scenario_id": first.scenario_id,
            "invariant_id": first.invariant_id,
            "test_identity": first.test_identity,
            "test_file": first.test_file,
            "symptom": short_symptom(first.message),
            "organization_under_test": first.organization_under_test,
            "key_entity_ids": dict(first.key_entity_ids),
            "suite": report.run.suite,
            "channel": self.runbook.routing.channel_for_suite(report.run.suite),
            "status": "open",
            "severity": policy.default_severity.value,
            "contract_violation": contract_violation,
            "documentation_gap": self._documentation_gap(first),
            "multi_prefix": run.multi_prefix,
            "occurrence_count": len(group.results),
            "first_seen": occurred,
            "last_seen": occurred,
            "first_run_pk": run.id,
            "last_run_pk": run.id,
            "classify_deadline": utc(now + policy.classify_within),
            "suggested_class": suggestion[0] if suggestion else None,
            "suggested_reason": suggestion[1] if suggestion else None,
            "failure_class": None,
            "class_source": None,
            "classified_at": None,
            "escalation_level": 0,
            "bead_state": "none",
            "revision": 0,
            "created_at": utc(now),
            "updated_at": utc(now),
        }
        if contract_violation:
            # Seed 001: a failure without both ids is a harness/diagnostics defect, filed as such.
            row |= {
                "failure_class": FailureClass.HARNESS_DIAGNOSTICS.value,
                "class_source": "contract",
                "classified_at": utc(now),
                "bead_state": "pending",
            }
        return row

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
    def _insert_incidents(session: Session, rows: list[dict[str, Any]]) -> list[_Ref]:
        refs: list[_Ref] = []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            incidents = table(Incident)
            ids = (
                session.execute(incidents.insert().returning(incidents.c.id, sort_by_parameter_order=True), chunk)
                .scalars()
                .all()
            )
            refs.extend(
                _Ref(int(i), r["channel"], r["failure_class"], r["contract_violation"], r["documentation_gap"])
                for i, r in zip(ids, chunk, strict=True)
            )
        return refs

    def _announce_new(self, ref: _Ref, row: dict[str, Any], occurrences: int, run: Run, effects: Effects) -> None:
        iid = ref.id
        effects.record(
            "created",
            f"{ref.key} opened from run {run.repository}#{run.run_id} "
            f"({row['scenario_id'] or 'no scenarioId'} / {row['invariant_id'] or 'no invariantId'})",
            incident_id=iid,
            run_pk=run.id,
            source="ingest",
            data={"fingerprint": row["fingerprint"], "occurrences": occurrences},
        )
        if row["suggested_class"]:
            effects.record(
                "routed",
                f"Suggested owner: {row['suggested_class']} because {row['suggested_reason']}",
                incident_id=iid,
                source="ingest",
                data={"class": row["suggested_class"], "reason": row["suggested_reason"]},
            )
        if ref.contract_violation:
            missing = [
                n for n, v in (("scenarioId", row["scenario_id"]), ("invariantId", row["invariant_id"])) if not v
            ]
            effects.record(
                "classified",
                "Classified harness_diagnostics by the contract check: the failure lacks " + " and ".join(missing),
                incident_id=iid,
                source="rule",
                data={"class": ref.failure_class, "rule": "contract"},
            )
            effects.enqueue("bead_file", f"bead:{iid}", {"reason": "contract_violation"}, incident_id=iid, lane="beads")
        if ref.documentation_gap:
            effects.record("documentation_gap", ref.documentation_gap, incident_id=iid, source="ingest")
        effects.enqueue("card", f"card:{iid}:0", incident_id=iid, lane=ref.channel)
        if ref.failure_class is not None:  # classified by the contract rule: its checklist applies now
            enqueue_checklist(
                effects,
                incident_id=iid,
                channel=ref.channel,
                revision=0,
                failure_class=ref.failure_class,
                reclassified=False,
            )
        if ref.failure_class is None:
            effects.new_timer(
                subject=f"incident:{iid}", kind="classify", due_at=row["classify_deadline"], incident_id=iid
            )

    def _absorb(self, incident: Incident, run: Run, added: int, now: datetime, effects: Effects) -> None:
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
        if incident.bead_id or incident.bead_state == "pending":
            effects.enqueue(
                "bead_comment",
                f"bead-comment:{incident.id}:{run.id}",
                {
                    "text": f"Seen again in {run.url or run.repository + '#' + run.run_id} (+{added}, "
                    f"{incident.occurrence_count} occurrences in all)."
                },
                incident_id=incident.id,
                lane="beads",
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

    def _flag_multi_prefix(
        self, run: Run, prefixes: list[str], existing: list[Incident], incident_ids: list[int], effects: Effects
    ) -> None:
        """Seed 001: failures across several scenario classes point at the harness or a shared
        service. One run-level escalation, not one per incident."""
        for incident in existing:
            incident.multi_prefix = True
        effects.record(
            "multi_prefix",
            f"Run spans {len(prefixes)} scenario prefixes ({', '.join(prefixes)}): likely harness or "
            "shared-service regression; escalating once for the run",
            run_pk=run.id,
            source="rule",
            data={"prefixes": prefixes, "incidents": incident_ids},
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
            {"run_pk": run.id, "prefixes": prefixes, "incident_ids": incident_ids},
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
