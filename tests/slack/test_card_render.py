"""The card is a pure function of the incident: checked here without any server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from slackbot.config import Playbook, Playbooks, load_playbooks
from slackbot.db.models import Incident
from slackbot.slack.card import CardView, render_card
from slackbot.slack.escape import escape
from tests.conftest import REPO

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
# The layout from before playbooks: its policy.yml still carries seed 004's operational alerts.
LEGACY = REPO / "tests" / "config" / "legacy_runbooks"


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


def alerting(playbooks: Playbooks) -> list[Playbook]:
    """Playbooks with operational alerts: the shipped ones (the operations playbook, once it is in
    runbooks/workspace.yml) and the layout from before playbooks, whose alerts carry their steps."""
    return [*(p for p in playbooks if p.policy.alerts), load_playbooks(LEGACY).default]


def test_an_alertmanager_incident_shows_its_operational_runbook_not_ci_commands(playbooks: Playbooks) -> None:
    for playbook in alerting(playbooks):
        alert = playbook.policy.alerts[0]
        view = CardView(playbook, incident(repository="alertmanager", scenario_id=alert.alertname), run=None)
        _, blocks = render_card(view)
        rendered = json.dumps(blocks, ensure_ascii=False)
        assert alert.alertname in rendered and json.dumps(escape(alert.detection), ensure_ascii=False)[1:-1] in rendered
        if alert.steps:  # the alert's own runbook, every step in order with its phase
            assert [s.phase for s in alert.steps][:4] == ["detect", "diagnose", "recover", "verify"]  # seed 004
            positions = [rendered.index(f"{n}. *{step.phase}:* ") for n, step in enumerate(alert.steps, 1)]
            assert positions == sorted(positions)
            assert all(json.dumps(escape(step.text), ensure_ascii=False)[1:40] in rendered for step in alert.steps)
        else:  # the runbook is its failure mode's checklist, posted in the thread
            route = playbook.class_route(alert.failure_class)
            assert route is not None and route.first_response
            assert f"*Runbook:* {escape(route.label)} — the steps are the checklist in the thread" in rendered
        assert "gh run download" not in rendered and "contract violation" not in rendered


def test_a_resolved_card_offers_no_actions(runbook: Playbook) -> None:
    _, blocks = render_card(CardView(runbook, incident(status="resolved", milestone="resolved"), run=None))
    assert not [b for b in blocks if b["type"] == "actions"]
    assert blocks[0]["text"]["text"].startswith("✅ INC-7")
