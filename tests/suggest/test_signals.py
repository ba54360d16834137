"""Each signal is a stated reason on the incident the ingest opens: history, run shape, the team's
past; agreeing signals make the suggestion confident."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Incident
from slackbot.domain.changes import Actor, Classify
from slackbot.incidents.core import IncidentCore
from slackbot.reads.queries import incident_json
from slackbot.sources.ingest import IngestService
from slackbot.sources.report import Report
from slackbot.suggest.past import newest_decided
from tests.factories import report, result

SHA_A, SHA_B = "a" * 40, "b" * 40


def run(*results: dict[str, Any], run_id: str, sha: str = SHA_A, attempt: int = 1) -> Report:
    data = report(*results, run_id=run_id, attempt=attempt)
    data["run"]["sha"] = sha
    return Report.model_validate(data)


def suggested(engine: Engine, scenario: str) -> dict[str, Any]:
    with Session(engine) as session:
        incident = session.exec(select(Incident).where(Incident.scenario_id == scenario)).one()
        return incident_json(incident)


def test_a_test_that_failed_and_passed_within_one_run_is_suggested_as_a_flake(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    retried = run(
        result("NOS-003", "NOTIF-002", message="expected 1 notification, found 0"),
        result("NOS-003", "NOTIF-002", status="passed"),
        run_id="31",
    )
    IngestService(playbooks, clock).ingest_report(engine, retried)
    data = suggested(engine, "NOS-003")
    assert data["suggestedClass"] == "flake_concurrency"
    assert data["suggestedReason"].startswith("failed and passed within run 31")
    assert data["confidence"] is not None and data["confidence"] >= 0.7


def test_failing_since_one_sha_after_a_green_run_is_suggested_as_a_regression_from_that_change(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, run(result("BID-004", "ASSIGN-002", status="passed"), run_id="40", sha=SHA_A))
    service.ingest_report(
        engine,
        run(result("BID-004", "ASSIGN-002", message="AssertionError: expected 3 to equal 2"), run_id="41", sha=SHA_B),
    )
    data = suggested(engine, "BID-004")
    assert data["suggestedClass"] == "algorithm_regression"
    assert "log matches “AssertionError”" in data["suggestedReason"]
    assert "failing on every run since sha bbbbbbbb (1 run); last green sha aaaaaaaa" in data["suggestedReason"]
    assert data["confidence"] >= 0.7


def test_many_tests_failing_with_one_infrastructure_error_are_suggested_as_infra(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    down = "Error: connect ECONNREFUSED 127.0.0.1:5432"
    failures = [
        result(f"{p}-00{n}", "STATE-001", message=down)
        for n, p in enumerate(["SCH", "BID", "SCH", "NOS", "HLT", "API"])
    ]
    IngestService(playbooks, clock).ingest_report(engine, run(*failures, run_id="50"))
    with Session(engine) as session:
        rows = list(session.exec(select(Incident).order_by(col(Incident.id))))
    assert {i.suggested_class for i in rows} == {"infra_ci"}
    reason = rows[0].suggested_reason or ""
    assert (
        "log matches “ECONNREFUSED”" in reason
        and "6 of 6 failing tests in the run share one infrastructure error" in reason
    )
    assert all((i.suggested_confidence or 0) >= 0.7 for i in rows)


def test_the_teams_past_classification_of_a_similar_message_votes_and_says_so(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    message = "worker pool drained before the assignment for shift {} was committed"
    service.ingest_report(engine, run(result("HLT-007", "ASSIGN-001", message=message.format("sh-1")), run_id="60"))
    first = suggested(engine, "HLT-007")
    assert first["suggestedClass"] != "flake_concurrency"
    # a responder corrects it: the team says this kind of failure is a flake
    IncidentCore(playbooks, clock).run(engine, int(first["id"][4:]), Actor("U0CAROL", "button"), Classify("flake"))

    service.ingest_report(engine, run(result("HLT-008", "ASSIGN-001", message=message.format("sh-9")), run_id="61"))
    second = suggested(engine, "HLT-008")
    assert second["suggestedClass"] == "flake_concurrency"
    assert "1 similar incident classified Flake/concurrency (0 confirmed, 1 corrected)" in second["suggestedReason"]


def test_failures_spanning_prefixes_and_a_failure_without_ids_are_suggested_as_the_harness(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    messages = ["expected 3 got 2", "row missing for tenant", "notification count 0", "unexpected assignment"]
    spread = [
        result(f"{prefix}-00{n}", "STATE-001", message=message)
        for n, (prefix, message) in enumerate(zip(["SCH", "BID", "NOS", "HLT"], messages, strict=True))
    ]
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, run(*spread, run_id="80"))
    data = suggested(engine, "BID-001")
    assert data["suggestedClass"] == "harness_diagnostics"
    assert data["suggestedReason"].startswith("the run's failures span prefixes BID, HLT, NOS, SCH")

    service.ingest_report(engine, run(result(None, None, message="boom"), run_id="81"))
    with Session(engine) as session:
        lacking = session.exec(select(Incident).where(col(Incident.scenario_id).is_(None))).one()
    assert incident_json(lacking)["suggestedReason"] == "the failure lacks the contract's ids"


def test_the_teams_past_is_read_from_its_own_index_of_classified_incidents(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    """Every ingest that opens incidents reads the past: without ix_incidents_past that read walked
    every unclassified incident, newest first (2 to 5 ms of each 1,000-result report)."""
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, run(result("HLT-007", "ASSIGN-001", message="pool drained"), run_id="62"))
    service.ingest_report(engine, run(result("HLT-009", "ASSIGN-002", message="pool drained"), run_id="63"))
    classified = int(suggested(engine, "HLT-007")["id"][4:])
    IncidentCore(playbooks, clock).run(engine, classified, Actor("U0CAROL", "button"), Classify("flake"))
    query = newest_decided("integration-triage")
    with Session(engine) as session:
        assert [failure_class for _, failure_class, _ in session.exec(query)] == ["flake_concurrency"]
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "USING COVERING INDEX ix_incidents_past" in plan, plan
        else:  # a table this small is read whole unless told otherwise: the index must be usable
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(row[0]) for row in connection.exec_driver_sql("EXPLAIN " + sql))
            assert "ix_incidents_past" in plan, plan
