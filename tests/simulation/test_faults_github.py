"""GitHub's outages among the simulation's faults: its Actions API answers a 5xx page, or the rate
limit's 403 until ``x-ratelimit-reset``, over runs that come through the ``workflow_run`` webhook;
the bot's artifact download retries and every failure of those runs still gets its own card."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from slackbot.clients.github_actions import GitHubActions, GitHubApiError
from slackbot.clock import FakeClock
from slackbot.config import load_playbooks
from slackbot.simulation.doors import artifact_zip, workflow_run_event
from slackbot.simulation.faults import GITHUB_OUTAGE
from slackbot.simulation.github import running_github_issues
from slackbot.simulation.outside import World, check_github_outage
from slackbot.simulation.records import SimulationConfig
from slackbot.simulation.report import SimulationResult, report_markdown
from slackbot.simulation.simulate import simulate
from tests.conftest import RUNBOOKS
from tests.simulation.test_doors import AT, REPORT


@pytest.fixture(scope="module")
def one_day(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    # Seed 5's first day sends two failed runs through the webhook, one in each outage (5xx, then
    # the rate limit), besides the other faults: the shortest run that meets both.
    return simulate(SimulationConfig(days=1, seed=5, faults=True, workdir=tmp_path_factory.mktemp("github")))


def test_runs_that_met_githubs_outages_were_downloaded_later_and_got_their_cards(one_day: SimulationResult) -> None:
    run = one_day.run
    outages = run.faults.by_kind(GITHUB_OUTAGE)
    assert [o.params["status"] in (500, 502, 503) for o in outages] == [True, False]
    assert outages[1].params["status"] == 403 and all("run" in o.params for o in outages)
    refused = run.snapshot.github_refused
    statuses = {status for _, _, status in refused}
    assert 403 in statuses and statuses & {500, 502, 503}, refused
    # each run GitHub refused was downloaded once it was back, and each outage began with a run
    # whose download GitHub refused
    met = {(repo, run_id) for repo, run_id, _ in refused}
    assert met <= {(repo, run_id) for repo, run_id, _ in run.snapshot.github_downloads}
    assert {o.params["run"] for o in outages} <= {run_id for _, run_id in met}
    # the retries got each report soon after GitHub came back: within the outbox's longest backoff
    # (300 s, jittered) of a 5xx outage's end, at the rate limit's reset
    for outage in outages:
        where = next(m for m in met if m[1] == outage.params["run"])
        assert outage.until is not None
        assert outage.until <= run.snapshot.github_fetched_at[where] <= outage.until + timedelta(minutes=7)
    checks = {c.key: c for c in one_day.checks}
    # the timed rule and the run escalations count from when the bot could read the report
    assert checks["timed_rule"].passed and checks["run_escalations"].passed, checks["timed_rule"].violations
    github = checks["github_outage"]
    assert github.passed and github.checked == len(met), github.violations
    assert f"({len(met)} runs met the outage)" in github.promise
    assert checks["entry_points"].passed and checks["cards_from_traffic"].passed
    markdown = report_markdown(one_day, one_day.figures)
    line = next(x for x in markdown.splitlines() if x.startswith("- **GitHub down**"))
    assert f"GitHub refused {len(refused)} requests about {len(met)} runs" in line
    assert f"{len(met)} of them were downloaded once GitHub was back" in line


def test_the_outage_check_fails_a_run_lost_to_the_outage_and_an_outage_nothing_met(one_day: SimulationResult) -> None:
    """Judged from what the fake GitHub recorded: without the downloads after the outage, each run
    that met it fails; with no refused request, the outages met nothing and the check fails."""
    run = one_day.run
    playbooks = list(load_playbooks(RUNBOOKS))
    met = {run_id for _, run_id, _ in run.snapshot.github_refused}
    lost = dataclasses.replace(
        run,
        snapshot=dataclasses.replace(
            run.snapshot, github_downloads=[d for d in run.snapshot.github_downloads if d[1] not in met]
        ),
    )
    check = check_github_outage(lost, World.of(lost, playbooks[0], playbooks))
    assert {v.split()[1] for v in check.violations} == met
    assert all("was never downloaded afterwards" in v for v in check.violations)

    nothing = dataclasses.replace(run, snapshot=dataclasses.replace(run.snapshot, github_refused=[]))
    check = check_github_outage(nothing, World.of(nothing, playbooks[0], playbooks))
    assert check.checked == 0 and not check.passed
    assert len([v for v in check.violations if "GitHub refused no request about it" in v]) == 2


def test_the_fake_github_refuses_as_github_does_and_the_bots_client_reads_when_to_retry() -> None:
    """A 5xx is retryable with the outbox's own backoff; the spent rate limit's 403 says when, in
    ``x-ratelimit-reset`` (UTC epoch seconds), and the bot waits until then."""
    clock = FakeClock(AT)
    with running_github_issues() as github:
        actions = github.actions
        event = workflow_run_event(REPORT, AT, actions.url)
        actions.add_run("acme/dispatch", event["workflow_run"], {"integration-report": artifact_zip(REPORT)})
        client = GitHubActions(actions.url, "simulated-token", clock)

        def refused() -> GitHubApiError:
            with pytest.raises(GitHubApiError) as caught:
                asyncio.run(client.list_artifacts("acme/dispatch", "41017"))
            return caught.value

        actions.set_outage(502)
        down = refused()
        assert down.retryable and down.retry_after is None and "HTTP 502" in str(down)
        actions.set_outage(403, AT + timedelta(minutes=10))
        limited = refused()
        assert limited.retryable and limited.retry_after == 10 * 60 and "rate limit" in str(limited)
        actions.set_outage(None)
        assert [a["name"] for a in asyncio.run(client.list_artifacts("acme/dispatch", "41017"))] == [
            "integration-report"
        ]
        assert actions.refusals() == [("acme/dispatch", "41017", 502), ("acme/dispatch", "41017", 403)]


def test_a_filing_whose_answer_github_lost_is_found_on_retry_not_filed_twice() -> None:
    """The Issues API outage: GitHub files the issue and loses the answer, then answers 503 for its
    minutes. The bot's GitHub tracker is told to retry (a 5xx is retryable); once GitHub is back,
    the retried filing finds the issue by its fingerprint label instead of filing a second one."""
    from slackbot.clients.github_issues import GitHubIssuesTracker
    from slackbot.clients.tracker import BeadRequest, TrackerError

    clock = FakeClock(AT)
    request = BeadRequest(
        title="Incident: CBDD.Tests.Storage.RecoveryTests::Recover_ReplaysCommittedWal",
        body="WAL replay lost a committed page",
        priority=0,
        labels=("sev1",),
        external_ref=None,
        fingerprint="f" * 64,
    )

    async def scenario(url: str) -> tuple[list[str], str]:
        told: list[str] = []
        async with GitHubIssuesTracker(url, "simulated-token", "acme/cbdd") as tracker:
            for _ in range(2):  # the lost answer, then the outage
                with pytest.raises(TrackerError) as refused:
                    await tracker.create(request)
                assert refused.value.retryable
                told.append(str(refused.value))
            clock.advance(timedelta(minutes=31))
            bead = await tracker.create(request)
        return told, bead.id

    with running_github_issues(clock.now) as github:
        github.arm_outage(30, 503)
        told, bead_id = asyncio.run(scenario(github.url))
        issues = github.all_issues()
        refused = github.issue_refusals()
        outages = github.issue_outages()
    assert [i["title"] for i in issues] == [request.title] and bead_id == "gh-1"
    assert [status for _, _, status in refused] == [502, 503] and refused[0][1] == request.title
    assert "502" in told[0] and "503" in told[1], told
    assert outages == [(AT, AT + timedelta(minutes=30))]
