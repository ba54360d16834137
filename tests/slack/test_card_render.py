"""The card is a pure function of the incident: checked here without any server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from slackbot.config import Runbook
from slackbot.db.models import Incident
from slackbot.slack.card import CardView, render_card
from slackbot.slack.escape import escape

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def incident(**fields: object) -> Incident:
    base: dict[str, object] = {
        "id": 7,
        "fingerprint": "f",
        "repository": "acme/dispatch",
        "test_identity": "t",
        "suite": "nightly",
        "channel": "C0NIGHTLY",
        "first_seen": NOW,
        "last_seen": NOW,
        "classify_deadline": NOW,
        "created_at": NOW,
        "updated_at": NOW,
        "occurrence_count": 1,
        "symptom": "boom",
    }
    base.update(fields)
    return Incident(**base)


def test_an_alertmanager_incident_shows_its_operational_runbook_not_ci_commands(runbook: Runbook) -> None:
    alert = runbook.policy.alerts[0]
    _, blocks = render_card(
        CardView(incident=incident(repository="alertmanager", scenario_id=alert.alertname), run=None), runbook
    )
    rendered = json.dumps(blocks, ensure_ascii=False)
    assert alert.alertname in rendered and "detect → diagnose → recover → verify" in rendered
    assert all(json.dumps(escape(step.text), ensure_ascii=False)[1:40] in rendered for step in alert.steps)
    assert "gh run download" not in rendered and "contract violation" not in rendered


def test_a_resolved_card_offers_no_actions(runbook: Runbook) -> None:
    _, blocks = render_card(CardView(incident=incident(status="resolved", milestone="resolved"), run=None), runbook)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert blocks[0]["text"]["text"].startswith("✅ INC-7")
