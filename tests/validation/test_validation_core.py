"""Validation by evidence through the core, on SQLite and PostgreSQL: a person can still post the
milestone, which stops the count; a report from before the fix does not count."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.domain.changes import Actor, SetMilestone
from slackbot.incidents.core import IncidentCore
from slackbot.reads.cardview import load_card_view
from slackbot.slack.card import render_card
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result
from tests.status.support import incident, outbox, timeline

CAROL = Actor("U0CAROL", "command")


def send(engine: Engine, playbooks: Playbooks, clock: FakeClock, run_id: str, status: str) -> None:
    IngestService(playbooks, clock).ingest_report(engine, parsed(result(status=status), run_id=run_id))


def card_text(engine: Engine, playbooks: Playbooks, incident_id: int) -> str:
    view = load_card_view(engine, playbooks, incident_id)
    assert view is not None
    return str(render_card(view)[1])


def test_a_person_can_still_post_validation_complete_and_the_count_stops(
    engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    send(engine, playbooks, clock, "100", "failed")
    send(engine, playbooks, clock, "101", "passed")  # before the fix: not evidence of it
    core = IncidentCore(playbooks, clock)
    core.run(engine, 1, CAROL, SetMilestone("fix merged", "https://github.com/acme/dispatch/pull/42"))
    assert "0/3 green runs on `main`" in card_text(engine, playbooks, 1)
    send(engine, playbooks, clock, "102", "passed")
    assert "1/3 green runs on `main`: <https://github.com/acme/dispatch/actions/runs/102|run 102>" in card_text(
        engine, playbooks, 1
    )

    core.run(engine, 1, CAROL, SetMilestone("validated", "verified by hand on staging"))
    send(engine, playbooks, clock, "103", "passed")
    send(engine, playbooks, clock, "104", "failed")  # counted on the card as a recurrence, no interruption
    found = incident(engine, 1)
    assert found.milestone == "validation_complete" and found.validation_scope is None
    assert found.record["validation_proof"] == "verified by hand on staging"
    assert [e.message for e in timeline(engine, 1, "validation_evidence")] == ["Validation 1/3: run 102 passed"]
    assert [(e.actor, e.data["milestone"]) for e in timeline(engine, 1, "milestone")] == [
        ("U0CAROL", "fix_merged"),
        ("U0CAROL", "validation_complete"),
    ]
    assert not [o for o in outbox(engine, "incident_note", 1) if o.payload["template"] == "validation_interrupted"]
    assert "green runs" not in card_text(engine, playbooks, 1)
