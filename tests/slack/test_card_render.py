"""The card is a pure function of the incident: checked here without any server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from slackbot.config import Playbook, Playbooks, load_playbooks
from slackbot.db.models import Incident, Run
from slackbot.slack.card import CardView, render_card, summary_context
from slackbot.slack.escape import escape
from slackbot.slack.posts import render_named
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
            assert f"1. {escape(route.first_response[0])[:40]}" in rendered  # its steps, on the alert card
        assert "gh run download" not in rendered and "contract violation" not in rendered


def test_a_resolved_card_offers_no_actions_but_its_details(runbook: Playbook) -> None:
    _, blocks = render_card(CardView(runbook, incident(status="resolved", milestone="resolved"), run=None))
    assert not [b for b in blocks if b["type"] == "actions"]
    assert blocks[0]["text"]["text"].startswith("✅ INC-7")
    assert "*Status:* Resolved" in json.dumps(blocks) and buttons(blocks) == ["incident_details"]


RUN = Run(
    repository="acme/dispatch",
    run_id="9187",
    run_attempt=1,
    suite="nightly",
    url="https://github.com/acme/dispatch/actions/runs/9187",
    branch="main",
    sha="0123456789abcdef",
    received_at=NOW,
)
# The first screen: the header, what failed (the playbook's card_summary, then test, suite and run)
# and the state (severity, status, assignee; class or suggestion, and owner). A playbook whose
# card_summary says more than one line adds those lines.
FIRST_SCREEN_LINES = 5


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [b["accessory"]["action_id"] for b in blocks if b.get("accessory", {}).get("type") == "button"]


def first_screen(blocks: list[dict[str, Any]]) -> list[str]:
    """The lines of text a reader sees above the first row of buttons."""
    lines: list[str] = []
    for block in blocks:
        if block["type"] == "actions":
            return lines
        texts = [block["text"]] if "text" in block else block.get("fields", []) + block.get("elements", [])
        lines += [line for t in texts for line in t["text"].split("\n")]
    raise AssertionError("no actions")


def suggested(playbook: Playbook, **fields: object) -> CardView:
    klass = next(iter(playbook.classes))
    base: dict[str, object] = {
        "scenario_id": "BID-001",
        "suggested_class": klass,
        "suggested_reason": "by prefix",
        "severity": playbook.policy.default_severity,
    }
    return CardView(playbook, incident(**(base | fields)), run=RUN, command="pnpm test", log="expected 1, got 2")


def test_the_first_screen_says_what_failed_how_bad_whose_and_in_what_state(playbooks: Playbooks) -> None:
    for playbook in playbooks:
        view = suggested(playbook, occurrence_count=3, test_identity="bids.spec.ts > closes the auction")
        summary = render_named(playbook, "card_summary", **summary_context(view))
        _, blocks = render_card(view)
        lines = first_screen(blocks)
        top = "\n".join(lines)
        klass = view.incident.suggested_class
        assert lines[0] == "🔴 INC-7 · BID-001 / no invariantId", playbook.name  # what failed, by its ids
        assert summary in top  # the playbook's own words for it
        assert "`bids.spec.ts &gt; closes the auction` · suite `nightly` · " in top  # the test and its suite
        assert f"<{RUN.url}|run 9187>" in top and "seen 3× since <!date^" in top  # the run to open; not new
        severity = playbook.severity_label(playbook.policy.default_severity)
        assert f"*Severity:* {severity} · *Status:* Open · *Assignee:* nobody yet" in top
        assert f"*Suggested class:* {escape(playbook.class_label(klass))} (by prefix)" in top
        assert f"*Owner:* {playbook.owner_target(klass).mention()}" in top
        assert len(lines) <= FIRST_SCREEN_LINES + summary.count("\n"), (playbook.name, lines)
        # Digging stays one click away: nothing of it above the buttons, and the Details button there.
        for deep in ("Evidence", "Reproduce locally", "Download artifacts", "expected 1, got 2", "*Scenario:*"):
            assert deep not in top, (playbook.name, deep)
        assert buttons(blocks) == ["incident_details", "incident_confirm_suggestion"]  # confirming is one click
        assert blocks[1]["accessory"]["text"]["text"] == "Details"
    default = playbooks.default
    assert len(first_screen(render_card(suggested(default))[1])) == FIRST_SCREEN_LINES


def test_a_classified_card_names_the_class_its_owner_and_who_took_it(playbooks: Playbooks) -> None:
    playbook = playbooks.named("contract-drift")
    assert playbook is not None
    view = suggested(playbook, failure_class="fixture_stale", assignee="U0CAROL", escalation_level=1)
    top = "\n".join(first_screen(render_card(view)[1]))
    assert "*Assignee:* <@U0CAROL> · *Escalated:* level 1" in top
    route = playbook.classes["fixture_stale"]
    assert route.secondary_owner is not None
    owners = f"{route.owner.mention()} (secondary {route.secondary_owner.mention()})"
    assert f"*Class:* {escape(route.label)} · *Owner:* {owners}" in top


def test_details_show_the_taxonomy_evidence_artifacts_and_repro(runbook: Playbook) -> None:
    evidence = [{"kind": "screenshot", "path": "artifacts/bid.png"}]
    collapsed = suggested(runbook, invariant_id="TENANT-001")
    expanded = suggested(runbook, invariant_id="TENANT-001", card_details=True)
    expanded = CardView(runbook, expanded.incident, RUN, evidence, command="pnpm test", log="expected 1, got 2")
    short, long = render_card(collapsed)[1], render_card(expanded)[1]
    text = json.dumps(long, ensure_ascii=False)
    for deep in ("Bidding lifecycle", "Evidence to capture", "artifacts/bid.png", "expected 1, got 2"):
        assert deep in text and deep not in json.dumps(short, ensure_ascii=False)
    assert "gh run download 9187" in text and "Reproduce locally" in text and "branch `main`" in text
    assert buttons(long) == ["incident_hide_details", "incident_confirm_suggestion"]
    assert long[1]["accessory"]["text"]["text"] == "Hide details"
    assert long[: len(short)] == [*short[:1], long[1], *short[2:]]  # the first screen does not move
    assert len(json.dumps(long)) < 12000


def test_hostile_text_stays_escaped_on_the_first_screen_and_in_the_details(runbook: Playbook) -> None:
    hostile = "<!channel> <@U0BOSS> <https://evil.example|login> `x` &"
    view = suggested(
        runbook,
        symptom=hostile,
        test_identity=hostile,
        suggested_reason=hostile,
        documentation_gap=hostile,
        organization_under_test=hostile,
        card_details=True,
    )
    view = CardView(runbook, view.incident, RUN, [{"kind": hostile, "path": hostile}], command=hostile, log=hostile)
    _, blocks = render_card(view)
    text = json.dumps(blocks, ensure_ascii=False)
    for raw in ("<!channel>", "<@U0BOSS>", "<https://evil.example"):
        assert raw not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


def test_each_redraw_shows_the_change_in_the_cards_buttons_and_menus(playbooks: Playbooks) -> None:
    """The actions are drawn once per state and reused: a change must never get the old ones.
    The same incident object changes step by step (as a delivery redraws it), every step drawn."""

    def actions(view: CardView) -> dict[str, Any]:
        (block,) = [b for b in render_card(view)[1] if b["type"] == "actions"]
        return block

    def element(block: dict[str, Any], action_id: str) -> dict[str, Any] | None:
        return next((e for e in block["elements"] if e["action_id"] == action_id), None)

    for playbook in playbooks:
        card = incident(id=41)
        view = CardView(playbook, card, run=RUN)
        block = actions(view)
        assert block["block_id"] == "incident:41" and element(block, "incident_ack") is not None
        assert "initial_option" not in (element(block, "incident_classify") or {})
        card.assignee = "U0ONCALL"
        assert element(actions(view), "incident_ack") is None  # taken: no Acknowledge
        klass = list(playbook.classes)[-1]
        card.failure_class = klass
        assert (element(actions(view), "incident_classify") or {})["initial_option"]["value"] == klass
        severity = next(iter(playbook.severities))
        card.severity = severity
        assert (element(actions(view), "incident_severity") or {})["initial_option"]["value"] == severity
        before = len((element(actions(view), "incident_status") or {})["options"])
        card.milestone = playbook.milestones[0].key
        assert len((element(actions(view), "incident_status") or {})["options"]) == before - 1  # forward only
        escalate = (element(actions(view), "incident_escalate") or {})["value"]
        card.escalation_level = 2
        assert (element(actions(view), "incident_escalate") or {})["value"] != escalate
        assert element(actions(view), "incident_file_bead") is not None
        card.bead_id = "sim-7"
        assert element(actions(view), "incident_file_bead") is None
        if playbook.flags:
            flag = next(iter(playbook.flags))
            card.flags = [flag]
            offered = [o["value"] for o in (element(actions(view), "incident_flag") or {"options": []})["options"]]
            assert flag not in offered
        other = incident(id=42)  # another incident in the same state: its own ids on its buttons
        assert actions(CardView(playbook, other, run=RUN))["block_id"] == "incident:42"
        changed = actions(view)
        changed["elements"].clear()  # what one caller does with its blocks never reaches the next
        assert actions(view)["elements"]
