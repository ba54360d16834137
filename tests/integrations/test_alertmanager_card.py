"""The alert card, rendered from what an Alertmanager notification carries: its own layout (no CI
fields), every alert value escaped, the silence link a working Alertmanager filter, the dashboard
from either annotation, and incidents opened before the bot kept the alert still readable."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest

from slackbot.config import Playbook, Playbooks
from slackbot.db.models import Incident
from slackbot.slack.card import CardView, render_card
from slackbot.sources.alertmanager import AlertmanagerPayload

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
EXTERNAL = "http://alertmanager.example.com:9093"


@pytest.fixture(scope="module")
def operations(playbooks: Playbooks) -> Playbook:
    return playbooks.get("operations")


def payload(labels: dict[str, str], annotations: dict[str, str], *, status: str = "firing") -> AlertmanagerPayload:
    name = labels["alertname"]
    return AlertmanagerPayload.model_validate(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{name}"}}',
            "status": status,
            "receiver": "triagebot",
            "groupLabels": {"alertname": name},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": EXTERNAL,
            "alerts": [
                {
                    "status": status,
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": "2026-12-06T02:55:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=disk",
                    "fingerprint": "a1b2c3d4e5f60718",
                }
            ],
        }
    )


def alert_incident(alertname: str, alert: dict[str, Any] | None, **fields: object) -> Incident:
    base: dict[str, object] = {
        "id": 9,
        "fingerprint": "f",
        "repository": "alertmanager",
        "scenario_id": alertname,
        "test_identity": f'alertmanager::{{}}:{{alertname="{alertname}"}}',
        "suite": "alerts",
        "channel": "C0ALERTS",
        "playbook": "operations",
        "first_seen": NOW,
        "last_seen": NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "occurrence_count": 1,
        "symptom": "from the incident row",
        "alert": alert,
    }
    base.update(fields)
    return Incident(**base)


def render(playbook: Playbook, incident: Incident) -> tuple[str, list[dict[str, Any]], str]:
    fallback, blocks = render_card(CardView(playbook, incident, run=None))
    return fallback, blocks, json.dumps(blocks, ensure_ascii=False)


def test_alert_values_are_escaped_and_the_silence_link_is_a_working_filter(operations: Playbook) -> None:
    labels = {"alertname": "DiskAlmostFull", "team": "<!channel>", "path": 'a|b>"c"'}
    notified = payload(labels, {"summary": "<https://evil.example|click> & <@U0BOSS>", "value": "<!here>"})
    fallback, blocks, card = render(operations, alert_incident("DiskAlmostFull", notified.snapshot()))
    for hostile in ("<!channel>", "<!here>", "<https://evil", "<@U0BOSS>"):
        assert hostile not in card and hostile not in fallback
    assert "`team=&lt;!channel&gt;`" in card and "&lt;https://evil.example|click&gt; &amp; &lt;@U0BOSS&gt;" in card
    [silence] = re.findall(r"<([^|>]+)\|🔕 Silence>", card)
    assert silence.startswith(f"{EXTERNAL}/#/silences/new?filter=")
    matchers = urllib.parse.unquote(silence.split("filter=", 1)[1])
    assert matchers == '{alertname="DiskAlmostFull",path="a|b>\\"c\\"",team="<!channel>"}'
    assert blocks[0]["text"]["text"] == "🔥 INC-9 · DiskAlmostFull"


def test_value_description_dashboard_and_graph(operations: Playbook) -> None:
    labels = {"alertname": "IngestionLagHigh", "severity": "critical"}
    annotations = {
        "summary": "Ingestion lag above one hour",
        "description": "lag is 4210 s",
        "grafana_url": "https://grafana.example.com/d/ingest",
    }
    _, _, card = render(operations, alert_incident("IngestionLagHigh", payload(labels, annotations).snapshot()))
    assert "*Description:* lag is 4210 s" in card and "*Value:*" not in card  # no `value` annotation
    assert "<https://grafana.example.com/d/ingest|📊 Dashboard>" in card  # grafana_url stands in for dashboard_url
    assert "<http://prometheus.example.com:9090/graph?g0.expr=disk|📈 Graph>" in card
    assert "📖 Runbook" not in card  # no runbook_url: no link, the playbook's steps are there
    assert "*Runbook* — _detected by_ ingestion_lag_seconds &gt; 3600" in card and "\\n1. Detect:" in card
    for ci_only in ("nvariant", "gh run download", "Reproduce locally", "Download artifacts", "Evidence"):
        assert ci_only not in card


def test_an_alert_url_that_is_not_http_is_never_a_link(operations: Playbook) -> None:
    notified = payload({"alertname": "ErrorBudgetLow"}, {"dashboard_url": "javascript:alert(1)"}).snapshot()
    notified["external_url"] = "javascript:alert(1)//"
    _, _, card = render(operations, alert_incident("ErrorBudgetLow", notified))
    assert "<javascript:" not in card and "📊 Dashboard (javascript:alert(1))" in card


def test_resolved_alert_then_resolved_incident(operations: Playbook) -> None:
    cleared = payload({"alertname": "ErrorBudgetLow"}, {"summary": "budget low"}, status="resolved")
    snapshot = cleared.snapshot(resolved_at=NOW)
    _, blocks, card = render(operations, alert_incident("ErrorBudgetLow", snapshot))
    assert blocks[0]["text"]["text"].startswith("🟢 INC-9") and "🟢 *Alert resolved* by Alertmanager at <!date^" in card
    assert "stays open" in card and blocks[-1]["type"] == "actions"
    _, blocks, card = render(operations, alert_incident("ErrorBudgetLow", snapshot, status="resolved"))
    assert blocks[0]["text"]["text"].startswith("✅ INC-9") and "stays open" not in card
    assert not [b for b in blocks if b["type"] == "actions"]


def test_an_alert_incident_from_before_the_alert_was_kept_still_renders(operations: Playbook) -> None:
    old = alert_incident("SettlementFailed", None, key_entity_ids={"contest": "c-7"})
    fallback, blocks, card = render(operations, old)
    assert blocks[0]["text"]["text"] == "🔥 INC-9 · SettlementFailed" and fallback.startswith("INC-9 SettlementFailed:")
    assert "`alertname=SettlementFailed` `contest=c-7`" in card and "from the incident row" in card
    assert "🔕 Silence" not in card  # no external URL known: no link rather than a wrong one
