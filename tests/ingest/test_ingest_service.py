"""Ingestion and grouping, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, OutboxItem, Run, TimelineEvent, Timer
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result

TABLES = (Run, Incident, Occurrence, TimelineEvent, OutboxItem, Timer)


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}  # type: ignore[attr-defined]


def outbox(engine: Engine, kind: str) -> list[OutboxItem]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxItem).where(OutboxItem.kind == kind)))


def incidents(engine: Engine) -> list[Incident]:
    with Session(engine) as session:
        return list(session.exec(select(Incident).order_by(Incident.id)))  # type: ignore[arg-type]


def test_failures_group_into_one_incident_per_fingerprint(
    playbooks: Playbooks, engine: Engine, runbook: Playbook, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    report = parsed(
        result("BID-001", "TENANT-001"),
        result("BID-001", "TENANT-001", test_name="BID-001 TENANT-001 second org"),
        result("SCH-004", "STATE-002", test_file="tests/integration/scheduling.test.ts"),
        result("SCH-009", "STATE-001", status="passed"),
    )
    outcome = service.ingest_report(engine, report)

    assert outcome.results == 4 and outcome.failures == 3
    assert sorted(i.occurrences_added for i in outcome.incidents) == [1, 2]
    rows = incidents(engine)
    assert [(i.scenario_id, i.invariant_id, i.occurrence_count) for i in rows] == [
        ("BID-001", "TENANT-001", 2),
        ("SCH-004", "STATE-002", 1),
    ]
    first = rows[0]
    assert first.status == "open" and first.failure_class is None
    assert first.channel == runbook.channel_for_suite("nightly")
    assert first.classify_deadline == clock.now() + runbook.policy.classify_within
    # one card each, and a classification timer each: the 20-minute rule is armed at ingest
    assert len(outbox(engine, "card")) == 2
    with Session(engine) as session:
        timers = list(session.exec(select(Timer)))
    assert sorted(t.subject for t in timers) == [f"incident:{i.id}" for i in rows]
    assert all(t.kind == "classify" and t.state == "pending" for t in timers)


def test_sending_the_same_report_twice_changes_nothing(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    service = IngestService(playbooks, clock)
    report = parsed(result("BID-001", "TENANT-001"), result("NOS-002", "ASSIGN-001"))
    service.ingest_report(engine, report)
    before = counts(engine)
    clock.advance(60)
    again = service.ingest_report(engine, report)
    assert again.duplicate is True
    assert counts(engine) == before
    assert [i.occurrence_count for i in incidents(engine)] == [1, 1]


def test_a_new_run_of_an_open_failure_is_a_thread_reply_not_a_new_card(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, parsed(result("BID-001", "TENANT-001")))
    with session_scope(engine) as session:  # the card was posted
        session.execute(update(OutboxItem).where(col(OutboxItem.kind) == "card").values(state="done"))
    clock.advance(3600)
    second = service.ingest_report(engine, parsed(result("BID-001", "TENANT-001"), run_id="9188"))

    assert [i.created for i in second.incidents] == [False]
    (incident,) = incidents(engine)
    assert incident.occurrence_count == 2
    assert len(outbox(engine, "thread_post")) == 1
    # the card is redrawn (a second card row with a newer revision), never posted twice
    assert sorted((o.dedup_key, o.state) for o in outbox(engine, "card")) == [
        (f"card:{incident.id}:0", "done"),
        (f"card:{incident.id}:1", "pending"),
    ]


def test_a_resolved_incident_does_not_absorb_a_new_failure(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, parsed(result("BID-001", "TENANT-001")))
    with session_scope(engine) as session:
        incident = session.exec(select(Incident)).one()
        incident.status, incident.open_key, incident.resolved_at = "resolved", None, clock.now()
        incident.failure_class = "algorithm_regression"
        session.add(incident)
    second = service.ingest_report(engine, parsed(result("BID-001", "TENANT-001"), run_id="9200"))
    assert second.incidents[0].created is True
    assert len(incidents(engine)) == 2


def test_a_resolved_flake_that_recurs_reopens_and_escalates(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(engine, parsed(result("ADV-003", "IDEMP-002")))
    with session_scope(engine) as session:
        incident = session.exec(select(Incident)).one()
        incident.status, incident.open_key, incident.resolved_at = "resolved", None, clock.now()
        incident.failure_class = "flake_concurrency"
        session.add(incident)
    clock.advance(timedelta(days=2))
    again = service.ingest_report(engine, parsed(result("ADV-003", "IDEMP-002"), run_id="9300"))

    assert again.incidents[0].created is False
    (incident,) = incidents(engine)
    assert incident.status == "open" and incident.occurrence_count == 2
    assert {o.payload["reason"] for o in outbox(engine, "thread_post") if o.payload.get("template") == "paged"} == {
        "recurred"
    }


def test_missing_ids_are_a_harness_contract_violation(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    service = IngestService(playbooks, clock)
    outcome = service.ingest_report(
        engine,
        parsed(
            result(
                None,
                None,
                test_file="tests/integration/harness/reset.test.ts",
                test_name="reset db between runs",
            )
        ),
    )
    (item,) = outcome.incidents
    assert item.contract_violation is True
    (incident,) = incidents(engine)
    assert incident.failure_class == "harness_diagnostics" and incident.class_source == "contract"
    assert [o.kind for o in outbox(engine, "bead_file")] == ["bead_file"]
    with Session(engine) as session:
        assert session.exec(select(Timer)).all() == []  # classified by rule: no 20-minute timer
        kinds = {e.kind for e in session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id))}
    assert {"created", "classified"} <= kinds


def test_unknown_prefix_is_flagged_as_a_documentation_gap(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    outcome = service.ingest_report(engine, parsed(result("PAY-001", "TENANT-001")))
    assert outcome.incidents[0].documentation_gap == "scenario prefix PAY is not in the taxonomy"
    assert outcome.incidents[0].contract_violation is False


def test_a_run_spanning_several_prefixes_escalates_once_for_the_run(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    report = parsed(
        result("BID-001", "TENANT-001"),
        result("SCH-002", "STATE-001", test_file="tests/integration/scheduling.test.ts"),
        result("HLT-001", "NOTIF-001", test_file="tests/integration/health.test.ts"),
    )
    outcome = service.ingest_report(engine, report)
    assert outcome.multi_prefix is True
    (row,) = outbox(engine, "run_escalation")
    assert row.payload["prefixes"] == ["BID", "HLT", "SCH"]
    assert all(i.multi_prefix for i in incidents(engine))
    service.ingest_report(engine, report)  # a resend does not escalate again
    assert len(outbox(engine, "run_escalation")) == 1


def test_owner_is_suggested_from_the_test_file_and_recorded(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    service.ingest_report(
        engine, parsed(result("API-002", "TENANT-003", test_file="tests/integration/harness/clock.test.ts"))
    )
    (incident,) = incidents(engine)
    assert incident.suggested_class == "harness_diagnostics"
    assert "tests/integration/harness/" in (incident.suggested_reason or "")
    with Session(engine) as session:
        routed = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "routed")).one()
    assert routed.data == {"class": "harness_diagnostics", "confidence": incident.suggested_confidence}
    assert routed.message.endswith(incident.suggested_reason or "no reason")


def test_concurrent_ingests_of_one_failure_open_one_incident(
    playbooks: Playbooks, engine: Engine, clock: FakeClock
) -> None:
    service = IngestService(playbooks, clock)
    errors: list[BaseException] = []

    def send(run_id: str) -> None:
        try:
            service.ingest_report(engine, parsed(result("BID-007", "ASSIGN-002"), run_id=run_id))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(str(9000 + n),)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (incident,) = incidents(engine)
    assert incident.occurrence_count == 6
