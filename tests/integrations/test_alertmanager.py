"""``POST /webhooks/alertmanager``: seed 004's operational alerts as incidents of the operations
playbook, with their failure-mode runbook as the checklist, grouped on ``groupKey``, closed by
Alertmanager only once the playbook's documentation is in, and indifferent to repeats and HA twins."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.models import Incident, Occurrence, OutboxItem, Timer
from slackbot.sources.alertmanager import AlertmanagerPayload, AlertmanagerService
from tests.integrations.conftest import CiBot
from tests.slack.conftest import wait_for

ALERTS = "C0ALERTS"  # the operations playbook's `alerts` suite
EXTERNAL = "http://alertmanager.example.com:9093"


def alert(
    instance: str,
    *,
    alertname: str = "IngestionLagHigh",
    status: str = "firing",
    starts: str = "2026-11-22T02:55:00Z",
) -> dict[str, Any]:
    labels = {"alertname": alertname, "instance": instance, "job": "ingestion", "severity": "critical"}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "Ingestion lag above one hour"},
        "startsAt": starts,
        "endsAt": "2026-11-22T04:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=ingestion_lag_seconds+%3E+3600",
        "fingerprint": hashlib.sha256(f"{alertname}{instance}".encode()).hexdigest()[:16],
    }


def notification(*alerts: dict[str, Any], alertname: str = "IngestionLagHigh") -> dict[str, Any]:
    alerts = alerts or (alert("ingest-1", alertname=alertname),)
    return {
        "version": "4",
        "groupKey": f'{{}}/{{severity="critical"}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": "resolved" if all(a["status"] == "resolved" for a in alerts) else "firing",
        "receiver": "triagebot",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "job": "ingestion", "severity": "critical"},
        "commonAnnotations": {
            "summary": "Ingestion lag above one hour",
            "runbook_url": "https://runbooks.example.com/ingestion-lag",
        },
        "externalURL": EXTERNAL,
        "alerts": list(alerts),
    }


def thread_texts(bot: CiBot, key: str) -> list[str]:
    return [m.text for m in bot.thread(key, ALERTS)]


def wait_thread_with(bot: CiBot, key: str, text: str) -> str:
    found: str = wait_for(
        lambda: next((t for t in thread_texts(bot, key) if text in t), None), what=f"a post with {text!r}"
    )
    return found


def checklist(bot: CiBot, key: str) -> str:
    found: str = wait_for(
        lambda: next((m.text + str(m.blocks) for m in bot.thread(key, ALERTS) if "checklist" in m.text.lower()), None),
        what="the runbook checklist",
    )
    return found


def test_alert_lifecycle_open_repeat_grow_document_resolve_reopen(ci_bot: CiBot) -> None:
    first = ci_bot.alertmanager(notification())
    assert first.status_code == 200 and first.json()["status"] == "opened" and first.json()["incident"] == "INC-1"

    card = ci_bot.card_text("INC-1", ALERTS)
    assert "IngestionLagHigh" in card and "Ingestion lag exceeds threshold" in card and "critical" in card
    assert "ingestion_lag_seconds &gt; 3600" in card  # the alert rule's detection, escaped
    assert "*Labels (key entity ids):*" in card and "`job=ingestion`" in card  # the group's common labels
    assert "Playbook: " in card and "Contract violation" not in card and "Invariant" not in card
    note = wait_thread_with(ci_bot, "INC-1", "fired")
    assert "<https://runbooks.example.com/ingestion-lag|runbook>" in note
    steps = checklist(ci_bot, "INC-1")  # the failure mode's detect → document steps, to click through
    for phase in ("Detect", "Diagnose", "Recover", "Verify", "Document"):
        assert phase in steps
    wait_thread_with(ci_bot, "INC-1", "Paging")
    (page, *_) = wait_for(lambda: ci_bot.pagerduty.triggers(), what="the PagerDuty trigger")  # ops has a key
    details = page["payload"]["custom_details"]  # what the on-call phone shows: the alert, no CI fields
    assert details["alertname"] == "IngestionLagHigh" and details["labels"]["job"] == "ingestion"
    assert "invariantId" not in details

    # Alertmanager repeats unchanged groups, and an HA pair sends everything twice.
    for _ in range(2):
        assert ci_bot.alertmanager(notification()).json()["status"] == "duplicate"

    grown = ci_bot.alertmanager(notification(alert("ingest-1"), alert("ingest-2")))
    assert grown.json()["status"] == "updated"
    update = wait_thread_with(ci_bot, "INC-1", "more firing")
    assert "instance=ingest-2" in update

    # The alert clears, but seed 004 does not close an incident before it is documented.
    done = notification(alert("ingest-1", status="resolved"), alert("ingest-2", status="resolved"))
    kept = ci_bot.alertmanager(done).json()
    assert kept["status"] == "kept_open" and "what we changed" in kept["message"]
    assert ci_bot.alertmanager(done).json()["status"] == "duplicate"
    wait_thread_with(ci_bot, "INC-1", "Alertmanager resolved the alert, but")
    answer = ci_bot.triage(
        'status INC-1 documented what_we_changed="restarted the ingestion worker" provider API outage',
        user="U0SAM",
        channel=ALERTS,
    )
    assert "INC-1 resolved" in answer
    wait_for(
        lambda: [e for e in ci_bot.pagerduty.events if e["event_action"] == "resolve"], what="the PagerDuty resolve"
    )
    with Session(ci_bot.core.engine) as session:
        incident = session.exec(select(Incident).where(Incident.id == 1)).one()
        occurrences = session.exec(select(Occurrence).where(Occurrence.incident_id == 1)).all()
        notes = session.exec(select(OutboxItem).where(OutboxItem.kind == "incident_note")).all()
    assert (incident.status, incident.resolution_note) == ("resolved", "provider API outage")
    assert incident.record["what_we_changed"] == "restarted the ingestion worker"
    assert (incident.playbook, incident.failure_class, incident.severity) == ("operations", "ingestion_lag", "critical")
    assert incident.occurrence_count == 2 and len(occurrences) == 2
    assert incident.repository == "alertmanager" and incident.scenario_id == "IngestionLagHigh"
    assert len(notes) == 3  # the runbook, one update and the kept-open note: no duplicate ever reached the thread

    # The same group firing again later is a new episode.
    again = ci_bot.alertmanager(notification(alert("ingest-1", starts="2026-11-22T06:00:00Z")))
    assert again.json() == {"status": "opened", "incident": "INC-2", "message": "INC-2 opened for IngestionLagHigh"}


def test_an_alert_for_ops_and_engineering_pages_both(ci_bot: CiBot) -> None:
    """Seed 004: `settlement_status = FAILED`: Critical; escalate to ops and engineering."""
    response = ci_bot.alertmanager(notification(alertname="SettlementFailed"))
    assert response.json()["status"] == "opened"
    paged = wait_thread_with(ci_bot, "INC-1", "Paging")
    assert "<!subteam^S0OPSTEAM>" in paged and "<!subteam^S0ENGINEERING>" in paged
    assert "critical" in ci_bot.card_text("INC-1", ALERTS)


def test_alert_without_a_runbook_is_a_documentation_gap_that_pages_ops(ci_bot: CiBot) -> None:
    assert ci_bot.alertmanager(notification(alertname="DiskAlmostFull")).json()["status"] == "opened"
    card = ci_bot.card_text("INC-1", ALERTS)
    assert "Documentation gap" in card and "DiskAlmostFull has no runbook" in card
    assert "No runbook for DiskAlmostFull" in wait_thread_with(ci_bot, "INC-1", "No runbook")
    wait_for(lambda: ci_bot.pagerduty.triggers(), what="a page for the unknown alert")
    with Session(ci_bot.core.engine) as session:
        incident = session.exec(select(Incident)).one()
        timers = session.exec(select(Timer).where(Timer.incident_id == incident.id)).all()
        pages = session.exec(select(OutboxItem).where(col(OutboxItem.kind).in_(["dm", "pagerduty"]))).all()
    assert incident.failure_class is None and incident.playbook == "operations"
    assert "classify" not in [t.kind for t in timers]  # seed 004 sets no timed classification rule
    assert {p.payload["user"] for p in pages if p.kind == "dm"} == {"U0SAM"}  # ops owns what nobody classified


def test_authentication_and_payload_errors(ci_bot: CiBot) -> None:
    assert ci_bot.alertmanager(notification(), token=None).status_code == 401
    assert ci_bot.alertmanager(notification(), token="wrong").status_code == 401
    old = notification() | {"version": "3"}
    response = ci_bot.alertmanager(old)
    assert response.status_code == 400 and "version 4" in response.json()["error"]
    broken = notification() | {"status": "exploded"}
    assert ci_bot.alertmanager(broken).status_code == 400
    with Session(ci_bot.core.engine) as session:
        assert session.exec(select(Incident)).all() == []


def race(engine: Engine, playbooks: Playbooks, payloads: list[dict[str, Any]]) -> list[str]:
    """Deliver the payloads from parallel threads at the same instant (an HA pair, two replicas)."""
    service = AlertmanagerService(playbooks, FakeClock())
    barrier = threading.Barrier(len(payloads))
    statuses: list[str] = []
    errors: list[BaseException] = []

    def deliver(payload: dict[str, Any]) -> None:
        parsed = AlertmanagerPayload.model_validate(payload)
        barrier.wait()
        try:
            statuses.append(service.handle(engine, parsed).status)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return sorted(statuses)


def test_ha_pair_sending_the_same_notification_at_once_opens_one_incident(engine: Engine, playbooks: Playbooks) -> None:
    assert race(engine, playbooks, [notification(), notification()]) == ["duplicate", "opened"]
    with Session(engine) as session:
        assert len(session.exec(select(Incident)).all()) == 1
        assert len(session.exec(select(OutboxItem).where(OutboxItem.kind == "card")).all()) == 1


def test_two_notifications_racing_to_open_one_group_share_the_incident(engine: Engine, playbooks: Playbooks) -> None:
    statuses = race(engine, playbooks, [notification(alert("ingest-1")), notification(alert("ingest-2"))])
    assert statuses == ["opened", "updated"]
    with Session(engine) as session:
        incident = session.exec(select(Incident)).one()
    assert incident.occurrence_count == 2
