"""One Escalate click is one escalation, however often it is delivered.

Slack (or a proxy in front of several replicas) can deliver the same signed click twice. Classify
was always safe (classifying twice into the same class changes nothing); Escalate moved a level
per delivery: level 1 -> 3, two posts, two DMs to each target, two PagerDuty triggers. The card's
button now carries the level it showed, and the core escalates only from that level.

Two app instances (two runtimes, two HTTP servers, two outbox workers) share one database, as
replicas do, on SQLite and PostgreSQL; the same signed bytes go to both at once, then once more.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from sqlmodel import Session, col, select

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.db.models import Incident, OutboxItem, TimelineEvent
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.slack import card
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.fakes.pagerduty import FakePagerDuty, running_pagerduty
from tests.slack.conftest import FAKE_BD, NIGHTLY, RESPONDER, SECRET, ShiftClock, init_beads, wait_for
from tests.slack.hostile import FORM, signed

LEADS_KEY = "e5ca1a7e0000000000000000000000bb"  # a PagerDuty routing key for @triage-leads
ONCALL = "U0GRACE"  # @triage-leads' person: the escalation DM goes to her


def runbooks_with_a_paging_escalation(target: Path) -> Path:
    """The shipped runbooks, with a PagerDuty routing key on every escalation target so that a
    doubled escalation would show as a second PagerDuty trigger."""
    shutil.copytree(RUNBOOKS, target)
    routing_file = target / "integration-triage" / "routing.yml"
    routing = yaml.safe_load(routing_file.read_text())
    for route in routing["classes"].values():
        route["escalation"]["pagerduty_routing_key"] = LEADS_KEY
    routing_file.write_text(yaml.safe_dump(routing, sort_keys=False, allow_unicode=True))
    return target


@dataclass
class Replicas:
    runtimes: list[Runtime]
    urls: list[str]
    emulator: SlackEmulator
    pagerduty: FakePagerDuty

    def rows(self, kind: str) -> list[OutboxItem]:
        with Session(self.runtimes[0].engine) as session:
            return list(session.exec(select(OutboxItem).where(OutboxItem.kind == kind)))

    def settled(self) -> bool:
        with Session(self.runtimes[0].engine) as session:
            states = session.exec(select(OutboxItem.state)).all()
        return bool(states) and all(state in ("done", "dead") for state in states)


@pytest.fixture
def replicas(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replicas]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runbooks = runbooks_with_a_paging_escalation(tmp_path / "runbooks")
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty:
        settings = Settings(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=emulator.signing_secret,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=db_url,
            TRIAGE_RUNBOOKS_DIR=runbooks,
            TRIAGE_INGEST_SECRET=SECRET,
            PAGERDUTY_EVENTS_URL=pagerduty.url,
            TRIAGE_BD_BIN=FAKE_BD,
            BEADS_DIR=init_beads(tmp_path),
        )
        runtimes = [build_runtime(settings, slack=slack_client_for(settings), clock=ShiftClock()) for _ in range(2)]
        seed_workspace(emulator, runtimes[0].playbooks)
        with serve(build_asgi(runtimes[0])) as first, serve(build_asgi(runtimes[1])) as second:
            emulator.bot_url = first + "/slack/events"
            yield Replicas(runtimes, [first, second], emulator, pagerduty)
        for runtime in runtimes:
            runtime.engine.dispose()


def test_one_escalate_click_delivered_to_two_replicas_and_again_escalates_once(replicas: Replicas) -> None:
    send_report(json.dumps(report(result("BID-001", "TENANT-001"))).encode(), replicas.urls[0], SECRET)
    emulator = replicas.emulator
    posted = wait_for(lambda: [m for m in emulator.messages(NIGHTLY) if m.blocks], what="the card")
    card_message = posted[0]
    button = next(
        e
        for b in card_message.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == card.ACTION_ESCALATE
    )
    with emulator.workspace.lock:
        url = emulator.workspace.issue_response_url(
            emulator.actor.root_url(),
            kind="block_actions",
            user_id=RESPONDER,
            channel_id=NIGHTLY,
            message_ts=card_message.ts,
        ).url
    payload = {
        "type": "block_actions",
        "user": {"id": RESPONDER, "username": "carol", "team_id": emulator.team_id},
        "team": {"id": emulator.team_id},
        "api_app_id": "A0TRIAGEBOT",
        "container": {"type": "message", "message_ts": card_message.ts, "channel_id": NIGHTLY},
        "channel": {"id": NIGHTLY, "name": "integration-nightly"},
        "response_url": url,
        "trigger_id": "1.2.3",
        "actions": [
            {
                "action_id": card.ACTION_ESCALATE,
                "block_id": "incident:1",
                "value": button["value"],
                "type": "button",
                "action_ts": "1700000000.000100",
            }
        ],
    }

    def deliver(base: str, click: dict[str, object] = payload) -> int:
        body = f"payload={quote(json.dumps(click))}".encode()
        headers = {"content-type": FORM, **signed(emulator.signing_secret, body)}
        return httpx.post(base + "/slack/events", content=body, headers=headers, timeout=30).status_code

    # Slack delivering one click twice (to both replicas at once): both acked, one recorded, so
    # it is applied once and its clicker hears nothing twice (slackbot/inbox: one row per request).
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(deliver, replicas.urls)) == [200, 200]
    # Someone else clicking the same (now stale) button later: acked, nothing paged again, and told why.
    later = {**payload, "trigger_id": "4.5.6", "actions": [{**payload["actions"][0], "action_ts": "1700000009.000100"}]}
    assert deliver(replicas.urls[0], later) == 200
    refusal = wait_for(
        lambda: [e for e in emulator.ephemerals(RESPONDER) if "escalated meanwhile" in str(e.get("text"))],
        what="the later click's answer",
    )
    assert "nothing was paged again" in refusal[0]["text"]
    wait_for(replicas.settled, timeout=30, what="every delivery done")

    with Session(replicas.runtimes[0].engine) as session:
        incident = session.get(Incident, 1)
        escalations = session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == "escalated").order_by(col(TimelineEvent.id))
        ).all()
    assert incident is not None and incident.escalation_level == 1
    assert len(escalations) == 1
    thread = emulator.replies(NIGHTLY, card_message.ts)
    assert len([m for m in thread if "escalated this incident" in m.text]) == 1
    assert len(emulator.messages(emulator.dm_channel_id(ONCALL))) == 1
    assert [t["routing_key"] for t in replicas.pagerduty.triggers()] == [LEADS_KEY]
    assert len([e for e in emulator.ephemerals(RESPONDER) if "escalated meanwhile" in str(e.get("text"))]) == 1
    # the redrawn card offers the next step: a later click escalates again, once
    redrawn = wait_for(
        lambda: next(
            (
                e
                for b in emulator.messages(NIGHTLY)[0].blocks
                if b["type"] == "actions"
                for e in b["elements"]
                if e["action_id"] == card.ACTION_ESCALATE and e["value"] != button["value"]
            ),
            None,
        ),
        what="the redrawn Escalate button",
    )
    assert redrawn["value"] == "1@1"


def test_an_id_past_the_databases_integer_is_no_incident_on_either_database(replicas: Replicas) -> None:
    """PostgreSQL's INTEGER key makes INC-2147483648 a query error there (SQLite would only miss):
    on both, the person reads "no incident", from a command and from a button."""
    send_report(json.dumps(report(result("BID-001", "TENANT-001"))).encode(), replicas.urls[0], SECRET)
    emulator = replicas.emulator
    card_message = wait_for(lambda: [m for m in emulator.messages(NIGHTLY) if m.blocks], what="the card")[0]
    emulator.slash_command(RESPONDER, NIGHTLY, "show INC-2147483648")
    emulator.click_button(RESPONDER, NIGHTLY, card_message.ts, card.ACTION_RUNBOOK, value="2147483648")
    emulator.click_button(RESPONDER, NIGHTLY, card_message.ts, card.ACTION_ACK, value="2147483648")
    answers = wait_for(
        lambda: len(a := [str(e.get("text")) for e in emulator.ephemerals(RESPONDER)]) >= 3 and a,
        what="three answers",
    )
    assert all("no incident INC-2147483648" in a for a in answers), answers
    with Session(replicas.runtimes[0].engine) as session:
        incident = session.get(Incident, 1)
    assert incident is not None and incident.assignee is None
