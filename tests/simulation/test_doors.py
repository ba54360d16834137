"""The simulation's traffic goes through every door real teams use, and the outside checks look at
what came through each: report JSON, JUnit, GitHub's ``workflow_run`` webhook with the report
artifact downloaded from the fake GitHub Actions API, a CI notifier's message in Slack, a person's
triage reaction and ``@triagebot triage``."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from slackbot.clients.github_actions import GitHubActions
from slackbot.clock import FakeClock
from slackbot.config import load_playbooks
from slackbot.simulation.doors import DOORS, FETCHING_DOORS, artifact_zip, door_counts, workflow_run_event
from slackbot.simulation.github import running_github_issues
from slackbot.simulation.outside import World, check_entry_points
from slackbot.simulation.records import SimulationConfig
from slackbot.simulation.report import SimulationResult, report_markdown
from slackbot.simulation.simulate import simulate
from slackbot.sources.github import WorkflowRun
from tests.conftest import FIXTURES, RUNBOOKS

REPORT = {
    "schemaVersion": 1,
    "run": {
        "provider": "github",
        "repository": "acme/dispatch",
        "runId": "41017",
        "runAttempt": 1,
        "url": "https://github.com/acme/dispatch/actions/runs/41017",
        "workflow": "integration-nightly",
        "suite": "nightly",
        "branch": "main",
        "sha": "a" * 40,
        "finishedAt": "2026-11-23T02:00:00Z",
    },
    "results": [],
}
AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    # Seed 4's two days send failures through all six doors (checked below, so a change in the
    # traffic that loses one says so instead of passing on fewer doors).
    return simulate(SimulationConfig(days=2, seed=4, faults=False, workdir=tmp_path_factory.mktemp("doors")))


def test_every_door_carries_failures_and_the_outside_check_examines_each(two_days: SimulationResult) -> None:
    run = two_days.run
    failing = [r for r in run.traffic.sent if r.failures]
    used = door_counts(failing, run.ingest_answers)
    assert set(used) == set(DOORS), used
    check = next(c for c in two_days.checks if c.key == "entry_points")
    assert check.violations == [] and check.checked == sum(len(r.failures) for r in failing)
    for door in DOORS:
        assert f" {door} " in check.promise.split("per door:")[1] + " ", check.promise
    markdown = report_markdown(two_days, two_days.figures)
    assert two_days.passed, markdown[:3000]
    # the report's line names each door with its number of runs
    line = next(x for x in markdown.splitlines() if x.startswith("Entry points"))
    everything = door_counts(run.traffic.sent, run.ingest_answers)
    assert "GitHub `workflow_run` webhook with the report artifact " + str(everything["github"]) in line
    assert "a person's triage reaction " + str(everything["reaction"]) in line
    assert two_days.figures["ci"]["by_door"] == everything  # the --json report carries the same counts
    # the fetching doors' artifacts were downloaded from the fake GitHub, each run once
    fetched = [r for r in failing if door_counts([r], run.ingest_answers).keys() & set(FETCHING_DOORS)]
    downloads = [(repo, run_id) for repo, run_id, _ in run.snapshot.github_downloads]
    assert sorted(downloads) == sorted((r.report["run"]["repository"], r.run_id) for r in fetched)


def test_the_door_check_fails_when_a_door_left_no_trace(two_days: SimulationResult) -> None:
    """Without the artifact downloads, or without the bot's answers in the Slack threads, the same
    run fails the check run by run: it proves its pass from what GitHub and Slack recorded."""
    run = two_days.run
    playbooks = list(load_playbooks(RUNBOOKS))
    no_downloads = dataclasses.replace(run, snapshot=dataclasses.replace(run.snapshot, github_downloads=[]))
    check = check_entry_points(no_downloads, World.of(no_downloads, playbooks[0], playbooks))
    fetched = {
        r.run_id
        for r in run.traffic.sent
        if r.failures and door_counts([r], run.ingest_answers).keys() & set(FETCHING_DOORS)
    }
    assert {v.split()[1] for v in check.violations} == fetched
    assert all("never downloaded from GitHub" in v for v in check.violations)

    bot_replies = {(m.channel, m.ts) for m in run.snapshot.replies() if "INC-" in m.text}
    silent = dataclasses.replace(
        run,
        snapshot=dataclasses.replace(
            run.snapshot, messages=[m for m in run.snapshot.messages if (m.channel, m.ts) not in bot_replies]
        ),
    )
    check = check_entry_points(silent, World.of(silent, playbooks[0], playbooks))
    slack_runs = {a[0]["ts"] for a in run.ingest_answers.values() if a and "door" in a[0]}
    assert len([v for v in check.violations if "answer in the thread" in v]) == len(slack_runs) > 0


def test_the_simulated_webhook_has_githubs_shape_and_the_bot_reads_it() -> None:
    """Every field the simulation sends is one GitHub sends, with the same JSON type (octokit's
    recorded ``workflow_run.completed`` delivery)."""
    real = json.loads((FIXTURES / "github-webhook-workflow_run-completed.payload.json").read_text())
    sent = workflow_run_event(REPORT, AT, "http://127.0.0.1:1")

    def shape(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> list[str]:
        wrong = []
        for key, value in ours.items():
            if key not in theirs:
                wrong.append(f"{where}{key}: not in GitHub's payload")
            elif value is not None and theirs[key] is not None and type(value) is not type(theirs[key]):
                wrong.append(f"{where}{key}: {type(value).__name__}, GitHub sends {type(theirs[key]).__name__}")
            elif isinstance(value, dict):
                wrong += shape(value, theirs[key], f"{where}{key}.")
        return wrong

    assert shape(sent, real, "") == []
    run = WorkflowRun.from_webhook(sent)
    assert (run.repository, run.run_id, run.run_attempt, run.conclusion) == ("acme/dispatch", "41017", 1, "failure")
    assert run.url == REPORT["run"]["url"] and run.suite == "nightly" and run.finished_at == AT


def test_the_fake_actions_api_serves_runs_and_artifacts_to_the_bots_client() -> None:
    """The bot's own GitHub Actions client reads a run, lists its artifacts and follows the 302 to
    storage; storage refuses a request that carries the API token, as GitHub's does."""
    with running_github_issues() as github:
        actions = github.actions
        event = workflow_run_event(REPORT, AT, actions.url)
        actions.add_run("acme/dispatch", event["workflow_run"], {"integration-report": artifact_zip(REPORT)})
        client = GitHubActions(actions.url, "simulated-token", FakeClock(AT))

        async def fetch() -> tuple[dict[str, Any], list[dict[str, Any]], bytes]:
            run = await client.get_run("acme/dispatch", "41017", 1)
            artifacts = await client.list_artifacts("acme/dispatch", "41017")
            return run, artifacts, await client.download("acme/dispatch", artifacts[0])

        run, artifacts, data = asyncio.run(fetch())
        assert run["conclusion"] == "failure" and [a["name"] for a in artifacts] == ["integration-report"]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert json.loads(archive.read("report.json")) == REPORT
        assert actions.downloaded() == [("acme/dispatch", "41017", "integration-report")]

        assert httpx.get(f"{actions.url}/repos/acme/dispatch/actions/runs/41017").status_code == 401
        assert httpx.get(f"{actions.url}/repos/acme/dispatch/actions/runs/9/artifacts", headers=AUTH).json() == {
            "total_count": 0,
            "artifacts": [],
        }
        redirect = httpx.get(artifacts[0]["archive_download_url"], headers=AUTH)
        assert redirect.status_code == 302
        assert httpx.get(redirect.headers["location"], headers=AUTH).status_code == 400  # the token is refused
        assert httpx.get(redirect.headers["location"]).status_code == 200
        assert httpx.get(f"{actions.url}/_storage/unsigned").status_code == 403


AUTH = {"Authorization": "Bearer simulated-token"}
