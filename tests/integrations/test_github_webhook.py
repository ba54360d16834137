"""``POST /webhooks/github`` end to end: octokit's real workflow_run payloads (copies edited to
``failure`` where needed), a fake GitHub API serving real zips over HTTP, the real bot, the Slack
emulator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.app import build_workers
from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Incident, Occurrence, OutboxItem, TimelineEvent
from slackbot.runtime import build_runtime
from slackbot.settings import Settings
from slackbot.sources.github import (
    GitHubRunService,
    RunReports,
    WorkflowRun,
    is_report_artifact,
    suite_for,
)
from slackbot.sources.ingest import IngestService
from slackbot.sources.report import Result
from tests.conftest import FIXTURES, RUNBOOKS
from tests.fakes.github_api import FakeGitHub, Request, Response
from tests.integrations.conftest import (
    NOTIFIER_BOT,
    NOTIFIER_USER,
    OCTO_REPO,
    CiBot,
    workflow_run_payload,
    zip_bytes,
)
from tests.slack.conftest import NIGHTLY, wait_for

RUN_ID = 289782451  # octokit's example run
TRIAGE = "C0TRIAGE"  # the default channel: workflow "test" maps to the full suite


def report_json(*results: dict[str, Any], suite: str = "nightly") -> str:
    # The run block is the harness's view; the webhook's identity (repo, run id, attempt) wins.
    run = {"repository": "someone/else", "runId": "1", "suite": suite}
    return json.dumps({"schemaVersion": 1, "run": run, "results": list(results)})


FAILING = {
    "scenarioId": "BID-001",
    "invariantId": "TENANT-001",
    "status": "failed",
    "message": "notification for org-b visible to org-a",
    "testFile": "tests/integration/bidding.test.ts",
    "testName": "BID-001 competitive window",
    "evidence": [{"kind": "db_snapshot", "path": "evidence/BID-001/notifications.json"}],
}
PASSING = {"scenarioId": "BID-002", "invariantId": "TENANT-001", "status": "passed"}


def outbox_rows(bot: CiBot, kind: str) -> list[OutboxItem]:
    with Session(bot.core.engine) as session:
        return list(session.exec(select(OutboxItem).where(OutboxItem.kind == kind)))


def incidents(bot: CiBot) -> list[Incident]:
    with Session(bot.core.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.id))))


def test_failed_run_downloads_the_report_artifact_and_posts_cards(ci_bot: CiBot) -> None:
    gh = ci_bot.github
    gh.add_artifact(OCTO_REPO, RUN_ID, "coverage", zip_bytes({"lcov.info": "TN:"}))
    gh.add_artifact(
        OCTO_REPO,
        RUN_ID,
        "integration-report",
        zip_bytes(
            {
                "report.json": report_json(FAILING, PASSING),
                "evidence/BID-001/notifications.json": '{"rows": [{"org": "org-b"}]}',
            }
        ),
    )
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    response = ci_bot.webhook(workflow_run_payload(conclusion="failure"), delivery=delivery)
    assert response.status_code == 202, response.text
    assert response.json()["action"] == "ingest"

    card = json.dumps(ci_bot.card("INC-1", NIGHTLY).blocks)  # suite "nightly" from the report
    assert "BID-001" in card and "TENANT-001" in card
    assert "https://github.com/octo-org/octo-repo/actions/runs/289782451" in card
    assert "evidence/BID-001/notifications.json" in ci_bot.details_text("INC-1", NIGHTLY)

    listing = next(r for r in gh.requests if r.path.endswith(f"/runs/{RUN_ID}/artifacts"))
    assert listing.headers["authorization"] == f"Bearer {gh.token}"
    assert listing.headers["accept"] == "application/vnd.github+json"
    assert listing.headers["x-github-api-version"] == "2022-11-28"
    downloads = [r for r in gh.requests if "/actions/artifacts/" in r.path]
    assert len(downloads) == 1 and downloads[0].status == 302  # the coverage artifact is left alone
    blob = next(r for r in gh.requests if r.path.startswith("/_blobs/"))
    assert "authorization" not in blob.headers and blob.status == 200

    # GitHub redelivers with the same GUID: answered, and nothing happens twice.
    again = ci_bot.webhook(workflow_run_payload(conclusion="failure"), delivery=delivery)
    assert again.status_code == 200 and again.json() == {"duplicate": True, "delivery": delivery}
    assert len(outbox_rows(ci_bot, "github_run")) == 1
    assert [i.key for i in incidents(ci_bot)] == ["INC-1"]


def test_junit_artifact_from_vitest_is_ingested(ci_bot: CiBot) -> None:
    xml = (FIXTURES / "vitest-junit-snapshot-hook-failures.xml").read_bytes()
    ci_bot.github.add_artifact(OCTO_REPO, RUN_ID, "junit-results", zip_bytes({"vitest/junit.xml": xml}))
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202

    first, second = ci_bot.card_text("INC-1", TRIAGE), ci_bot.card_text("INC-2", TRIAGE)
    cards = first + second
    assert "beforeAll error" in cards and "afterAll error" in cards
    # vitest names carry no ids: the contract check makes each a harness/diagnostics defect.
    assert "Contract violation" in first and "Contract violation" in second


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("none", "the run uploaded no artifacts"),
        ("unrelated", "no artifact matches a name containing 'report' or 'junit' (artifacts: build-logs)"),
        ("slip", "artifact integration-report was rejected: member '../../evil.json' points outside"),
        ("green-report", "the report (integration-report/report.json) lists no failure"),
    ],
)
def test_failed_run_without_a_usable_report_is_a_harness_incident(ci_bot: CiBot, setup: str, expected: str) -> None:
    gh = ci_bot.github
    if setup == "unrelated":
        gh.add_artifact(OCTO_REPO, RUN_ID, "build-logs", zip_bytes({"log.txt": "ok"}))
    elif setup == "slip":
        gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"../../evil.json": "{}"}))
    elif setup == "green-report":
        gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"report.json": report_json(PASSING)}))
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202

    card = ci_bot.card_text("INC-1", NIGHTLY if setup == "green-report" else TRIAGE)
    assert "no scenarioId/invariantId emitted" in card
    assert "Contract violation" in card and "Harness/diagnostics" in card
    with Session(ci_bot.core.engine) as session:
        occurrence = session.exec(select(Occurrence)).one()
    assert expected in (occurrence.message or "")
    assert occurrence.test_file == ".github/workflows/test.yml"


def test_artifact_list_is_paginated_and_expired_artifacts_are_skipped(ci_bot: CiBot) -> None:
    gh = ci_bot.github
    for index in range(100):
        gh.add_artifact(OCTO_REPO, RUN_ID, f"shard-{index}-logs", b"not downloaded")
    gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}), expired=True)
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202

    ci_bot.card("INC-1", TRIAGE)
    pages = [r for r in gh.requests if r.path.endswith("/artifacts")]
    assert [r.query.get("page") for r in pages] == [None, ["2"]]
    assert not [r for r in gh.requests if "/actions/artifacts/" in r.path]
    with Session(ci_bot.core.engine) as session:
        occurrence = session.exec(select(Occurrence)).one()
    assert "artifact integration-report has expired" in (occurrence.message or "")


def test_github_api_outage_is_retried_by_the_outbox(ci_bot: CiBot) -> None:
    ci_bot.github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
    ci_bot.github.fail_next(1, 502)
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202

    ci_bot.card("INC-1", NIGHTLY)
    statuses = [r.status for r in ci_bot.github.requests if r.path.endswith("/artifacts")]
    assert statuses == [502, 200]


def test_later_green_attempt_is_posted_as_validation_evidence(ci_bot: CiBot) -> None:
    gh = ci_bot.github
    gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202
    ci_bot.card("INC-1", NIGHTLY)
    # An open incident from another repository is not covered by this workflow.
    elsewhere = {"repository": "acme/dispatch", "runId": "7", "suite": "nightly"}
    other = ci_bot.send({"schemaVersion": 1, "run": elsewhere, "results": [FAILING]})
    assert other["incidents"][0]["id"] == "INC-2"
    ci_bot.card("INC-2", NIGHTLY)

    green = workflow_run_payload(conclusion="success", attempt=2, run_started_at="2020-10-05T17:00:00Z")
    response = ci_bot.webhook(green)
    assert response.status_code == 202 and response.json()["action"] == "validate"

    def validation_posts(key: str) -> list[str]:
        return [m.text for m in ci_bot.thread(key, NIGHTLY) if "Validation evidence" in m.text]

    posts = wait_for(lambda: validation_posts("INC-1"), what="the validation evidence post")
    assert "octo-org/octo-repo test #289782451 attempt 2" in posts[0]
    assert "https://github.com/octo-org/octo-repo/actions/runs/289782451" in posts[0]
    assert validation_posts("INC-2") == []
    with Session(ci_bot.core.engine) as session:
        first = session.exec(select(Incident).where(Incident.id == 1)).one()
        kinds = list(session.exec(select(TimelineEvent.kind).where(TimelineEvent.incident_id == 1)))
    assert first.status == "open"  # evidence, not a verdict
    assert "validation_evidence" in kinds


def test_signature_and_event_filtering(ci_bot: CiBot) -> None:
    payload = workflow_run_payload(conclusion="failure")
    assert ci_bot.webhook(payload, secret="not-the-secret").status_code == 401
    body = json.dumps(payload).encode()
    unsigned = httpx.post(
        ci_bot.url + "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-unsigned"},
    )
    assert unsigned.status_code == 401 and "X-Hub-Signature-256" in unsigned.json()["error"]
    assert ci_bot.webhook(body).status_code == 202  # control: the same body, signed, is accepted
    assert ci_bot.webhook(payload, event="ping").json()["message"] == "pong"
    job = json.loads((FIXTURES / "github-webhook-workflow_job-completed-failure.payload.json").read_text())
    assert "only workflow_run" in ci_bot.webhook(job, event="workflow_job").json()["ignored"]
    assert "cancelled" in ci_bot.webhook(workflow_run_payload(conclusion="cancelled")).json()["ignored"]
    assert ci_bot.webhook(b"{not json").status_code == 400
    assert "workflow_run" in ci_bot.webhook({"action": "completed", "repository": {"full_name": "a/b"}}).json()["error"]
    assert len(outbox_rows(ci_bot, "github_run")) == 1


def test_github_jobs_run_without_slack_and_survive_a_crash_after_accepting(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepting commits the job; a process that dies before working on it loses nothing: the
    next process (with no Slack configured at all) picks it up from the outbox."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub(repos=(OCTO_REPO,)) as gh:
        gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
        settings = Settings(
            TRIAGE_DATABASE_URL=db_url,
            TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
            GITHUB_API_URL=gh.url,
            GITHUB_TOKEN=gh.token,
        )
        first = build_runtime(settings, clock=FakeClock())
        run = WorkflowRun.from_webhook(workflow_run_payload(conclusion="failure"))
        service = GitHubRunService(first.playbooks, first.clock, first.ingest)
        assert service.accept(first.engine, "delivery-1", run) is True
        assert service.accept(first.engine, "delivery-1", run) is False
        first.engine.dispose()  # the process is gone before any worker ran

        second = build_runtime(settings, clock=FakeClock())
        workers = build_workers(second)
        assert "github_run" in workers.outbox.handlers and "card" not in workers.outbox.handlers

        assert asyncio.run(workers.outbox.step()) == 1
        with Session(second.engine) as session:
            incident = session.exec(select(Incident)).one()
            job = session.exec(select(OutboxItem).where(OutboxItem.kind == "github_run")).one()
            card = session.exec(select(OutboxItem).where(OutboxItem.kind == "card")).one()
        assert (incident.scenario_id, incident.invariant_id, incident.channel) == ("BID-001", "TENANT-001", NIGHTLY)
        assert job.state == "done" and job.result["incidents"] == ["INC-1"]
        assert card.state == "pending"  # waits for a process with Slack; nothing is lost
        second.engine.dispose()


def test_example_workflow_uploads_what_the_webhook_looks_for_and_sends_it() -> None:
    """The example in examples/github-actions must keep working with both paths: its artifact
    name matches the report convention, and its send step runs ``triagebot send``."""
    workflow = yaml.safe_load((RUNBOOKS.parent / "examples" / "github-actions" / "integration.yml").read_text())
    assert suite_for(workflow["name"]) == "nightly"
    steps = workflow["jobs"]["integration"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert is_report_artifact(upload["with"]["name"])
    send = next(s for s in steps if "triagebot send" in s.get("run", ""))
    assert set(send["env"]) == {"TRIAGE_SERVER", "TRIAGE_INGEST_SECRET"}


def test_validation_covers_the_same_workflow_and_branch_only(playbooks: Playbooks, engine: Engine) -> None:
    clock = FakeClock()
    ingest = IngestService(playbooks, clock)
    service = GitHubRunService(playbooks, clock, ingest)
    failed = WorkflowRun.from_webhook(workflow_run_payload(conclusion="failure"))
    reports = RunReports(results=[Result.model_validate(FAILING)])
    ingest.ingest_report(engine, service.build_report(failed, reports))
    other_branch = failed.model_copy(update={"branch": "release", "run_id": "5"})
    other = Result.model_validate({**FAILING, "scenarioId": "NOS-001"})
    ingest.ingest_report(engine, service.build_report(other_branch, RunReports(results=[other])))

    green = WorkflowRun.from_webhook(
        workflow_run_payload(conclusion="success", attempt=2, run_started_at="2020-10-05T17:00:00Z")
    )
    assert service.record_validation(engine, green) == [1]
    too_early = green.model_copy(update={"started_at": datetime(2020, 10, 5, 16, 0, tzinfo=UTC)})
    assert service.record_validation(engine, too_early) == []  # it started before the failure
    with Session(engine) as session:
        notes = session.exec(select(OutboxItem).where(OutboxItem.kind == "incident_note")).all()
    assert [(n.incident_id, n.payload["template"]) for n in notes] == [(1, "validation")]


def test_run_first_seen_in_a_slack_alert_still_gets_validation_evidence(ci_bot: CiBot) -> None:
    """The CI notifier's message may arrive before the webhook and record the run knowing only
    its URL; the webhook then completes the run, so the green attempt still finds the incident."""
    url = f"https://github.com/{OCTO_REPO}/actions/runs/{RUN_ID}"
    ts, _ = ci_bot.emulator.post_as_user(
        NOTIFIER_USER, NIGHTLY, f"test failed: BID-001 / TENANT-001 {url}", bot_id=NOTIFIER_BOT
    )
    wait_for(lambda: any("INC-1" in m.text for m in ci_bot.emulator.replies(NIGHTLY, ts)), what="the reply")
    ci_bot.github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202
    wait_for(lambda: [j for j in outbox_rows(ci_bot, "github_run") if j.state == "done"], what="the job")

    # The message's time is when the failure was last seen: the green attempt starts after it.
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    green = workflow_run_payload(conclusion="success", attempt=2, run_started_at=later)
    assert ci_bot.webhook(green).status_code == 202
    wait_for(
        lambda: any("Validation evidence" in m.text for m in ci_bot.thread("INC-1", NIGHTLY)),
        what="the validation evidence post",
    )
    assert [i.key for i in incidents(ci_bot)] == ["INC-1"]


# -- hostile runs (issue 18): every failed run ends in an incident naming the reason -----------


def corrupt_deflate() -> bytes:
    data = bytearray(zip_bytes({"report.json": report_json(FAILING) * 50}))
    start = data.index(b"report.json") + len("report.json")  # the local header's name ends here
    data[start] = 0xFF  # the deflate stream's first block: BTYPE 11, which does not exist
    return bytes(data)


def non_utf8_member_name() -> bytes:
    data = zip_bytes({"report-xx.json": report_json(FAILING)})
    flagged = bytearray(data)
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        flagged[flagged.index(signature) + flags_at + 1] |= 0x08  # bit 11: names are UTF-8
    return bytes(flagged).replace(b"report-xx.json", b"report-\xff\xfe.json")


def deep_json() -> bytes:
    return zip_bytes({"report.json": '{"schemaVersion": 1, "run": ' + "[" * 5000 + "]" * 5000 + "}"})


def too_many_results() -> bytes:
    cases = "".join(f'<testcase classname="a" name="BID-{i % 900 + 100:03d} case {i}"/>' for i in range(60_000))
    xml = f"<testsuites><testsuite>{cases}</testsuite></testsuites>"
    return zip_bytes({"shard-1/junit.xml": xml, "shard-2/junit.xml": xml})


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("corrupt-deflate", "cannot be read"),
        ("non-utf8-name", "flagged UTF-8 but is not"),
        ("deep-json", "nested too deeply"),
        ("artifact-id-abc", "not a number"),
        ("redirect-loop", "redirected again"),
        ("302-without-location", "redirected without a Location"),
        ("too-many-results", "more than 100,000 results"),
    ],
)
def test_a_hostile_artifact_is_a_harness_incident_naming_the_reason(ci_bot: CiBot, hostile: str, expected: str) -> None:
    gh = ci_bot.github
    payloads = {
        "corrupt-deflate": corrupt_deflate,
        "non-utf8-name": non_utf8_member_name,
        "deep-json": deep_json,
        "too-many-results": too_many_results,
    }
    data = payloads[hostile]() if hostile in payloads else zip_bytes({"r.json": report_json(FAILING)})
    meta = gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", data)
    if hostile == "artifact-id-abc":
        meta["id"] = "abc"
    elif hostile in ("redirect-loop", "302-without-location"):
        target = {"Location": f"{gh.url}/_blobs/loop"} if hostile == "redirect-loop" else {}

        @gh.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip")
        def redirect(request: Request) -> Response:
            return Response(302, None, headers=dict(target))

        @gh.route("GET", "/_blobs/loop", auth=False)
        def loop(request: Request) -> Response:
            return Response(302, None, headers={"Location": f"{gh.url}/_blobs/loop"})

    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202

    card = ci_bot.card_text("INC-1", TRIAGE)
    assert "Contract violation" in card and "Harness/diagnostics" in card
    with Session(ci_bot.core.engine) as session:
        occurrence = session.exec(select(Occurrence)).one()
    assert expected in (occurrence.message or ""), occurrence.message
    job = wait_for(lambda: [j for j in outbox_rows(ci_bot, "github_run") if j.state == "done"], what="the job")[0]
    assert job.attempts == 1  # no retries, no dead letter


def test_github_failing_every_retry_still_ends_in_an_incident(ci_bot: CiBot) -> None:
    ci_bot.github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
    ci_bot.github.fail_next(50, 502)
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202
    seen = [0]

    def opened() -> list[Occurrence]:
        attempts = max((j.attempts for j in outbox_rows(ci_bot, "github_run")), default=0)
        if attempts > seen[0]:  # two hours per failed attempt: five of them outlast the retries' six
            seen[0] = attempts
            ci_bot.clock.shift(hours=2)
        ci_bot.core.notify_committed()
        with Session(ci_bot.core.engine) as session:
            return list(session.exec(select(Occurrence)))

    occurrence = wait_for(opened, timeout=60, what="the harness incident")[0]
    assert "GitHub answered HTTP 502" in (occurrence.message or "")
    assert "after 5 attempts" in (occurrence.message or "")
    # The job ends done (the incident is its outcome), never dead-lettered.
    wait_for(lambda: [j for j in outbox_rows(ci_bot, "github_run") if j.state == "done"], what="the job")


def test_github_down_for_over_an_hour_still_opens_the_runs_own_incident(ci_bot: CiBot) -> None:
    """A GitHub outage outlasting a handful of quick retries: once GitHub answers again, the report
    is downloaded and its failure opens its own incident, not a harness card naming the outage."""
    ci_bot.github.add_artifact(OCTO_REPO, RUN_ID, "integration-report", zip_bytes({"r.json": report_json(FAILING)}))
    ci_bot.github.fail_next(8, 502)  # eight attempts ten minutes apart: down for well over an hour
    assert ci_bot.webhook(workflow_run_payload(conclusion="failure")).status_code == 202
    seen = [0]

    def opened() -> list[Occurrence]:
        # Ten minutes per failed attempt, not per poll: a slow worker must not see hours go by.
        attempts = max((j.attempts for j in outbox_rows(ci_bot, "github_run")), default=0)
        if attempts > seen[0]:
            seen[0] = attempts
            ci_bot.clock.shift(minutes=10)  # past the outbox's backoff: the next attempt is due
        ci_bot.core.notify_committed()
        with Session(ci_bot.core.engine) as session:
            return list(session.exec(select(Occurrence)))

    occurrence = wait_for(opened, timeout=60, what="the run's incident")[0]
    assert "GitHub could not be read" not in (occurrence.message or ""), occurrence.message
    assert (occurrence.scenario_id, occurrence.message) == ("BID-001", FAILING["message"])
    job = wait_for(lambda: [j for j in outbox_rows(ci_bot, "github_run") if j.state == "done"], what="the job")[0]
    assert job.attempts == 9


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"run_attempt": 2**63}, "workflow_run.run_attempt"),
        ({"updated_at": "9999-12-31T23:59:59-23:59"}, "workflow_run.updated_at"),
    ],
)
def test_a_run_record_github_answers_unreadably_is_a_harness_incident(
    ci_bot: CiBot, run: dict[str, Any], expected: str
) -> None:
    url = f"https://github.com/acme/dispatch/actions/runs/{RUN_ID}"
    record = workflow_run_payload(conclusion="failure", name="integration-nightly")["workflow_run"]
    record.update(id=RUN_ID, html_url=url, **run)
    ci_bot.github.add_run("acme/dispatch", record)
    ci_bot.emulator.post_as_user(NOTIFIER_USER, NIGHTLY, f"Workflow <{url}|run> failed", bot_id=NOTIFIER_BOT)

    wait_for(lambda: incidents(ci_bot), timeout=30, what="the harness incident")
    with Session(ci_bot.core.engine) as session:
        occurrence = session.exec(select(Occurrence)).one()
    assert "GitHub's record of the run could not be read" in (occurrence.message or "")
    assert expected in (occurrence.message or "")


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"id": True}, "workflow_run.id"),
        ({"id": "289782451"}, "workflow_run.id"),
        ({"run_attempt": 0}, "workflow_run.run_attempt"),
        ({"run_attempt": True}, "workflow_run.run_attempt"),
        ({"run_attempt": 2**31}, "workflow_run.run_attempt"),
        ({"run_attempt": 2**63}, "workflow_run.run_attempt"),
        ({"updated_at": "9999-01-01T00:00:00Z"}, "workflow_run.updated_at"),
        ({"updated_at": "9999-12-31T23:59:59-23:59"}, "workflow_run.updated_at"),
        ({"run_started_at": "0001-01-01T00:00:00+05:00"}, "workflow_run.run_started_at"),
    ],
)
def test_loose_webhook_fields_are_a_400_naming_the_field(ci_bot: CiBot, run: dict[str, Any], expected: str) -> None:
    response = ci_bot.webhook(workflow_run_payload(conclusion="failure", **run))
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    assert outbox_rows(ci_bot, "github_run") == []


def test_the_largest_run_attempt_is_accepted(ci_bot: CiBot) -> None:
    response = ci_bot.webhook(workflow_run_payload(conclusion="failure", attempt=2**31 - 1))
    assert response.status_code == 202, response.text
    assert "attempt 2147483647" in response.json()["run"]


def test_an_unreadable_artifact_of_the_largest_attempt_is_an_incident_on_both_databases(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run attempt PostgreSQL's INTEGER column holds at most, and a report nested too deeply:
    the run still ends as a harness incident, on SQLite and PostgreSQL alike."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with FakeGitHub(repos=(OCTO_REPO,)) as gh:
        gh.add_artifact(OCTO_REPO, RUN_ID, "integration-report", deep_json())
        settings = Settings(
            TRIAGE_DATABASE_URL=db_url, TRIAGE_RUNBOOKS_DIR=RUNBOOKS, GITHUB_API_URL=gh.url, GITHUB_TOKEN=gh.token
        )
        core = build_runtime(settings, clock=FakeClock())
        run = WorkflowRun.from_webhook(workflow_run_payload(conclusion="failure", attempt=2**31 - 1))
        service = GitHubRunService(core.playbooks, core.clock, core.ingest)
        assert service.accept(core.engine, "delivery-max", run) is True
        assert asyncio.run(build_workers(core).outbox.step()) == 1
        with Session(core.engine) as session:
            occurrence = session.exec(select(Occurrence)).one()
            job = session.exec(select(OutboxItem).where(OutboxItem.kind == "github_run")).one()
        assert "report.json: JSON is nested too deeply to read" in (occurrence.message or "")
        assert job.state == "done" and job.result["incidents"] == ["INC-1"]
        core.engine.dispose()
