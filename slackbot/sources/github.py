"""GitHub Actions runs in: failed runs become incidents from their report artifact, green runs
become validation evidence.

The webhook must answer within GitHub's 10 seconds and GitHub never redelivers on its own, so
the webhook only *accepts*: one transaction records the delivery id (de-duplication) and writes a
``github_run`` outbox row. Everything slow (listing artifacts, downloading, unzipping, ingesting)
runs from that row after commit, with the outbox's retries; a crash between accepting and
processing delays the work but cannot lose it.

Mapping a run onto the report format:

* identity (``repository``, ``runId``, ``runAttempt``, ``url``, ``branch``, ``sha``) comes from
  the webhook payload, which GitHub vouches for; a report file's own ``run`` block is ignored
  except for its ``suite``;
* the **suite** (which channel the cards go to) is the report's ``run.suite`` when the report
  says so, else taken from the workflow: a name or file path containing ``nightly`` means
  ``nightly``, ``smoke`` means ``smoke``, anything else ``full``;
* the **report artifact** is the one named by ``TRIAGE_GITHUB_REPORT_ARTIFACT`` (a glob), or by
  convention every artifact whose name contains ``report`` or ``junit``; inside it every
  ``*.json`` with ``schemaVersion`` (Report v1) and every ``*.xml`` JUnit file is read, and the
  results of all of them are ingested as one report (so multi-prefix detection sees the whole run);
* a failed run without a usable report, or whose report lists no failure, is itself a failure
  without ids: the contract check makes it a harness/diagnostics incident.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slackbot.clients.artifacts import ArchiveLimits, UnsafeArchive
from slackbot.clients.github_actions import ArtifactExpired, GitHubActions, GitHubApiError
from slackbot.clients.isolated import free_in_pieces, off_loop
from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, ProcessedDelivery, Run
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.states import IncidentStatus
from slackbot.incidents.effects import Effects, utc
from slackbot.sources.artifact_reader import RunReports, read_artifact
from slackbot.sources.ingest import IngestResult, IngestService
from slackbot.sources.report import MAX_RESULTS, Report, Result, RunInfo

__all__ = ["GitHubRunService", "RunReports", "WebhookError", "WorkflowRun", "is_report_artifact", "suite_for"]

log = logging.getLogger(__name__)

# gh's IsFailureState minus action_required (a run waiting for approval has not run any test).
FAILED_CONCLUSIONS = frozenset({"failure", "startup_failure", "timed_out"})
PASSED = "success"
REPORT_NAME_HINTS = ("report", "junit")
MAX_REPORT_ARTIFACTS = 5
NO_IDS = "no scenarioId/invariantId emitted"
# Run attempts are stored in an INTEGER column (PostgreSQL: 32 bits); run ids are GitHub's int64.
MAX_ATTEMPT = 2**31 - 1
MAX_RUN_ID = 2**63 - 1
# A run's times are believed only within these years: year 9999 (or an offset that overflows
# when converted to UTC) is not a time GitHub sends.
YEARS = range(2000, 2101)
DETAILS_LIMIT = 4000


class WebhookError(ValueError):
    """The payload is not a usable ``workflow_run`` event; the message names the field."""


def suite_for(*names: str | None) -> str:
    text = " ".join(n for n in names if n).lower()
    if "nightly" in text:
        return "nightly"
    if "smoke" in text:
        return "smoke"
    return "full"


def _time(run: dict[str, Any], key: str) -> datetime | None:
    """``run[key]`` as an aware UTC time; absent is None, anything else wrong is a WebhookError."""
    value = run.get(key)
    if value is None or value == "":
        return None
    where = f"workflow_run.{key}"
    if not isinstance(value, str):
        raise WebhookError(f"{where}: must be an ISO 8601 time, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        converted = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except ValueError:
        raise WebhookError(f"{where}: {value[:40]!r} is not an ISO 8601 time") from None
    except OverflowError:
        raise WebhookError(f"{where}: {value[:40]!r} is out of range when converted to UTC") from None
    if converted.year not in YEARS:
        raise WebhookError(f"{where}: year {converted.year} is out of range ({YEARS.start}-{YEARS.stop - 1})")
    return converted


def _strict_int(run: dict[str, Any], key: str, *, default: int | None, high: int) -> int:
    """GitHub's integers: a JSON ``true`` is not 1 and ``0`` is not a missing attempt."""
    value = run.get(key)
    if value is None and default is not None:
        return default
    if type(value) is not int or not 1 <= value <= high:
        raise WebhookError(f"workflow_run.{key}: must be an integer from 1 to {high}, got {value!r}"[:200])
    return value


