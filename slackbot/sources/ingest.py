"""Ingest a report: one transaction from raw results to grouped incidents and pending effects.

The whole report lands or nothing does. Re-sending the same report adds nothing, because every
occurrence carries a key derived from its content and ``(run, key)`` is unique. Each failure is
routed to its playbook (``Playbooks.select``); the incident core opens, counts or reopens.
"""

from __future__ import annotations

import gc
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config import FailureContext, Playbook, Playbooks
from slackbot.config.routing import Source
from slackbot.db.bulk import insert_many
from slackbot.db.engine import CHECKPOINTS, is_sqlite, session_scope
from slackbot.db.models import Incident, Occurrence, Run
from slackbot.domain.effects import EffectKind, Event, Lane
from slackbot.domain.ids import fingerprint, prefix_of, short_symptom
from slackbot.history import store as history
from slackbot.incidents import opening, reminders
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import Effects, table, utc
from slackbot.sources.report import Report, Result
from slackbot.suggest.advice import Advice

_CHUNK = 500
# Which fingerprints have an open incident: built once, the fingerprints one expanding parameter.
# Most of a report's failures are new, and the ORM query with 500 literal fingerprints (each
# coerced, the statement compiled) cost several times SQLite's answer; only the open incidents it
# finds are then loaded as ORM rows.
_OPEN_KEYS = sa_select(table(Incident).c.open_key).where(
    table(Incident).c.open_key.in_(bindparam("keys", expanding=True))
)
# Where a report came from (the timeline's source) and which routing source that is.
_ROUTING_SOURCE: dict[str, Source] = {"api": "report", "junit": "junit", "github": "github", "slack": "slack"}


_paused = 0
_paused_lock = threading.Lock()
PAUSE_RESULTS = 10_000


