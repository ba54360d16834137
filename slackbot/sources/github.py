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
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slackbot.clients.artifacts import ArchiveLimits, UnsafeArchive, extract
from slackbot.clients.github_actions import ArtifactExpired, GitHubActions, GitHubApiError
from slackbot.clock import Clock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, ProcessedDelivery, Run
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.domain.states import IncidentStatus
from slackbot.incidents.effects import Effects, utc
from slackbot.sources.ingest import IngestResult, IngestService
from slackbot.sources.junit import JUnitError, parse_junit
from slackbot.sources.report import Report, Result, RunInfo

# gh's IsFailureState minus action_required (a run waiting for approval has not run any test).
FAILED_CONCLUSIONS = frozenset({"failure", "startup_failure", "timed_out"})
PASSED = "success"
REPORT_NAME_HINTS = ("report", "junit")
MAX_REPORT_ARTIFACTS = 5
NO_IDS = "no scenarioId/invariantId emitted"


class WebhookError(ValueError):
    """The payload is not a usable ``workflow_run`` event; the message names the field."""


def suite_for(*names: str | None) -> str:
    text = " ".join(n for n in names if n).lower()
    if "nightly" in text:
        return "nightly"
    if "smoke" in text:
        return "smoke"
    return "full"


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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
    run_attempt: int = 1
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
        if not isinstance(run.get("id"), int):
            raise WebhookError("workflow_run.id: required (an integer)")
        attempt = run.get("run_attempt") or 1
        if not isinstance(attempt, int) or attempt < 1:
            raise WebhookError("workflow_run.run_attempt: must be a positive integer")
        path = run.get("path") if isinstance(run.get("path"), str) else None
        # ``name`` is often "" (octokit's own examples); the workflow's name or file then names it.
        name = run.get("name") or workflow_name or path or f"workflow {run.get('workflow_id', '?')}"
        return cls(
            repository=repository,
            run_id=str(run["id"]),
            run_attempt=attempt,
            name=str(name)[:200],
            path=path,
            workflow_id=run.get("workflow_id") if isinstance(run.get("workflow_id"), int) else None,
            url=run.get("html_url") if isinstance(run.get("html_url"), str) else None,
            branch=run.get("head_branch") if isinstance(run.get("head_branch"), str) else None,
            sha=run.get("head_sha") if isinstance(run.get("head_sha"), str) else None,
            status=run.get("status"),
            conclusion=run.get("conclusion"),
            event=run.get("event"),
            started_at=_time(run.get("run_started_at") or run.get("created_at")),
            finished_at=_time(run.get("updated_at")),
        )

    @classmethod
    def from_webhook(cls, payload: object) -> WorkflowRun:
        if not isinstance(payload, dict):
            raise WebhookError("body must be a JSON object (a workflow_run event)")
        repository = payload.get("repository")
        if not isinstance(repository, dict) or not isinstance(repository.get("full_name"), str):
            raise WebhookError("repository.full_name: required")
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


@dataclass
class RunReports:
    """What a run's artifacts yielded: results, the files they came from, and every problem
    (expired, rejected, unparsable) so a responder can see why a report is missing."""

    results: list[Result] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    suite: str | None = None


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
        reply_to: dict[str, Any] | None = job.get("reply_to")
        if "run" in job:
            run = WorkflowRun.model_validate(job["run"])
        else:
            data = await api.get_run(job["repository"], str(job["run_id"]), job.get("run_attempt"))
            run = WorkflowRun.from_api(job["repository"], data)
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
        report = self.build_report(run, reports)
        result = await asyncio.to_thread(self._ingest, engine, run, report, reports, reply_to)
        return {
            "run": result.run_key,
            "files": reports.files,
            "problems": reports.problems,
            "incidents": [i.key for i in result.incidents],
        }

    def is_report_artifact(self, name: str) -> bool:
        return is_report_artifact(name, self.report_artifact)

    async def fetch_reports(self, api: GitHubActions, run: WorkflowRun) -> RunReports:
        found = RunReports()
        artifacts = await api.list_artifacts(run.repository, run.run_id)
        candidates = [a for a in artifacts if self.is_report_artifact(str(a.get("name", "")))]
        if not artifacts:
            found.problems.append("the run uploaded no artifacts")
        elif not candidates:
            names = ", ".join(sorted(str(a.get("name")) for a in artifacts)[:10])
            wanted = self.report_artifact or "a name containing 'report' or 'junit'"
            found.problems.append(f"no artifact matches {wanted} (artifacts: {names})")
        for artifact in candidates[:MAX_REPORT_ARTIFACTS]:
            name = str(artifact.get("name"))
            if artifact.get("expired"):
                found.problems.append(f"artifact {name} has expired")
                continue
            try:
                data = await api.download(run.repository, artifact)
                members = extract(data, wanted=lambda p: p.lower().endswith((".json", ".xml")), limits=self.limits)
            except ArtifactExpired:
                found.problems.append(f"artifact {name} has expired")
                continue
            except UnsafeArchive as exc:
                found.problems.append(f"artifact {name} was rejected: {exc}")
                continue
            for member in members:
                self._read_member(f"{name}/{member.path}", member.data, run, found)
        return found

    def _read_member(self, where: str, data: bytes, run: WorkflowRun, found: RunReports) -> None:
        if where.lower().endswith(".json"):
            try:
                raw = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                return  # not a report (evidence files are JSON too, and need not parse)
            if not isinstance(raw, dict) or "schemaVersion" not in raw:
                return
            if raw.get("schemaVersion") != 1:
                found.problems.append(f"{where}: unsupported schemaVersion {raw.get('schemaVersion')!r}")
                return
            try:
                report = Report.model_validate(raw)
            except ValidationError as exc:
                error = exc.errors()[0]
                path = ".".join(str(p) for p in error["loc"])
                found.problems.append(f"{where}: {path}: {error['msg']}")
                return
            if isinstance(raw.get("run"), dict) and raw["run"].get("suite"):
                found.suite = found.suite or report.run.suite
            found.results.extend(report.results)
            found.files.append(where)
            return
        try:
            parsed = parse_junit(data, run.run_info(), invariant_prefixes=self.invariant_prefixes)
        except JUnitError as exc:
            if not str(exc).startswith("root element"):  # other XML (coverage, …) is not ours to judge
                found.problems.append(f"{where}: {exc}")
            return
        found.results.extend(parsed.results)
        found.files.append(where)

    def build_report(self, run: WorkflowRun, reports: RunReports) -> Report:
        results = list(reports.results)
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
            results.append(
                Result(
                    status="error",
                    test_file=run.path,
                    test_name=name,
                    message=f"Workflow run {run.conclusion}: {NO_IDS} ({details}).",
                )
            )
        return Report(schema_version=1, run=run.run_info(reports.suite), results=results)

    def _ingest(
        self,
        engine: Engine,
        run: WorkflowRun,
        report: Report,
        reports: RunReports,
        reply_to: dict[str, Any] | None,
    ) -> IngestResult:
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

        return self.ingest.ingest_report(engine, report, source="github", then=then)

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