def _text(run: dict[str, Any], key: str, limit: int) -> str | None:
    value = run.get(key)
    return value[:limit] if isinstance(value, str) else None


def is_report_artifact(name: str, pattern: str | None = None) -> bool:
    """``pattern`` (TRIAGE_GITHUB_REPORT_ARTIFACT) is a glob; without it, the convention."""
    if pattern:
        return fnmatch.fnmatchcase(name, pattern)
    lowered = name.lower()
    return any(hint in lowered for hint in REPORT_NAME_HINTS)


class WorkflowRun(BaseModel):
    """The parts of a ``workflow_run`` (webhook or REST) the bot uses; also the outbox job body."""

    repository: str
    run_id: str
    run_attempt: int = Field(default=1, ge=1, le=MAX_ATTEMPT, strict=True)
    name: str
    path: str | None = None
    workflow_id: int | None = None
    url: str | None = None
    branch: str | None = None
    sha: str | None = None
    status: str | None = None
    conclusion: str | None = None
    event: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_api(cls, repository: str, run: dict[str, Any], workflow_name: str | None = None) -> WorkflowRun:
        """From the ``workflow_run`` object (the webhook's, or ``GET …/actions/runs/{id}``)."""
        run_id = _strict_int(run, "id", default=None, high=MAX_RUN_ID)
        attempt = _strict_int(run, "run_attempt", default=1, high=MAX_ATTEMPT)
        workflow_id = run.get("workflow_id")
        path = run.get("path") if isinstance(run.get("path"), str) else None
        # ``name`` is often "" (octokit's own examples); the workflow's name or file then names it.
        name = run.get("name") or workflow_name or path or f"workflow {run.get('workflow_id', '?')}"
        started = "run_started_at" if run.get("run_started_at") else "created_at"
        return cls(
            repository=repository,
            run_id=str(run_id),
            run_attempt=attempt,
            name=str(name)[:200],
            path=path[:1000] if path else None,
            workflow_id=workflow_id if type(workflow_id) is int else None,
            url=_text(run, "html_url", 2000),
            branch=_text(run, "head_branch", 300),
            sha=_text(run, "head_sha", 64),
            status=_text(run, "status", 50),
            conclusion=_text(run, "conclusion", 50),
            event=_text(run, "event", 50),
            started_at=_time(run, started),
            finished_at=_time(run, "updated_at"),
        )

    @classmethod
    def unread(cls, repository: str, run_id: str, run_attempt: int | None) -> WorkflowRun:
        """A run named in a Slack alert whose own record GitHub would not give us readably: what
        the alert said, taken as failed (a CI notifier's alert is about a failure)."""
        return cls(
            repository=repository[:200],
            run_id=str(run_id)[:100],
            run_attempt=run_attempt if type(run_attempt) is int and 1 <= run_attempt <= MAX_ATTEMPT else 1,
            name=f"run {str(run_id)[:100]}",
            conclusion="failure",
        )

    @classmethod
    def from_webhook(cls, payload: object) -> WorkflowRun:
        if not isinstance(payload, dict):
            raise WebhookError("body must be a JSON object (a workflow_run event)")
        repository = payload.get("repository")
        if not isinstance(repository, dict) or not isinstance(repository.get("full_name"), str):
            raise WebhookError("repository.full_name: required")
        if not 3 <= len(repository["full_name"]) <= 200 or "/" not in repository["full_name"]:
            raise WebhookError("repository.full_name: must be owner/name, at most 200 characters")
        run = payload.get("workflow_run")
        if not isinstance(run, dict):
            raise WebhookError("workflow_run: required (an object)")
        workflow = payload.get("workflow")
        name = workflow.get("name") if isinstance(workflow, dict) else None
        return cls.from_api(repository["full_name"], run, name)

    @property
    def label(self) -> str:
        return f"{self.repository} {self.name} #{self.run_id} attempt {self.run_attempt}"

    @property
    def suite(self) -> str:
        return suite_for(self.name, self.path)

    @property
    def workflow_names(self) -> list[str]:
        """What a stored run's ``workflow`` may hold for this workflow (reports sent by
        ``triagebot send`` carry GITHUB_WORKFLOW, the name; ours carry the name too)."""
        names = [self.name, self.path, str(self.workflow_id) if self.workflow_id else None]
        return [n for n in dict.fromkeys(names) if n]

    def run_info(self, suite: str | None = None) -> RunInfo:
        return RunInfo(
            provider="github",
            repository=self.repository,
            run_id=self.run_id,
            run_attempt=self.run_attempt,
            url=self.url,
            workflow=self.name,
            suite=suite or self.suite,
            branch=self.branch,
            sha=self.sha,
            finished_at=self.finished_at,
        )


