"""``POST /webhooks/alertmanager``: seed 004's operational alerts as incidents with their runbook,
grouped on ``groupKey``, resolved by Alertmanager, and indifferent to repeats and HA twins."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbook
from slackbot.db.models import Incident, Occurrence, OutboxItem, Timer
from slackbot.sources.alertmanager import AlertmanagerPayload, AlertmanagerService
from tests.integrations.conftest import CiBot
from tests.slack.conftest import wait_for

TRIAGE = "C0TRIAGE"  # routing.yml has no `alerts` suite, so alerts use the default channel
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
    return [m.text for m in bot.thread(key, TRIAGE)]


def wait_thread_with(bot: CiBot, key: str, text: str) -> str:
    found: str = wait_for(
        lambda: next((t for t in thread_texts(bot, key) if text in t), None), what=f"a post with {text!r}"
    )
    return found


def test_alert_lifecycle_open_repeat_grow_resolve_reopen(ci_bot: CiBot) -> None:
    first = ci_bot.alertmanager(notification())
    assert first.status_code == 200 and first.json()["status"] == "opened" and first.json()["incident"] == "INC-1"

    card = ci_bot.card_text("INC-1", TRIAGE)
    assert "IngestionLagHigh" in card and "Infra/CI" in card and "SEV-2" in card
    assert "Key entity ids" in card and "job=`ingestion`" in card  # the group's common labels
    runbook_post = wait_thread_with(ci_bot, "INC-1", "Playbook")
    assert "Restart ingestion service; re-run settlement." in runbook_post
    assert "Lag returns to normal; scores are correct." in runbook_post
    assert "<https://runbooks.example.com/ingestion-lag|runbook>" in runbook_post
    wait_thread_with(ci_bot, "INC-1", "Paging")
    wait_for(lambda: ci_bot.pagerduty.triggers(), what="the PagerDuty trigger")  # infra_ci has a routing key

    # Alertmanager repeats unchanged groups, and an HA pair sends everything twice.
    for _ in range(2):
        assert ci_bot.alertmanager(notification()).json()["status"] == "duplicate"

    grown = ci_bot.alertmanager(notification(alert("ingest-1"), alert("ingest-2")))
    assert grown.json()["status"] == "updated"
    update = wait_thread_with(ci_bot, "INC-1", "more firing")
    assert "instance=ingest-2" in update

    done = notification(alert("ingest-1", status="resolved"), alert("ingest-2", status="resolved"))
    assert ci_bot.alertmanager(done).json()["status"] == "resolved"
    assert ci_bot.alertmanager(done).json()["status"] == "duplicate"
    wait_thread_with(ci_bot, "INC-1", "resolved by Alertmanager")
    wait_for(
        lambda: [e for e in ci_bot.pagerduty.events if e["event_action"] == "resolve"], what="the PagerDuty resolve"
    )
    with Session(ci_bot.core.engine) as session:
        incident = session.exec(select(Incident).where(Incident.id == 1)).one()
        occurrences = session.exec(select(Occurrence).where(Occurrence.incident_id == 1)).all()
        notes = session.exec(select(OutboxItem).where(OutboxItem.kind == "incident_note")).all()
    assert (incident.status, incident.resolution_note) == ("resolved", "resolved by Alertmanager")
    assert incident.occurrence_count == 2 and len(occurrences) == 2
    assert incident.repository == "alertmanager" and incident.scenario_id == "IngestionLagHigh"
    assert len(notes) == 2  # the runbook and one update: no duplicate ever reached the thread
    assert len(ci_bot.pagerduty.triggers()) == 1

    # The same group firing again later is a new episode.
    again = ci_bot.alertmanager(notification(alert("ingest-1", starts="2026-11-22T06:00:00Z")))
    assert again.json() == {"status": "opened", "incident": "INC-2", "message": "INC-2 opened for IngestionLagHigh"}


def test_sev1_alert_pages_the_release_maintainer_too(ci_bot: CiBot) -> None:
    response = ci_bot.alertmanager(notification(alertname="SettlementFailed"))
    assert response.json()["status"] == "opened"
    paged = wait_thread_with(ci_bot, "INC-1", "Paging")
    assert "<@U0FRANK>" in paged  # seed 003: SEV-1 pages the release maintainer at once
    assert "SEV-1" in ci_bot.card_text("INC-1", TRIAGE)


def test_alert_without_a_runbook_is_an_unclassified_documentation_gap(ci_bot: CiBot) -> None:
    assert ci_bot.alertmanager(notification(alertname="DiskAlmostFull")).json()["status"] == "opened"
    card = ci_bot.card_text("INC-1", TRIAGE)
    assert "Documentation gap" in card and "DiskAlmostFull has no runbook" in card
    assert "No runbook for DiskAlmostFull" in wait_thread_with(ci_bot, "INC-1", "No runbook")
    with Session(ci_bot.core.engine) as session:
        incident = session.exec(select(Incident)).one()
        timers = session.exec(select(Timer).where(Timer.incident_id == incident.id)).all()
        pages = session.exec(select(OutboxItem).where(col(OutboxItem.kind).in_(["dm", "pagerduty"]))).all()
    assert incident.failure_class is None  # the 20-minute rule applies, as for any failure
    assert "classify" in [t.kind for t in timers]
    assert pages == []


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


def race(engine: Engine, runbook: Playbook, payloads: list[dict[str, Any]]) -> list[str]:
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


def test_ha_pair_sending_the_same_notification_at_once_opens_one_incident(engine: Engine, runbook: Playbook) -> None:
    assert race(engine, runbook, [notification(), notification()]) == ["duplicate", "opened"]
    with Session(engine) as session:
        assert len(session.exec(select(Incident)).all()) == 1
        assert len(session.exec(select(OutboxItem).where(OutboxItem.kind == "card")).all()) == 1


def test_two_notifications_racing_to_open_one_group_share_the_incident(engine: Engine, runbook: Playbook) -> None:
    statuses = race(engine, runbook, [notification(alert("ingest-1")), notification(alert("ingest-2"))])
    assert statuses == ["opened", "updated"]
    with Session(engine) as session:
        incident = session.exec(select(Incident)).one()
    assert incident.occurrence_count == 2