@contextmanager
def _collector_paused(pause: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while an ingest runs. An ingest allocates tens of
    thousands of objects that live until it ends (the report, the rows, the effects): that set
    off a full collection walking all of them, plus some fifty young ones, a sixth of a
    1,000-result ingest's time (bench/ingest.py). Reference counting still frees everything;
    cycles wait for the first collection after the last overlapping ingest ends. That first
    collection walks whatever the ingest left alive in one go, holding the GIL, so only reports
    up to PAUSE_RESULTS are paused for: a 100,000-result one would stall the event loop past
    tests/http/test_loop_stalls.py's bound. A 10,000-result one spent 0.1 to 0.15 s of its 1.2 s
    in two or three full collections, and its loop stalls were no longer paused than unpaused."""
    if not pause:
        yield
        return
    global _paused
    with _paused_lock:
        ours = _paused > 0 or gc.isenabled()  # paused by someone else: theirs to enable again
        if ours:
            _paused += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _paused_lock:
                _paused -= 1
                if _paused == 0:
                    gc.enable()


# SQLite's page cache per connection while an ingest writes, in KiB per failing result. With its
# default (2,000 KiB) the pages a 1,000-result report touches in a database of 100,000 incidents
# (5.7 MB of them written, against 2.6 MB into an empty one: every new incident lands on a random
# leaf of the fingerprint and open_key indexes) did not fit, and were read from the file again
# when the next statement came back to them.
CACHE_KIB_PER_RESULT = 8
# No more: the C allocator keeps the pages it frees, so the bot's RSS stays where the cache took it.
# With 64 MiB a 10,000-result report into 100,000 incidents was 1.10x its time into an empty
# database against 1.14x with the default (in-process, 6 alternating pairs each), and the bot kept
# 50 MB more after it (255 MB against 205 MB).
CACHE_KIB_MAX = 16_384


@contextmanager
def _unit_of_work(engine: Engine, checkpoint: Callable[[Engine], None], results: int) -> Iterator[Session]:
    """``session_scope``, tuned on SQLite for one large write (both settings are restored once the
    unit ends, while it still holds the connection, before the pool hands it on):

    - its commit never copies the write-ahead log into the database file: ``checkpoint`` does that
      after it, off the request's path. A commit that takes the log past ``wal_autocheckpoint``
      pages (1,000: about every second 1,000-result report; every 10,000-result one) would
      otherwise checkpoint before it returns, 20 to 200 ms that CI waits for before its 202;
    - its page cache holds what the report writes (``CACHE_KIB_PER_RESULT``). Into 100,000
      incidents that took a 1,000-result ingest from 1.19-1.23x its time into an empty database
      to 1.14-1.16x (in-process, 12 reports alternating). Shrinking the cache back frees it."""
    with session_scope(engine) as session:
        if is_sqlite(engine):
            _tune_for_ingest(session, engine, checkpoint, results)
        yield session


def _tune_for_ingest(session: Session, engine: Engine, checkpoint: Callable[[Engine], None], results: int) -> None:
    # the driver's own connection: a PRAGMA through SQLAlchemy would be a statement of the unit
    driver = session.connection().connection.driver_connection
    assert driver is not None
    (autocheckpoint,) = driver.execute("PRAGMA wal_autocheckpoint").fetchone()
    (cache,) = driver.execute("PRAGMA cache_size").fetchone()
    wanted = -min(CACHE_KIB_MAX, CACHE_KIB_PER_RESULT * results)
    restores = []
    if autocheckpoint > 0:  # else checkpoints are off on this connection: nothing to move
        driver.execute("PRAGMA wal_autocheckpoint=0")
        restores.append(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        event.listen(session, "after_commit", lambda _: checkpoint(engine), once=True)
    # cache_size is KiB when negative, pages when positive
    kib = -cache if cache < 0 else cache * driver.execute("PRAGMA page_size").fetchone()[0] // 1024
    if kib < -wanted:
        driver.execute(f"PRAGMA cache_size={wanted}")
        restores.append(f"PRAGMA cache_size={int(cache)}")

    def restore(_: Session) -> None:
        for statement in restores:
            driver.execute(statement)

    if restores:
        event.listen(session, "after_commit", restore, once=True, insert=True)
        event.listen(session, "after_rollback", restore, once=True)


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
    playbook: str
    failure_class: str | None
    contract_violation: bool
    documentation_gap: str | None

    def resolve(self, ref: opening.Ref) -> None:
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
            "playbook": self.playbook,
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
    playbook: Playbook
    results: list[tuple[Result, str]]  # (result, occurrence key)

    @property
    def first(self) -> Result:
        return self.results[0][0]


class IngestService:
    def __init__(
        self, playbooks: Playbooks, clock: Clock, checkpoint: Callable[[Engine], None] = CHECKPOINTS.soon
    ) -> None:
        self.playbooks = playbooks
        self.clock = clock
        self.checkpoint = checkpoint  # after each ingest's commit (see _unit_of_work)
        self.core = IncidentCore(playbooks, clock)

    # -- public ---------------------------------------------------------------------------------

    def ingest_report(
        self,
        engine: Engine,
        report: Report,
        *,
        source: str = "api",
        then: Callable[[Session, IngestResult, Effects], None] | None = None,
        attempts: int = 5,
    ) -> IngestResult:
        """Ingest in its own transaction, with the caller's own rows (``then``: a reply, a timeline
        note) in the same one. Two replicas ingesting the same failure at once collide on a unique
        key (run identity, open incident fingerprint); the loser retries and then sees the winner's
        rows, so the outcome is the same as if they had taken turns."""
        for attempt in range(attempts):
            try:
                paused = _collector_paused(len(report.results) <= PAUSE_RESULTS)
                with paused, _unit_of_work(engine, self.checkpoint, len(report.results)) as session:
                    result = self.ingest(session, report, source=source)
                    if then is not None:
                        effects = Effects(now=self.clock.now())
                        then(session, result, effects)
                        effects.flush(session)
                    return result
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
        # -- test history (issue 16): every result this report carried, passes included ------
        recorded = history.record(session, run, report.results, now, new_run=run_is_new)
        # ------------------------------------------------------------------------------------
        failures = [r for r in report.results if r.is_failure]
        groups = self._group(report, failures, _ROUTING_SOURCE.get(source, "report"))
        # A run seen for the first time has no occurrences yet: nothing to look up or filter.
        known_keys = self._existing_occurrence_keys(session, run.id, groups) if not run_is_new else set()
        fresh_groups = {
            fp: [(r, k) for r, k in g.results if k not in known_keys] if known_keys else g.results
            for fp, g in groups.items()
        }
        duplicate = not run_is_new and not any(fresh_groups.values())

        escalating = self._multi_prefix(groups)
        prefixes = sorted({p for found in escalating.values() for p in found})
        if run_is_new or not duplicate:
            self._count_run(run, report, prefixes, bool(escalating))
            session.add(run)

        open_incidents = self._open_incidents(session, list(fresh_groups))
        closed = [fp for fp in fresh_groups if fp not in open_incidents]
        reopenable = opening.reopenable(session, self.playbooks, closed, now)
        # -- suggestions (issue 16): history, run shape and the team's past, read once ----------
        opening_firsts = [groups[fp].first for fp in closed if fresh_groups[fp] and fp not in reopenable]
        advice = Advice(session, report.run.repository, report.run.branch, [g.first for g in groups.values()])
        advice.prepare(opening_firsts)
        # ------------------------------------------------------------------------------------
        ingested: list[IngestedIncident] = []
        occurrence_rows: list[dict[str, Any]] = []
        new: list[tuple[opening.Opening, dict[str, Any]]] = []
        refs: dict[str, opening.Ref] = {}
        absorbed: set[int] = set()  # recurrences post in their thread: reminders move back
        occurred_at = utc(run.finished_at or now)

        for fp, fresh in fresh_groups.items():
            group = groups[fp]
            incident = open_incidents.get(fp)
            if incident is None and fresh:
                incident = reopenable.get(fp)
                if incident is not None:
                    playbook = self.playbooks.get(incident.playbook)
                    opening.reopen(session, playbook, incident, effects)
                    # resolving cancelled its reminders; open again, it is reminded again
                    reminders.push_back(session, incident, now, playbook.policy.status_update_every)
            if incident is None and not fresh:
                continue
            if incident is None:
                planned = self._opening(report, run, group, now, escalating.get(group.playbook.name), advice)
                new.append((planned, opening.incident_row(planned, now)))
                playbook_name = group.playbook.name
            else:
                if fresh:
                    playbook = self.playbooks.get(incident.playbook)
                    opening.recur(session, playbook, incident, run, len(fresh), effects)
                    absorbed.add(incident.id or 0)
                refs[fp] = opening.Ref.of(incident)
                playbook_name = incident.playbook
            first = group.first
            ingested.append(
                IngestedIncident(
                    "", 0, fp, incident is None, len(fresh), first.scenario_id, first.invariant_id,
                    playbook_name, None, False, None,
                )
            )  # fmt: skip
            occurrence_rows.extend(self._occurrence_row(fp, run, r, k, occurred_at) for r, k in fresh)

        inserted = opening.insert_rows(session, [row for _, row in new])
        for (planned, row), ref in zip(new, inserted, strict=True):
            refs[row["fingerprint"]] = ref
            opening.announce(planned, ref, row, effects, created=self._created(run, row), source="ingest")
            # -- suspect changes (issue 16): GitHub's compare, fetched after commit ----------------
            shas = advice.suspect_range(groups[row["fingerprint"]].first)
            if shas is not None:
                payload = {"repository": report.run.repository, "base": shas[0], "head": shas[1]}
                key = f"suspects:{ref.id}:{shas[0]}...{shas[1]}"
                effects.enqueue(EffectKind.SUSPECTS, key, payload, incident_id=ref.id, lane=Lane.GITHUB)
            # --------------------------------------------------------------------------------
        for row in occurrence_rows:
            row["incident_id"] = refs[row.pop("fingerprint")].id
        insert_many(session, table(Occurrence), occurrence_rows)
        for item in ingested:
            item.resolve(refs[item.fingerprint])
        intervals: dict[timedelta | None, list[int]] = {}
        for incident in open_incidents.values():
            if incident.id in absorbed:
                interval = self.playbooks.get(incident.playbook).policy.status_update_every
                intervals.setdefault(interval, []).append(incident.id or 0)
        for interval, ids in intervals.items():
            reminders.push_back_many(session, ids, now, interval)

        if not duplicate:
            for name, found in escalating.items():
                playbook = self.playbooks.get(name)
                fps = [fp for fp, g in groups.items() if g.playbook.name == name and fp in refs]
                members = set(fps)
                existing = [i for fp, i in (open_incidents | reopenable).items() if fp in members]
                opening.run_escalation(playbook, run, found, existing, [refs[fp].id for fp in fps], effects)
            effects.record(
                Event.RUN_INGESTED,
                f"Run {report.run.repository}#{report.run.run_id} attempt {report.run.run_attempt}: "
                f"{len(failures)} failing of {len(report.results)} results",
                run_pk=run.id,
                source=source,
                data={"incidents": [i.key for i in ingested]},
            )
        effects.flush(session)
        if recorded is not None:  # validation by evidence: what incidents awaiting green runs see
            self.core.witness(session, run, recorded.outcomes)
            # a rerun's passes: flakes seen after opening. Not looked for when the branch's
            # reports, read for the suggestions, hold no earlier run of its sha or attempt.
            if advice.may_rerun(run.id, run.run_id, run.sha, run.run_attempt):
                self.core.resuggest(session, run, recorded)
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
    def _created(run: Run, row: dict[str, Any]) -> opening.Announcement:
        ids = f"{row['scenario_id'] or 'no scenarioId'} / {row['invariant_id'] or 'no invariantId'}"
        return lambda key: f"{key} opened from run {run.repository}#{run.run_id} ({ids})"

    @staticmethod
    def _count_run(run: Run, report: Report, prefixes: list[str], multi: bool) -> None:
        counts = Counter("failed" if r.is_failure else r.status for r in report.results)
        run.results_total += len(report.results)
        run.results_failed += counts["failed"]
        run.results_passed += counts["passed"]
        run.scenario_prefixes = sorted(set(run.scenario_prefixes) | set(prefixes))
        run.multi_prefix = run.multi_prefix or multi

    def _group(self, report: Report, failures: list[Result], source: Source) -> dict[str, _Group]:
        groups: dict[str, _Group] = {}
        seen: Counter[str] = Counter()
        info = report.run
        router = self.playbooks.router(
            FailureContext(
                source=source,
                repository=info.repository,
                suite=info.suite,
                workflow=info.workflow,
                branch=info.branch,
            )
        )
        for result in failures:
            identity = result.test_identity
            fp = fingerprint(info.repository, result.scenario_id, result.invariant_id, identity)
            basis = "|".join(
                (
                    fp,
                    identity,
                    result.status,
                    result.message or "",
                    result.organization_under_test or "",
                )
            )
            seen[basis] += 1
            key = hashlib.sha256(f"{basis}|{seen[basis]}".encode()).hexdigest()[:40]
            group = groups.get(fp)
            if group is None:
                playbook = router.pick(result.test_file, result.test_name, result.command)
                group = groups[fp] = _Group(fp, playbook, [])
            group.results.append((result, key))
        return groups

    @staticmethod
    def _multi_prefix(groups: dict[str, _Group]) -> dict[str, list[str]]:
        """Per playbook with a run-level escalation: the scenario prefixes its failures span,
        when they reach its threshold (seed 001: several scenario classes in one run)."""
        spans: dict[str, set[str]] = {}
        playbooks: dict[str, Playbook] = {}
        for group in groups.values():
            playbook = group.playbook
            if playbook.run_escalation_class is None:
                continue
            playbooks[playbook.name] = playbook
            for result, _ in group.results:
                prefix = prefix_of(result.scenario_id)
                if prefix:
                    spans.setdefault(playbook.name, set()).add(prefix)
        return {
            name: sorted(found)
            for name, found in spans.items()
            if len(found) >= playbooks[name].policy.multi_prefix_threshold
        }

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
        keys: list[str] = []
        for start in range(0, len(fingerprints), _CHUNK):
            keys.extend(session.scalars(_OPEN_KEYS, {"keys": fingerprints[start : start + _CHUNK]}))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            # asked again, as ORM rows: on PostgreSQL locked, and only those still open by then
            query = select(Incident).where(col(Incident.open_key).in_(chunk)).order_by(col(Incident.id))
            if session.get_bind().dialect.name == "postgresql":
                # Lock the open incidents we will add to, so concurrent ingests count every
                # occurrence (read committed would otherwise lose one replica's increment).
                query = query.with_for_update()
            for incident in session.exec(query):
                found[incident.fingerprint] = incident
        return found

    # -- new incidents --------------------------------------------------------------------------

    def _opening(
        self, report: Report, run: Run, group: _Group, now: datetime, spans: list[str] | None, advice: Advice
    ) -> opening.Opening:
        first, playbook = group.first, group.playbook
        occurred = report.run.finished_at or now
        suggestion = advice.suggest(playbook, first, spans)
        return opening.Opening(
            playbook=playbook,
            fingerprint=group.fingerprint,
            repository=report.run.repository,
            test_identity=first.test_identity,
            suite=report.run.suite,
            symptom=short_symptom(first.message or first.command),
            first_seen=occurred,
            last_seen=occurred,
            run_pk=run.id,
            occurrences=len(group.results),
            scenario_id=first.scenario_id,
            invariant_id=first.invariant_id,
            test_file=first.test_file,
            organization_under_test=first.organization_under_test,
            key_entity_ids=dict(first.key_entity_ids),
            multi_prefix=spans is not None,
            documentation_gap=documentation_gap(playbook, first.scenario_id, first.invariant_id),
            suggested=(suggestion.failure_class, suggestion.reason(playbook)) if suggestion else None,
            suggested_confidence=suggestion.confidence if suggestion else None,
            # kept for the evidence that comes later to join them: suspect changes, a passing rerun
            suggestion_votes=suggestion.as_json() if suggestion else None,
        )

    @staticmethod
    def _occurrence_row(fp: str, run: Run, result: Result, key: str, occurred_at: datetime) -> dict[str, Any]:
        return {
            "fingerprint": fp,
            "run_pk": run.id,
            "occurrence_key": key,
            "status": result.status,
            "scenario_id": result.scenario_id,
            "invariant_id": result.invariant_id,
            "test_file": result.test_file,
            "test_name": result.test_name,
            "command": result.command,
            "message": result.message,
            "detail": result.detail,
            "organization_under_test": result.organization_under_test,
            "key_entity_ids": dict(result.key_entity_ids),
            "evidence": [e.model_dump(by_alias=True, exclude_none=True) for e in result.evidence],
            "occurred_at": occurred_at,
        }


def documentation_gap(playbook: Playbook, scenario_id: str | None, invariant_id: str | None) -> str | None:
    """An id whose prefix the playbook's taxonomy does not explain. A playbook without a taxonomy
    of that kind of id says nothing about prefixes, so it has no gap to report."""
    taxonomy, gaps = playbook.taxonomy, []
    if scenario_id and taxonomy.scenarios and playbook.scenario_entry(scenario_id) is None:
        gaps.append(f"scenario prefix {prefix_of(scenario_id) or scenario_id} is not in the taxonomy")
    if invariant_id and taxonomy.invariants and playbook.invariant_entry(invariant_id) is None:
        gaps.append(f"invariant prefix {prefix_of(invariant_id) or invariant_id} is not in the taxonomy")
    return "; ".join(gaps) or None
