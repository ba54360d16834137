"""Pages end to end: the real bot over HTTP, the Slack emulator and a local PagerDuty endpoint.

What an on-call person notices: the DM, the mention in the incident thread, the PagerDuty
incident (one per bot incident, deduplicated on its key, at the right severity) that is
acknowledged and resolved along with the bot's incident; and when PagerDuty refuses a page, the
thread says so and the fallback is paged instead.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlmodel import Session, col, select

from slackbot.clock import as_utc
from slackbot.db.models import Incident, OutboxItem, TimelineEvent
from slackbot.emulator.state import Message
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, Bot, wait_for

DOMAIN_OWNERS_KEY = "7600cc51e9576d2acf48217cebb25cb8"  # routing.yml: algorithm_regression owner
RELEASE_MAINTAINER_KEY = "289605aa73480500c388010973584b51"


def incident(bot: Bot, incident_id: int = 1) -> Incident:
    with Session(bot.core.engine) as session:
        found = session.get(Incident, incident_id)
        assert found is not None
        return found


def rows(bot: Bot, kind: str) -> list[OutboxItem]:
    with Session(bot.core.engine) as session:
        return list(session.exec(select(OutboxItem).where(OutboxItem.kind == kind).order_by(col(OutboxItem.id))))


def dms(bot: Bot, user: str) -> list[Message]:
    return bot.emulator.messages(bot.emulator.dm_channel_id(user))


def events(bot: Bot, action: str, routing_key: str | None = None) -> list[dict[str, Any]]:
    with bot.pagerduty.lock:
        return [
            e for e in bot.pagerduty.events if e["event_action"] == action and routing_key in (None, e["routing_key"])
        ]


def open_incident(bot: Bot, scenario: str = "BID-001") -> None:
    """A failure whose scenario prefix suggests algorithm_regression (owner @domain-owners)."""
    bot.send(report(result(scenario, "TENANT-001")))
    bot.card("INC-1")


def test_sev1_pages_by_dm_thread_and_pagerduty_with_the_incident_key(bot: Bot) -> None:
    open_incident(bot)
    bot.triage("severity INC-1 SEV-1")

    # PagerDuty: one trigger per paged service, deduplicated on the incident key.
    triggers = wait_for(lambda: len(t := bot.pagerduty.triggers()) >= 2 and t, what="two PagerDuty triggers")
    assert {t["routing_key"] for t in triggers} == {RELEASE_MAINTAINER_KEY, DOMAIN_OWNERS_KEY}
    for trigger in triggers:
        assert trigger["dedup_key"] == "INC-1"
        payload = trigger["payload"]
        assert payload["severity"] == "critical"  # policy.yml: SEV-1 -> critical
        assert payload["summary"].startswith("INC-1 BID-001 / TENANT-001: ")
        assert payload["custom_details"]["severity"] == "SEV-1"
        assert {"href": "https://github.com/acme/dispatch/actions/runs/9187", "text": "CI run"} in trigger["links"]
        assert any(link["text"] == "INC-1 in triagebot" for link in trigger["links"])
    # DMs to the release maintainer and the owner's on-call person, naming the incident.
    for user in ("U0FRANK", "U0CAROL"):
        (dm,) = wait_for(functools.partial(dms, bot, user), what=f"a DM to {user}")
        assert "You are paged for *INC-1*" in dm.text and f"<#{NIGHTLY}>" in dm.text
    # The thread mentions whom it paged.
    page = wait_for(lambda: [m for m in bot.thread("INC-1") if "Severity raised" in m.text], what="the thread page")
    assert "<@U0FRANK>" in page[0].text


def test_severity_maps_to_pagerduty_severity(bot: Bot) -> None:
    open_incident(bot)
    bot.triage("severity INC-1 SEV-2")  # pages the owner only
    (trigger,) = wait_for(bot.pagerduty.triggers, what="a PagerDuty trigger")
    assert (trigger["routing_key"], trigger["payload"]["severity"]) == (DOMAIN_OWNERS_KEY, "error")


def test_pagerduty_400_is_not_retried_and_the_fallback_is_paged_with_a_thread_notice(bot: Bot) -> None:
    open_incident(bot)
    bot.pagerduty.fail_next(400)
    bot.triage("severity INC-1 SEV-2")

    notice = wait_for(
        lambda: [m for m in bot.thread("INC-1") if "Paging the fallback" in m.text], what="the fallback notice"
    )
    text = notice[0].text
    assert "paging @domain-owners by PagerDuty failed" in text and "HTTP 400" in text
    assert "<!subteam^S0HARNESS>" in text  # algorithm_regression's fallback: @harness-maintainers
    (fallback_dm,) = wait_for(lambda: dms(bot, "U0BOB"), what="the fallback's DM")
    assert "INC-1" in fallback_dm.text
    (trigger,) = rows(bot, "pagerduty")
    assert trigger.state == "dead" and "HTTP 400" in (trigger.last_error or "")
    # Dead is final: the one refused attempt was the only one (the fake would accept a retry).
    # An hour later, and after the worker has delivered something newer (rows are claimed oldest
    # first, so a retry that was due would have gone out by then), PagerDuty still saw nothing.
    bot.clock.shift(hours=1)
    bot.send(report(result("SCH-002", "STATE-001", test_file="tests/integration/s.test.ts"), run_id="9188"))
    bot.card("INC-2")
    assert rows(bot, "pagerduty")[0].state == "dead"
    assert bot.pagerduty.triggers() == [] and bot.pagerduty.failures == []
    with Session(bot.core.engine) as session:
        failed = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "delivery_failed")).all()
    assert [e.data["kind"] for e in failed] == ["pagerduty"]


def test_pagerduty_5xx_and_429_are_retried_until_delivered(bot: Bot) -> None:
    open_incident(bot)
    bot.pagerduty.fail_next(503)
    bot.pagerduty.fail_next(429)
    bot.triage("severity INC-1 SEV-2")

    def delivered() -> OutboxItem | None:
        bot.clock.shift(seconds=1)  # skip the backoff instead of sleeping through it
        (row,) = rows(bot, "pagerduty")
        return row if row.state == "done" else None

    row = wait_for(delivered, what="the trigger after two retries")
    assert row.attempts == 3 and "HTTP 429" in (row.last_error or "")
    (trigger,) = bot.pagerduty.triggers()  # the two refused attempts left nothing behind
    assert trigger["dedup_key"] == "INC-1"
    assert not [m for m in bot.thread("INC-1") if "Paging the fallback" in m.text]


def test_acknowledge_and_resolve_follow_the_incident_in_pagerduty(bot: Bot) -> None:
    open_incident(bot)
    bot.triage("severity INC-1 SEV-1")
    wait_for(lambda: len(bot.pagerduty.triggers()) == 2, what="two PagerDuty triggers")

    bot.triage("ack INC-1")
    acks = wait_for(lambda: len(a := events(bot, "acknowledge")) >= 2 and a, what="PagerDuty acknowledge events")
    assert sorted((a["routing_key"], a["dedup_key"]) for a in acks) == sorted(
        [(RELEASE_MAINTAINER_KEY, "INC-1"), (DOMAIN_OWNERS_KEY, "INC-1")]
    )
    bot.triage("classify INC-1 algorithm")
    bot.triage("resolve INC-1 off-by-one in the scoring window")
    resolves = wait_for(lambda: len(r := events(bot, "resolve")) >= 2 and r, what="PagerDuty resolve events")
    assert sorted((r["routing_key"], r["dedup_key"]) for r in resolves) == sorted(
        [(RELEASE_MAINTAINER_KEY, "INC-1"), (DOMAIN_OWNERS_KEY, "INC-1")]
    )
    assert len(events(bot, "acknowledge")) == 2 and len(bot.pagerduty.triggers()) == 2


def test_the_escalation_pages_the_escalation_target_by_dm_and_in_the_thread(bot: Bot) -> None:
    open_incident(bot)
    bot.clock.shift(minutes=20, seconds=1)
    (dm,) = wait_for(lambda: dms(bot, "U0GRACE"), what="the escalation DM")
    assert "You are paged for *INC-1*" in dm.text and "Reason: unclassified" in dm.text
    page = wait_for(lambda: [m for m in bot.thread("INC-1") if "escalation level 1" in m.text], what="the page")
    assert "<!subteam^S0LEADS>" in page[0].text
    assert bot.pagerduty.triggers() == []  # @triage-leads has no PagerDuty routing key in routing.yml


def test_the_card_and_show_display_when_the_escalation_fires(bot: Bot) -> None:
    open_incident(bot)
    deadline = int(as_utc(incident(bot).classify_deadline).timestamp())  # <!date^…> carries the instant
    card = json.dumps(bot.card("INC-1").blocks, ensure_ascii=False)
    assert f"⏰ escalates to @triage-leads at <!date^{deadline}^" in card
    shown = bot.triage("show INC-1")
    assert f"⏰ Pending: escalates to @triage-leads at <!date^{deadline}^" in shown

    bot.triage("classify INC-1 algorithm")
    redrawn = wait_for(
        lambda: "escalates to" not in json.dumps((m := bot.card("INC-1")).blocks) and m, what="the redrawn card"
    )
    assert "Algorithm regression" in json.dumps(redrawn.blocks, ensure_ascii=False)
    assert "escalates to" not in bot.triage("show INC-1")
