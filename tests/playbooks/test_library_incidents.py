"""Seed 003's library incidents, end to end over HTTP: a .NET JUnit file without ids opens a card
for the failing test (no contract violation), the class's data-loss severity pages the release
maintainer, a required rollback escalates again, the four status milestones fill the incident
issue, and resolving needs that issue filed in GitHub."""

from __future__ import annotations

from sqlmodel import Session

from slackbot.db.models import Incident
from tests.conftest import RUNBOOKS
from tests.playbooks.conftest import PlaybookBot
from tests.slack.conftest import wait_for

LIBRARY = "C0LIBRARY"
MAINTAINER = "U0OLIVE"
RELEASE_MAINTAINER = "U0PAUL"
STORAGE_OWNER = "U0QUENTIN"
EXAMPLE = RUNBOOKS / "library-incidents" / "examples" / "junit.xml"
TEST = "CBDD.Tests.Storage.RecoveryTests::Recover_ReplaysCommittedTransactions_AfterUncleanShutdown"


def incident(bot: PlaybookBot) -> Incident:
    with Session(bot.core.engine) as session:
        found = session.get(Incident, 1)
        assert found is not None
        return found


def test_a_storage_failure_runs_the_library_runbook(bot: PlaybookBot) -> None:
    answer = bot.send_junit(
        EXAMPLE.read_bytes(), suite="library-ci", repository="acme/cbdd", runId="18231", branch="main"
    )
    assert answer["failures"] == 1
    (opened,) = answer["incidents"]
    assert (opened["playbook"], opened["contractViolation"], opened["class"]) == ("library-incidents", False, None)

    card = bot.details_text("INC-1", LIBRARY, user=MAINTAINER)
    assert TEST in card and "Contract violation" not in card  # identified by its test, not by ids
    assert "Storage and recovery" in card  # suggested from the JUnit classname's scope glob
    assert "Write-ahead log record checksum mismatch" in card
    # The repro names the failing test method alone, as vstest's filter wants it.
    assert '--filter \\"FullyQualifiedName~Recover_ReplaysCommittedTransactions_AfterUncleanShutdown\\"' in card

    # Seed 003's status milestones: triage complete needs the class first, and the incident context.
    refused = bot.triage("status INC-1 triage complete", user=MAINTAINER, channel=LIBRARY)
    assert "classify INC-1 before" in refused
    assert "classified Storage and recovery" in bot.triage(
        "classify INC-1 storage and recovery", user=MAINTAINER, channel=LIBRARY
    )
    # Data loss risk: the class's default severity is SEV-1, which pages the release maintainer at once.
    assert incident(bot).severity == "SEV-1"
    wait_for(lambda: any("INC-1" in t for t in bot.dms(RELEASE_MAINTAINER)), what="the release maintainer's page")
    wait_for(lambda: any("INC-1" in t for t in bot.dms(STORAGE_OWNER)), what="the owner's page")

    # "or rollback is required": a flag that escalates to the release maintainer again.
    pages_before = len(bot.dms(RELEASE_MAINTAINER))
    assert "flagged Rollback required" in bot.triage("flag INC-1 rollback", user=MAINTAINER, channel=LIBRARY)
    wait_for(lambda: len(bot.dms(RELEASE_MAINTAINER)) > pages_before, what="a second page for the rollback")
    assert "Rollback required" in bot.card_text("INC-1", LIBRARY)

    needs = bot.triage("status INC-1 triage complete", user=MAINTAINER, channel=LIBRARY)
    assert "needs the failing operation, version, environment" in needs
    done = bot.triage(
        'status INC-1 triage complete version=2.4.1 environment="linux-x64, net8.0" open after unclean shutdown',
        user=MAINTAINER,
        channel=LIBRARY,
    )
    assert "Triage complete" in done
    for milestone, note in (
        ("mitigation active", "consumers pinned to 2.4.0"),
        ("fix merged", "https://github.com/acme/cbdd/pull/412"),
        ("validation complete", "targeted and full regression green in run 18240"),
    ):
        assert milestone.capitalize() in bot.triage(
            f"status INC-1 {milestone} {note}", user=MAINTAINER, channel=LIBRARY
        )
    record = incident(bot).record
    assert record["failing_operation"] == "open after unclean shutdown" and record["version"] == "2.4.1"
    assert record["fix_pr"] == "https://github.com/acme/cbdd/pull/412"

    # The incident issue (GitHub, acme/cbdd) was filed for SEV-1; resolving needs it and closes it.
    issues = wait_for(lambda: list(bot.github.issues["acme/cbdd"].values()), what="the incident issue")
    assert issues[0]["title"].startswith("Incident:") and "Recover_ReplaysCommittedTransactions" in issues[0]["title"]
    wait_for(lambda: incident(bot).bead_id, what="the issue number recorded")
    resolved = bot.triage("resolve INC-1 torn WAL segment header skipped by replay", user=MAINTAINER, channel=LIBRARY)
    assert "INC-1 resolved" in resolved
    wait_for(lambda: bot.github.issue("acme/cbdd", 1)["state"] == "closed", what="the incident issue closed")
