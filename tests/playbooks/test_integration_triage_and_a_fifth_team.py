"""Seed 001's integration triage end to end in its own words, and a made-up fifth team whose
playbook exists only as data (no code knows it) served by the same bot at the same time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from slackbot.db.models import Incident
from tests.beads.test_bead_filing import beads
from tests.config.test_playbooks import FIFTH_POLICY, FIFTH_ROUTING, add_playbook
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.playbooks.conftest import PlaybookBot, running_bot
from tests.slack.conftest import wait_for

FRANK = "U0FRANK"  # the release maintainer


def test_integration_triage_speaks_seed_001(bot: PlaybookBot) -> None:
    answer = bot.send(report(result("BID-001", "TENANT-001"), result(None, None, test_name="reset hangs")))
    assert [i["playbook"] for i in answer["incidents"]] == ["integration-triage"] * 2
    violation = bot.card_text("INC-2")
    assert "no scenarioId/invariantId emitted" in violation and "Harness/diagnostics defect" in violation
    card = bot.details_text("INC-1")
    assert "Bidding lifecycle (competitive/instant/emergency)" in card  # the taxonomy's meaning
    assert "Evidence to capture" in card and "counts by orgId" in card
    assert "pnpm exec vitest -c vitest.integration.config.ts tests/integration --run -t" in card
    assert "classified Algorithm regression" in bot.triage("classify INC-1 Algorithm regression")
    assert "SEV-1" in bot.triage("severity INC-1 sev1")
    wait_for(lambda: any("INC-1" in t for t in bot.dms(FRANK)), what="the release maintainer's page")
    for milestone in ("triage complete", "mitigation active", "fix merged", "validation complete"):
        assert milestone.capitalize() in bot.triage(f"status INC-1 {milestone}")
    assert "INC-1 resolved" in bot.triage("resolve INC-1 winner selection ignored the org filter")
    titles = [b["title"] for b in wait_for(lambda: len(beads(bot)) >= 2 and beads(bot), what="both beads")]
    assert "Integration failure: BID-001 / TENANT-001 (notification for org-b visible to org-a)" in titles
    assert any(t.startswith("Integration failure: no-scenarioId / no-invariantId") for t in titles)


@pytest.fixture
def fifth_team_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runbooks = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, runbooks)
    add_playbook(runbooks, "load-tests", FIFTH_ROUTING, FIFTH_POLICY)
    with running_bot(tmp_path, runbooks) as running:
        yield running


def test_a_fifth_team_written_only_as_data_works_beside_the_others(fifth_team_bot: PlaybookBot) -> None:
    bot = fifth_team_bot
    mixed = report(result(None, None, test_name="checkout p95 over budget"), repository="acme/loadtest", suite="load")
    (opened,) = bot.send(mixed)["incidents"]
    assert (opened["playbook"], opened["contractViolation"]) == ("load-tests", False)  # id_contract: none
    nightly = bot.send(report(result("BID-001", "TENANT-001")))["incidents"][0]
    assert nightly["playbook"] == "integration-triage"  # the other teams are served as before

    default_channel = "C0TRIAGE"  # suite "load" is not one of its suites: the workspace default channel
    card = bot.details_text(opened["id"], default_channel)
    assert "Load test failures" in card and "Quota exceeded" in card and "P1" in card and "P2" in card
    assert "Harness/diagnostics" not in card and "SEV-" not in card

    help_text = bot.triage(f"help {opened['id']}", channel=default_channel)
    assert "Load test failures" in help_text and "Quota exceeded (`quota_exceeded`)" in help_text
    assert "`mitigated`, `closed`" in help_text

    key = opened["id"]
    assert "classified Quota exceeded" in bot.triage(f"classify {key} OVER BUDGET", channel=default_channel)
    assert "Raise the quota or shed load" in wait_for(
        lambda: " ".join(m.text for m in bot.thread(key, default_channel)), what="the classified post"
    )
    refused = bot.triage(f"severity {key} SEV-2", channel=default_channel)
    assert "use one of: P1, P2" in refused
    assert "is now P1" in bot.triage(f"severity {key} urgent", channel=default_channel)
    wait_for(lambda: any(key in t for t in bot.dms("U0VIC")), what="the platform on-call page")
    assert "Mitigated" in bot.triage(f"status {key} mitigated", channel=default_channel)
    assert f"{key} resolved" in bot.triage(
        f"status {key} closed ticket=OPS-42 raised the quota", channel=default_channel
    )
    with Session(bot.core.engine) as session:
        row = session.exec(select(Incident).where(Incident.playbook == "load-tests")).one()
    assert row.record == {"root_cause": "raised the quota", "ticket": "OPS-42"}
    assert row.milestone == "closed" and row.status == "resolved"
