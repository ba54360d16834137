"""``/triage postmortem INC-n``: a Markdown file in the card's thread, built from the audit trail."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, RunbookExecution
from slackbot.documents.postmortem import render_postmortem
from slackbot.domain.changes import Actor, Classify
from slackbot.emulator.state import UploadedFile
from slackbot.incidents.core import IncidentCore
from slackbot.reads.postmortem import postmortem_inputs
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, Bot, wait_for

SECTIONS = ("## Incident record", "## What happened", "## Root cause", "## Blast radius", "## Timeline")


def uploads(bot: Bot, count: int) -> list[UploadedFile]:
    """Files shared into a channel (bytes sent and the upload completed), oldest first."""
    found: list[UploadedFile] = wait_for(
        lambda: len(files := [f for f in bot.emulator.files() if f.channel]) >= count and files,
        what=f"{count} shared file(s)",
    )
    return found


def test_postmortem_lands_in_the_thread_as_a_file_with_sections_and_timeline(bot: Bot) -> None:
    bot.send(report(result("API-001", "TENANT-003", message="org-b rows visible to org-a <!channel> | leak")))
    card = bot.card("INC-1")
    bot.triage("ack INC-1")
    bot.clock.shift(minutes=7)
    bot.triage("classify INC-1 algorithm")
    bot.triage("status INC-1 mitigation_active reverted the org filter change (PR 4411)")

    answer = bot.triage("postmortem INC-1")
    assert "draft postmortem" in answer and "INC-1" in answer
    draft = uploads(bot, 1)[0]
    assert (draft.name, draft.channel, draft.thread_ts) == ("INC-1-postmortem.md", NIGHTLY, card.ts)
    assert draft.title is not None and draft.title.startswith("DRAFT Postmortem INC-1: API-001 / TENANT-003")
    text = draft.text
    assert text.startswith("# DRAFT Postmortem INC-1: API-001 / TENANT-003\n")
    assert "**Draft.** INC-1 is still open (milestone: mitigation active)" in text
    for heading in (*SECTIONS, "## What we changed", "## Follow-ups"):
        assert heading in text
    # the timeline is the audit trail, in order, with who and how
    timeline = text[text.index("## Timeline") : text.index("## What we changed")]
    rows = [line for line in timeline.splitlines() if line.startswith("| 20")]
    assert "INC-1 opened from run acme/dispatch#9187" in rows[0]
    assert any("Acknowledged by U0CAROL | U0CAROL | command" in r for r in rows)
    assert any("Classified algorithm_regression by U0CAROL" in r for r in rows)
    assert any("Milestone mitigation_active by U0CAROL: reverted the org filter change (PR 4411)" in r for r in rows)
    assert "| Acknowledged |" in text and "| Classified |" in text
    assert "| 7 min" in text  # classified 7 minutes after the card opened
    assert "reverted the org filter change (PR 4411) (U0CAROL)" in text  # what we changed
    assert "Not recorded yet" in text  # no root cause while open
    assert "org-b rows visible to org-a <!channel> \\| leak" in text  # a file, not mrkdwn; one table cell
    assert "- [ ] Resolve INC-1 with the root cause" in text

    # the message carrying the file says who asked, and nothing untrusted reaches mrkdwn
    post = next(m for m in bot.thread("INC-1") if m.files)
    assert "Draft postmortem of *INC-1*" in post.text and "<@U0CAROL>" in post.text
    assert "<!channel>" not in post.text

    bot.triage("bead INC-1")
    bot.triage("resolve INC-1 the org filter compared org ids as strings; fixed in PR 4412")
    assert "posting the postmortem of INC-1" in bot.triage("postmortem INC-1")
    final = uploads(bot, 2)[-1]
    assert final.title is not None and final.title.startswith("Postmortem INC-1")
    assert final.thread_ts == card.ts
    assert final.text.startswith("# Postmortem INC-1") and "Draft" not in final.text
    root_cause = final.text[final.text.index("## Root cause") : final.text.index("## Blast radius")]
    assert "the org filter compared org ids as strings; fixed in PR 4412" in root_cause
    assert "| Resolved |" in final.text and "Postmortem draft requested by U0CAROL" in final.text


def test_only_responders_may_post_and_unknown_ids_are_refused(bot: Bot) -> None:
    bot.send(report(result("BID-001", "TENANT-001")))
    bot.card("INC-1")
    assert "Only responders" in bot.triage("postmortem INC-1", user=OUTSIDER)
    assert "no incident INC-42" in bot.triage("postmortem INC-42")
    assert "usage: `/triage postmortem ID`" in bot.triage("postmortem")
    assert bot.emulator.files() == []


def test_a_failed_upload_is_retried_and_posts_once(bot: Bot) -> None:
    bot.send(report(result("NOS-003", "ASSIGN-002", test_file="tests/integration/noshow.test.ts")))
    bot.card("INC-1")
    bot.emulator.fail_next("files.completeUploadExternal", status=500)
    bot.triage("postmortem INC-1")
    uploads(bot, 1)
    files = wait_for(lambda: [m for m in bot.thread("INC-1") if m.files], what="the file in the thread")
    assert len(files) == 1
    assert [f.name for f in bot.emulator.files() if f.channel] == ["INC-1-postmortem.md"]
    assert [c.status for c in bot.emulator.calls("files.completeUploadExternal")] == [500, 200]


# -- the document itself (service level, both databases) ----------------------------------------


def test_blast_radius_and_runbook_steps(playbooks: Playbooks, engine: Engine, clock: FakeClock) -> None:
    ingest = IngestService(playbooks, clock)
    with session_scope(engine) as session:
        first = ingest.ingest(
            session, parsed(result("BID-001", "TENANT-001"), result("BID-002", "NOTIF-001"), run_id="100")
        )
    clock.advance(timedelta(hours=1))
    with session_scope(engine) as session:
        ingest.ingest(
            session,
            parsed(result("BID-001", "TENANT-001", keyEntityIds={"orgId": "org-c"}), run_id="101", attempt=2),
        )
    incident_id = int(first.incidents[0].id or 0)
    IncidentCore(playbooks, clock).run(engine, incident_id, Actor("U0CAROL", "button"), Classify("algorithm"))
    with session_scope(engine) as session:
        session.add(
            RunbookExecution(
                incident_id=incident_id,
                runbook="algorithm_regression",
                runbook_version=1,
                step_index=1,  # stored 1-based, as recording a checklist click does (StepRef.index)
                step_text="Reproduce the single scenario twice on a disposable local DB",
                result="done",
                actor="U0CAROL",
                at=clock.now(),
                note="fails the same way twice",
            )
        )
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        playbook = playbooks.get(incident.playbook)
        document = render_postmortem(postmortem_inputs(session, playbook, incident, clock.now()))
    assert document.draft and document.filename == f"INC-{incident_id}-postmortem.md"
    text = document.markdown
    blast = text[text.index("## Blast radius") : text.index("## Timeline")]
    assert "- Runs affected: 2 on main, 1 commit." in blast
    assert "- Occurrences: 2." in blast
    assert "orgId org-a, org-c" in blast
    assert "- Other failures in the same runs: 1 (check for a shared cause)." in blast
    assert "acme/dispatch #100 attempt 1" in blast and "acme/dispatch #101 attempt 2" in blast
    steps = text[text.index("### Runbook steps executed") : text.index("## What we changed")]
    assert "| algorithm_regression | 1. Reproduce the single scenario twice" in steps
    assert "| done | U0CAROL | fails the same way twice |" in steps
    assert 'pnpm exec vitest -c vitest.integration.config.ts tests/integration --run -t "BID-001"' in text