# ---------------------------------------------------------------------------------------------
# The REST client


def enqueue_source_reply(
    effects: Effects,
    reply_to: dict[str, Any],
    result: IngestResult | None,
    *,
    note: str = "",
    validated: list[int] | None = None,
) -> None:
    """Answer in the thread of the Slack message that asked (an alert, a reaction, a mention):
    one answer per message (``ts``), posted in its thread (``thread_ts``: the parent's ts when the
    message is itself a thread reply)."""
    channel, ts = str(reply_to["channel"]), str(reply_to["ts"])
    effects.enqueue(
        EffectKind.SOURCE_REPLY,
        Key.source_reply(channel, ts),
        {
            "channel": channel,
            "thread_ts": str(reply_to.get("thread_ts") or ts),
            "incidents": [{"id": i.id, "created": i.created} for i in (result.incidents if result else [])],
            "validated": validated or [],
            "duplicate": bool(result and result.duplicate),
            "note": note,
        },
        lane=channel,
    )


class GitHubRunService:
    def __init__(
        self,
        playbooks: Playbooks,
        clock: Clock,
        ingest: IngestService,
        *,
        report_artifact: str | None = None,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self.playbooks = playbooks
        self.clock = clock
        self.ingest = ingest
        self.report_artifact = report_artifact
        self.limits = limits or ArchiveLimits()
        self.invariant_prefixes = frozenset(e.prefix for p in playbooks for e in p.taxonomy.invariants)

    # -- accepting ------------------------------------------------------------------------------

    @staticmethod
    def wants(run: WorkflowRun) -> bool:
        return run.conclusion in FAILED_CONCLUSIONS or run.conclusion == PASSED

    def accept(self, engine: Engine, delivery_id: str, run: WorkflowRun) -> bool:
        """Record the delivery and queue its job in one transaction; False for a redelivery."""
        now = self.clock.now()
        try:
            with session_scope(engine) as session:
                session.add(ProcessedDelivery(source="github", delivery_id=delivery_id, received_at=utc(now)))
                session.flush()  # a redelivery collides here, before anything else is written
                effects = Effects(now=now)
                effects.enqueue(
                    EffectKind.GITHUB_RUN,
                    Key.github_delivery(delivery_id),
                    {"run": run.model_dump(mode="json"), "delivery": delivery_id},
                    lane=Lane.GITHUB,
                )
                effects.flush(session)
        except IntegrityError:
            return False
        return True

    def queue_fetch(
        self, effects: Effects, *, repository: str, run_id: str, run_attempt: int | None, reply_to: dict[str, Any]
    ) -> None:
        """A run named in a Slack message: fetch it like a webhook delivery, answer in that thread."""
        effects.enqueue(
            EffectKind.GITHUB_RUN,
            Key.github_fetch(str(reply_to["channel"]), str(reply_to["ts"])),
            {"repository": repository, "run_id": run_id, "run_attempt": run_attempt, "reply_to": reply_to},
            lane=Lane.GITHUB,
        )

    # -- processing (the outbox job) -------------------------------------------------------------

    async def process(self, engine: Engine, api: GitHubActions, job: dict[str, Any]) -> dict[str, Any]:
        """One job. A failure GitHub may recover from (5xx, rate limit, network) is raised for the
        outbox to retry (see :meth:`give_up` for when it stops); anything wrong with the run's
        record or its report becomes a problem named on the run's harness/diagnostics card."""
        reply_to: dict[str, Any] | None = job.get("reply_to")
        if "run" in job:
            run = WorkflowRun.model_validate(job["run"])
        else:
            data = await api.get_run(job["repository"], str(job["run_id"]), job.get("run_attempt"))
            try:
                run = WorkflowRun.from_api(job["repository"], data)
            except WebhookError as exc:
                run = WorkflowRun.unread(job["repository"], str(job["run_id"]), job.get("run_attempt"))
                problem = f"GitHub's record of the run could not be read: {exc}"
                return await self._ingest_failed(engine, run, RunReports(problems=[problem]), reply_to)
            if run.status != "completed":
                raise GitHubApiError(f"run {run.label} is still {run.status}", retryable=True, retry_after=60.0)
        if run.conclusion == PASSED:
            validated = await asyncio.to_thread(self.record_validation, engine, run, reply_to)
            return {"validated": validated}
        if run.conclusion not in FAILED_CONCLUSIONS:
            if reply_to is not None:
                await asyncio.to_thread(self._reply_only, engine, reply_to, f"run {run.label} ended {run.conclusion}")
            return {"ignored": run.conclusion}
        reports = await self.fetch_reports(api, run)
        return await self._ingest_failed(engine, run, reports, reply_to)

    async def _ingest_failed(
        self, engine: Engine, run: WorkflowRun, reports: RunReports, reply_to: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Building the report walks every result (up to 100,000): in the thread, with the ingest.
        result = await asyncio.to_thread(self._ingest, engine, run, reports, reply_to)
        return {
            "run": result.run_key,
            "files": reports.files,
            "problems": reports.problems,
            "incidents": [i.key for i in result.incidents],
        }

    async def give_up(self, engine: Engine, job: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """Retries are spent: a failed run (or one named in an alert) still ends as an incident,
        naming ``reason``. None for a job about a run that did not fail (nothing to open)."""
        if "run" in job:
            run = WorkflowRun.model_validate(job["run"])
            if run.conclusion not in FAILED_CONCLUSIONS:
                return None
        else:
            run = WorkflowRun.unread(str(job["repository"]), str(job["run_id"]), job.get("run_attempt"))
        return await self._ingest_failed(engine, run, RunReports(problems=[reason]), job.get("reply_to"))

    def is_report_artifact(self, name: str) -> bool:
        return is_report_artifact(name, self.report_artifact)

    async def fetch_reports(self, api: GitHubActions, run: WorkflowRun) -> RunReports:
        """Every report in the run's report artifacts. Raises only what a retry may fix."""
        found = RunReports()
        try:
            artifacts = await api.list_artifacts(run.repository, run.run_id)
        except GitHubApiError as exc:
            if exc.retryable:
                raise
            found.problems.append(f"the run's artifacts could not be listed: {exc}")
            return found
        candidates = [a for a in artifacts if self.is_report_artifact(str(a.get("name", "")))]
        if not artifacts:
            found.problems.append("the run uploaded no artifacts")
        elif not candidates:
            names = ", ".join(sorted(str(a.get("name")) for a in artifacts)[:10])
            wanted = self.report_artifact or "a name containing 'report' or 'junit'"
            found.problems.append(f"no artifact matches {wanted} (artifacts: {names})")
        for artifact in candidates[:MAX_REPORT_ARTIFACTS]:
            name = str(artifact.get("name"))[:200]
            if artifact.get("expired"):
                found.problems.append(f"artifact {name} has expired")
                continue
            try:
                data = await api.download(run.repository, artifact)
            except ArtifactExpired:
                found.problems.append(f"artifact {name} has expired")
                continue
            except UnsafeArchive as exc:
                found.problems.append(f"artifact {name} was rejected: {exc}")
                continue
            except GitHubApiError as exc:
                if exc.retryable:
                    raise
                found.problems.append(f"artifact {name} could not be downloaded: {exc}")
                continue
            found.add(await self._read(name, data, run, MAX_RESULTS - len(found.results)))
            if found.over_cap:
                break
        return found

    async def _read(self, name: str, data: bytes, run: WorkflowRun, budget: int) -> RunReports:
        """The zip is opened and parsed in a child process: it may expand a thousandfold, and
        parsing what comes out holds the GIL for as long as it takes."""
        try:
            return await off_loop(
                read_artifact,
                name,
                data,
                run.run_info(),
                self.invariant_prefixes,
                self.limits,
                budget,
                size=len(data),
                isolate=True,
            )
        except ValueError as exc:  # the parse ran out of time or memory
            return RunReports(problems=[f"artifact {name} could not be read: {exc}"])
        except Exception as exc:  # a bug must not cost the run its incident; the log has it
            log.exception("reading artifact %s of %s failed", name, run.label)
            return RunReports(problems=[f"artifact {name} could not be read: {type(exc).__name__}: {exc}"])

    def build_report(self, run: WorkflowRun, reports: RunReports) -> Report:
        results = list(reports.results[:MAX_RESULTS])
        if not any(r.is_failure for r in results):
            # Seed 001's contract: a failure must name its scenario and invariant. A failed run
            # whose harness said nothing usable is a harness/diagnostics defect in its own right.
            if reports.files:
                name = f"{run.name}: run failed but its report lists no failing scenario"
                why = f"the report ({', '.join(reports.files)}) lists no failure"
            else:
                name = f"{run.name}: run failed without a report"
                why = "no report was found"
            details = "; ".join([why, *reports.problems])
            if len(details) > DETAILS_LIMIT:
                details = details[: DETAILS_LIMIT - 1] + "…"
            del results[MAX_RESULTS - 1 :]
            results.append(
                Result(
                    status="error",
                    test_file=run.path,
                    test_name=name[:2000],
                    message=f"Workflow run {run.conclusion}: {NO_IDS} ({details}).",
                )
            )
        return Report(schema_version=1, run=run.run_info(reports.suite), results=results)

    def _ingest(
        self,
        engine: Engine,
        run: WorkflowRun,
        reports: RunReports,
        reply_to: dict[str, Any] | None,
    ) -> IngestResult:
        report = self.build_report(run, reports)

        def then(session: Session, result: IngestResult, effects: Effects) -> None:
            self._complete_run(session, run)
            if reports.problems and not result.duplicate:
                effects.record(
                    Event.ARTIFACT_PROBLEMS,
                    f"{run.label}: " + "; ".join(reports.problems),
                    source="github",
                    data={"problems": reports.problems, "files": reports.files},
                )
            if reply_to is not None:
                enqueue_source_reply(effects, reply_to, result)

        try:
            return self.ingest.ingest_report(engine, report, source="github", then=then)
        finally:
            # freed here, a piece at a time: the last references would otherwise go at once (one C
            # call holding the GIL), the report's in this thread and the results' on the loop
            free_in_pieces(report.results)
            free_in_pieces(reports.results)

    @staticmethod
    def _complete_run(session: Session, run: WorkflowRun) -> None:
        """A CI notifier's Slack message may have recorded this run first, knowing only its URL;
        fill in what the webhook knows, so validation evidence can find the run's workflow."""
        stored = session.exec(
            select(Run).where(
                Run.repository == run.repository, Run.run_id == run.run_id, Run.run_attempt == run.run_attempt
            )
        ).first()
        if stored is None:
            return
        for name, value in (("workflow", run.name), ("branch", run.branch), ("sha", run.sha), ("url", run.url)):
            if getattr(stored, name) is None and value:
                setattr(stored, name, value)
        if stored.finished_at is None and run.finished_at is not None:
            stored.finished_at = utc(run.finished_at)
        session.add(stored)

    def _reply_only(self, engine: Engine, reply_to: dict[str, Any], note: str) -> None:
        with session_scope(engine) as session:
            effects = Effects(now=self.clock.now())
            enqueue_source_reply(effects, reply_to, None, note=note)
            effects.flush(session)

    # -- validation evidence --------------------------------------------------------------------

    def covered_incidents(self, session: Session, run: WorkflowRun) -> list[Incident]:
        """Open incidents seen in an earlier run or attempt of the same workflow on the same
        branch, and not seen again after this green run started."""
        branch = col(Run.branch) == run.branch if run.branch is not None else col(Run.branch).is_(None)
        seen_in_workflow = (
            select(Occurrence.incident_id)
            .join(Run, col(Run.id) == col(Occurrence.run_pk))
            .where(Run.repository == run.repository, col(Run.workflow).in_(run.workflow_names), branch)
            .distinct()
        )
        incidents = session.exec(
            select(Incident)
            .where(Incident.status == IncidentStatus.OPEN.value, col(Incident.id).in_(seen_in_workflow))
            .order_by(col(Incident.id))
        ).all()
        if run.started_at is None:
            return list(incidents)
        started = as_utc(run.started_at)
        return [i for i in incidents if as_utc(i.last_seen) <= started]

    def record_validation(self, engine: Engine, run: WorkflowRun, reply_to: dict[str, Any] | None = None) -> list[int]:
        """Post "validation evidence: run … passed" in each covered incident; resolving stays a
        human decision (the runbook's validation milestone), so nothing is closed here."""
        with session_scope(engine) as session:
            effects = Effects(now=self.clock.now())
            ids: list[int] = []
            for incident in self.covered_incidents(session, run):
                assert incident.id is not None
                ids.append(incident.id)
                effects.record(
                    Event.VALIDATION_EVIDENCE,
                    f"Validation evidence: {run.label} passed on {run.branch or 'an unknown branch'}",
                    incident_id=incident.id,
                    source="github",
                    data={"run_id": run.run_id, "run_attempt": run.run_attempt, "url": run.url, "sha": run.sha},
                )
                effects.enqueue(
                    EffectKind.INCIDENT_NOTE,
                    Key.validation(incident.id, run.repository, run.run_id, run.run_attempt),
                    {
                        "template": "validation",
                        "url": run.url,
                        "label": run.label,
                        "branch": run.branch or "",
                        "sha": (run.sha or "")[:12],
                    },
                    incident_id=incident.id,
                    lane=incident.channel,
                )
            if reply_to is not None:
                enqueue_source_reply(effects, reply_to, None, note=f"run {run.label} passed", validated=ids)
            effects.flush(session)
            return ids
