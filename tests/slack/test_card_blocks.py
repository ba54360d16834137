"""Every block of every kind of card is what slack_sdk's Block Kit models make of it, and passes
their checks of Slack's limits: the card builds plain dicts (slackbot/slack/blocks.py) for speed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from slack_sdk.models.blocks import Block

from slackbot.config import Playbooks
from slackbot.db.models import Run
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY
from slackbot.slack.card import CardView, PendingAction, render_card
from tests.slack.test_card_render import NOW, alerting, incident

LONG = "x" * 5000  # past every limit: the card truncates, slack_sdk would refuse


def _states(playbooks: Playbooks) -> list[CardView]:
    views = []
    for playbook in playbooks:
        classes, severities = list(playbook.classes), list(playbook.severities)
        flags = list(playbook.flags)
        run = Run(
            id=3,
            repository="acme/dispatch",
            run_id="9187",
            run_attempt=2,
            suite="nightly",
            branch="main",
            received_at=NOW,
        )
        pending = [PendingAction("escalate", NOW + timedelta(minutes=20))]
        for fields in (
            {},
            {"card_details": True, "symptom": LONG, "scenario_id": "BID-001", "invariant_id": "TENANT-001"},
            {"suggested_class": classes[0], "suggested_reason": LONG, "suggested_confidence": 0.8},
            {"failure_class": classes[-1], "severity": severities[0], "assignee": "U0CAROL", "bead_id": "b-1"},
            {"escalation_level": 3, "flags": flags[:1], "contract_violation": True, "card_details": True},
            {"status": "resolved", "failure_class": classes[0], "card_details": True, "multi_prefix": True},
            {"documentation_gap": "BID", "key_entity_ids": {"tenant": "t-1"}, "occurrence_count": 4},
        ):
            views.append(CardView(playbook, incident(**fields), run=run, pending=pending))
            views.append(CardView(playbook, incident(**fields), run=None))
    for playbook in alerting(playbooks):
        alertname = playbook.policy.alerts[0].alertname
        for status in ("firing", "resolved"):
            alert = {"alertname": alertname, "status": status, "summary": LONG, "labels": {"alertname": alertname}}
            for fields in ({}, {"status": "resolved"}, {"assignee": "U0CAROL"}):
                views.append(
                    CardView(
                        playbook,
                        incident(repository=ALERTMANAGER_REPOSITORY, scenario_id=alertname, alert=alert, **fields),
                        run=None,
                        pending=[PendingAction("escalate", NOW)],
                    )
                )
    return views


def test_every_block_of_every_card_is_slack_sdks_own(playbooks: Playbooks) -> None:
    views = _states(playbooks)
    kinds: set[str] = set()
    for view in views:
        _, blocks = render_card(view)
        for block in blocks:
            kinds.add(block["type"])
            model = Block.parse(block)
            assert model is not None
            assert model.to_dict() == block  # to_dict also checks Slack's limits: it raises past one
    assert kinds == {"header", "section", "actions", "context", "divider"}


def test_a_card_is_drawn_afresh_each_time(playbooks: Playbooks) -> None:
    view = CardView(playbooks.default, incident(), run=None)
    _, first = render_card(view)
    first[3]["elements"][0]["text"]["text"] = "changed by a caller"
    _, again = render_card(view)
    assert again[3]["elements"][0]["text"]["text"] != "changed by a caller"


@pytest.mark.parametrize("assignee", [None, "U0CAROL"])
def test_the_buttons_name_this_incident(playbooks: Playbooks, assignee: str | None) -> None:
    _, blocks = render_card(CardView(playbooks.default, incident(id=41, assignee=assignee), run=None))
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["block_id"] == "incident:41"
    buttons = [e for e in actions["elements"] if e["type"] == "button"]
    assert all(b["value"].startswith("41") for b in buttons)
    assert ("incident_ack" in {b["action_id"] for b in buttons}) == (assignee is None)
