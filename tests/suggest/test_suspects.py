"""Suspect changes: GitHub's compare between the last green and the first failing sha (paginated,
cached, rate-limit aware), owners from CODEOWNERS and the playbook's scopes, on the card's
Details, in /triage show, in /api/incidents and in the bead."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from slackbot.clients.github_actions import GitHubApiError
from slackbot.clients.github_changes import GitHubChanges
from slackbot.clock import FakeClock
from slackbot.config import Playbook
from slackbot.documents.record import RecordInputs, render_record
from tests.factories import report, result
from tests.fakes.github_api import fake_github
from tests.slack.conftest import NIGHTLY, RESPONDER, SHOW_DETAILS, Bot, bot, wait_for  # noqa: F401  (fixture)
from tests.slack.test_card_render import incident

GREEN, RED = "a" * 40, "b" * 40
CODEOWNERS = "# who owns what\n* @acme/everyone\ndrizzle/ @acme/schema-owners\nsrc/lib/server/services/ @acme/domain\n"


def commits(n: int) -> list[dict[str, str]]:
    return [{"sha": f"{i:040x}", "author": f"dev{i % 3}", "message": f"change {i}\n\nbody"} for i in range(1, n + 1)]


def test_a_comparison_is_read_page_by_page_once_and_a_rate_limit_says_when_to_retry() -> None:
    with fake_github(repos=("acme/dispatch",)) as github:
        github.add_comparison("acme/dispatch", GREEN, RED, commits(120), ["drizzle/0042_add_tenant.sql", "README.md"])
        api = GitHubChanges(github.url, github.token, FakeClock(), per_page=50)
        found = asyncio.run(api.compare("acme/dispatch", GREEN, RED))
        assert len(found.commits) == 120 and found.commits[-1].title == "change 120" and not found.truncated
        assert found.files == ["drizzle/0042_add_tenant.sql", "README.md"]
        compares = [r for r in github.requests if "/compare/" in r.path]
        assert [r.query.get("page", ["1"])[0] for r in compares] == ["1", "2", "3"]
        asyncio.run(api.compare("acme/dispatch", GREEN, RED))  # two shas compare the same forever: cached
        assert len([r for r in github.requests if "/compare/" in r.path]) == 3

        github.fail_next(
            1, 403, message="API rate limit exceeded", headers={"x-ratelimit-remaining": "0", "retry-after": "42"}
        )
        with pytest.raises(GitHubApiError) as limited:
            asyncio.run(api.compare("acme/dispatch", RED, GREEN))
        assert limited.value.retryable and limited.value.retry_after == 42.0


def test_the_changes_since_the_last_green_run_are_on_the_card_in_show_and_in_the_api(bot: Bot) -> None:  # noqa: F811
    bot.github.add_comparison(
        "acme/dispatch",
        GREEN,
        RED,
        commits(4),
        ["drizzle/0042_add_tenant.sql", "src/lib/server/services/assign.ts", "README.md"],
    )
    bot.github.add_file("acme/dispatch", ".github/CODEOWNERS", CODEOWNERS)
    green = report(result("SCH-005", "STATE-002", status="passed"), run_id="200")
    green["run"]["sha"] = GREEN
    bot.send(green)
    failing = report(result("SCH-005", "STATE-002", message='column "tenant_id" does not exist'), run_id="201")
    failing["run"]["sha"] = RED
    bot.send(failing)

    def suspects() -> object:
        return httpx.get(bot.url + "/api/incidents").json()["incidents"][0]["suspects"]

    found = wait_for(suspects, what="the suspect changes")
    assert found["commitCount"] == 4 and found["base"] == GREEN and found["head"] == RED
    assert [c["title"] for c in found["commits"]] == ["change 4", "change 3", "change 2", "change 1"]
    assert found["owners"] == ["@acme/domain", "@acme/everyone", "@acme/schema-owners"]
    assert found["classes"] == ["algorithm_regression", "data_schema_drift"]
    # the changed files joined the suggestion's signals: a migration changed since green
    incident = httpx.get(bot.url + "/api/incidents").json()["incidents"][0]
    assert incident["suggestedClass"] == "data_schema_drift"
    assert "changed since green: drizzle/0042_add_tenant.sql" in incident["suggestedReason"]

    card = bot.card("INC-1")
    bot.emulator.click_button(RESPONDER, NIGHTLY, card.ts, SHOW_DETAILS)
    details = json.dumps(
        wait_for(lambda: [m for m in [bot.card("INC-1")] if "Suspect changes" in json.dumps(m.blocks)], what="details")[
            0
        ].blocks,
        ensure_ascii=False,
    )
    assert (
        "*Suspect changes:*" in details and "change 4 — dev1" in details and "…and 1 more since `aaaaaaaa`" in details
    )
    assert "Owners: @acme/domain, @acme/everyone, @acme/schema-owners" in details
    assert "`drizzle/0042_add_tenant.sql` → @acme/schema-owners" in details  # each changed file's owners

    shown = bot.triage("show INC-1")
    assert "Suspect changes: " in shown and "change 4 — dev1" in shown


def test_the_bead_lists_the_suspect_changes_and_their_owners(runbook: Playbook) -> None:
    suspects = {
        "base": GREEN,
        "head": RED,
        "commitCount": 2,
        "commits": [
            {"sha": "c" * 40, "author": "dev2", "title": "Rename tenant column", "url": None},
            {"sha": "d" * 40, "author": "dev1", "title": "Add tenant migration", "url": None},
        ],
        "owners": ["@acme/schema-owners"],
    }
    document = render_record(
        RecordInputs(runbook, incident(failure_class="data_schema_drift", suspects=suspects), None, "x", "y")
    )
    assert "- Suspect changes since the last green sha aaaaaaaa (2 commits):" in document.body
    assert "  - `cccccccc` Rename tenant column (dev2)" in document.body
    assert "  - Owners of the changed files: @acme/schema-owners" in document.body
