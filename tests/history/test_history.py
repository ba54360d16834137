"""Test history: every result a run carried, passes included, per test and branch; what it says."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import RunResults
from slackbot.history.outcomes import key_of
from slackbot.history.store import histories
from slackbot.sources.ingest import IngestService
from slackbot.sources.report import Report
from tests.factories import report, result

SHA_A, SHA_B, SHA_C = "a" * 40, "b" * 40, "c" * 40


def run(*results: dict[str, Any], run_id: str, sha: str, attempt: int = 1, branch: str = "main") -> Report:
    data = report(*results, run_id=run_id, attempt=attempt)
    data["run"].update(sha=sha, branch=branch)
    return Report.model_validate(data)


def history_of(engine: Engine, scenario: str, invariant: str, branch: str = "main") -> Any:
    key = key_of(scenario, invariant, "")
    with Session(engine) as session:
        return histories(session, "acme/dispatch", branch, [key])[key]


def test_each_test_keeps_its_outcomes_per_branch_first_failure_last_green_fail_rate_and_flips(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(
        engine,
        run(
            result("SCH-001", "STATE-001", status="passed"),
            result("BID-001", "TENANT-001", status="passed"),
            run_id="1",
            sha=SHA_A,
        ),
    )
    service.ingest_report(
        engine,
        run(result("SCH-001", "STATE-001"), result("BID-001", "TENANT-001", status="passed"), run_id="2", sha=SHA_B),
    )
    # a JSON report naming only its failures: BID-001 is unknown in run 3, not passed
    service.ingest_report(engine, run(result("SCH-001", "STATE-001"), run_id="3", sha=SHA_C))
    # another branch is another history
    service.ingest_report(
        engine, run(result("SCH-001", "STATE-001", status="passed"), run_id="4", sha=SHA_C, branch="release")
    )

    failing = history_of(engine, "SCH-001", "STATE-001")
    assert [s.run_id for s in failing.seen] == ["1", "2", "3"]
    assert failing.first_failing.run_id == "2" and failing.first_failing.sha == SHA_B
    assert failing.last_green.run_id == "1" and failing.last_green.sha == SHA_A
    assert round(failing.fail_rate, 2) == 0.67 and failing.flips == 1
    assert failing.as_json()["lastGreen"] == {
        "runId": "1", "attempt": 1, "sha": SHA_A, "url": "https://github.com/acme/dispatch/actions/runs/1"
    }  # fmt: skip

    passing = history_of(engine, "BID-001", "TENANT-001")
    assert [s.run_id for s in passing.seen] == ["1", "2"] and passing.fail_rate == 0 and passing.first_failing is None
    assert [s.run_id for s in history_of(engine, "SCH-001", "STATE-001", "release").seen] == ["4"]


def test_a_report_sent_twice_is_stored_once_and_a_rerun_that_passes_reads_as_a_flake(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    first = run(result("NOS-002", "NOTIF-001"), result("SCH-002", "STATE-001", status="passed"), run_id="7", sha=SHA_A)
    service.ingest_report(engine, first)
    service.ingest_report(engine, first)
    service.ingest_report(
        engine, run(result("NOS-002", "NOTIF-001", status="passed"), run_id="7", attempt=2, sha=SHA_A)
    )
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(RunResults)) == 2
    flaky = history_of(engine, "NOS-002", "NOTIF-001").flaky
    assert flaky is not None and flaky[0] == "passed on rerun attempt 2 of run 7"


def test_ten_thousand_results_are_one_compact_row_and_every_test_is_found(
    playbooks: Playbooks, sqlite_engine: Engine, clock: FakeClock
) -> None:
    results = [
        result(f"SCH-{n:05d}", "STATE-001", status="failed" if n % 100 == 0 else "passed") for n in range(10_000)
    ]
    IngestService(playbooks, clock).ingest_report(sqlite_engine, run(*results, run_id="9", sha=SHA_A))
    with Session(sqlite_engine) as session:
        row = session.exec(select(RunResults)).one()
        assert (row.results, row.failed, len(row.outcomes)) == (10_000, 100, 90_000)
    assert history_of(sqlite_engine, "SCH-00100", "STATE-001").seen[0].failed
    assert history_of(sqlite_engine, "SCH-09999", "STATE-001").seen[0].green
