"""The doors CI's failures come through in the simulation, as real teams wire them.

* ``report``: ``triagebot send``'s signed Report v1 JSON to ``/ingest/report``;
* ``junit``: ``triagebot send --junit``'s signed JUnit XML to ``/ingest/junit``;
* ``github``: GitHub's ``workflow_run`` ``completed`` webhook to ``/webhooks/github``; the bot then
  lists the run's artifacts and downloads the report from the fake GitHub Actions API over HTTP;
* ``notifier``: a CI notifier bot (the workspace's first ``alert_sources`` entry) posts "failed"
  with the run's link in the suite's channel; the bot fetches the run and its artifact;
* ``reaction``: a person pastes the run's link in the channel and a responder reacts with the
  triage reaction;
* ``mention``: the same message, and a responder answers ``@triagebot triage`` in its thread.

Which door a run takes is fixed by its run id (``CiRun.door``, as JUnit always was), so a seed
tells the same story whatever the doors do. Green runs keep to ``report``/``junit``: the webhook's answer to a
green run is validation evidence and a notifier says nothing, while the stories need the bot to see
the passing results. A report CI uploaded twice goes through a door that can repeat it: the
webhook redelivered (same ``X-GitHub-Delivery``) or the report sent again.

The Slack doors reach the bot as Events API deliveries from the emulator, which Bolt acknowledges
before its listener runs; the sender waits (polling, with a deadline) until the listener has queued
the run's fetch, so the fetch happens at this virtual instant like every other door's work.
"""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.config import Playbooks
from slackbot.db.models import OutboxItem
from slackbot.domain.effects import Key
from slackbot.emulator import SlackEmulator
from slackbot.signing import sign
from slackbot.simulation.github import FakeGitHubActions
from slackbot.simulation.responders import SimulationError
from slackbot.simulation.traffic import CiRun, junit_xml

REPORT, JUNIT, GITHUB, NOTIFIER, REACTION, MENTION = "report", "junit", "github", "notifier", "reaction", "mention"
DOORS = (REPORT, JUNIT, GITHUB, NOTIFIER, REACTION, MENTION)
SLACK_DOORS = (NOTIFIER, REACTION, MENTION)
DOOR_NAMES = {
    REPORT: "report JSON to `/ingest/report`",
    JUNIT: "JUnit XML to `/ingest/junit`",
    GITHUB: "GitHub `workflow_run` webhook with the report artifact",
    NOTIFIER: "CI notifier message in Slack",
    REACTION: "a person's triage reaction",
    MENTION: "`@triagebot triage`",
}
FETCHING_DOORS = (GITHUB, *SLACK_DOORS)  # the bot downloads the run's report artifact from GitHub
ARTIFACT = "integration-report"  # a name the bot's convention (contains "report") picks up
HANDLED_WITHIN = 15.0  # seconds of wall time for Bolt's listener to queue a run's fetch


def door_taken(run: CiRun, answers: list[dict[str, Any]]) -> str:
    """The door a sent run went through: the Slack doors say so in what the sender kept (a
    workspace without a CI notifier turns that door into a reaction); the others are ``run.door``."""
    return str(answers[0].get("door", run.door)) if answers else run.door


def door_counts(runs: list[CiRun], answers: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """How many runs went through each door, in ``DOORS`` order (doors nobody used left out)."""
    counts = dict.fromkeys(DOORS, 0)
    for run in runs:
        counts[door_taken(run, answers.get(run.run_id, []))] += 1
    return {door: n for door, n in counts.items() if n}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def workflow_run_event(report: dict[str, Any], at: datetime, api_url: str) -> dict[str, Any]:
    """GitHub's ``workflow_run`` ``completed`` delivery for a failed run (octokit's example's shape:
    the fields the bot reads and the usual ones around them)."""
    run = report["run"]
    repository = str(run["repository"])
    owner, name = repository.split("/", 1)
    workflow = str(run.get("workflow") or run.get("suite") or "ci")
    workflow_id = zlib.crc32(workflow.encode())
    run_id = int(run["runId"])
    api = f"{api_url}/repos/{repository}/actions/runs/{run_id}"
    finished = _iso(at)
    started = _iso(at - timedelta(minutes=12))
    path = f".github/workflows/{workflow}.yml"
    workflow_run: dict[str, Any] = {
        "id": run_id,
        "name": workflow,
        "node_id": f"WFR_{run_id}",
        "head_branch": run.get("branch") or "main",
        "head_sha": run.get("sha") or "0" * 40,
        "path": path,
        "display_title": f"{workflow} on {run.get('branch') or 'main'}",
        "run_number": run_id,
        "event": "schedule" if run.get("suite") == "nightly" else "push",
        "status": "completed",
        "conclusion": "failure",
        "workflow_id": workflow_id,
        "check_suite_id": run_id * 10,
        "url": api,
        "html_url": run.get("url") or f"https://github.com/{repository}/actions/runs/{run_id}",
        "pull_requests": [],
        "created_at": started,
        "updated_at": finished,
        "run_attempt": int(run.get("runAttempt") or 1),
        "run_started_at": started,
        "jobs_url": api + "/jobs",
        "logs_url": api + "/logs",
        "artifacts_url": api + "/artifacts",
        "previous_attempt_url": None,
    }
    return {
        "action": "completed",
        "workflow_run": workflow_run,
        "workflow": {"id": workflow_id, "name": workflow, "path": path, "state": "active"},
        "repository": {
            "id": zlib.crc32(repository.encode()),
            "name": name,
            "full_name": repository,
            "private": True,
            "owner": {"login": owner, "type": "Organization"},
            "html_url": f"https://github.com/{repository}",
            "default_branch": "main",
        },
        "sender": {"login": "github-actions[bot]", "type": "Bot"},
    }


def artifact_zip(report: dict[str, Any]) -> bytes:
    """The harness's output as ``actions/upload-artifact`` stores it: a zip with the report."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.json", json.dumps(report))
    return buffer.getvalue()


@dataclass
class Doors:
    """Sends each run through its door. ``counts`` says how many runs went through each."""

    http: httpx.Client
    emulator: SlackEmulator
    actions: FakeGitHubActions
    playbooks: Playbooks
    ingest_secret: str
    github_secret: str

    def __post_init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(DOORS, 0)
        sources = self.playbooks.workspace.alert_sources
        self.notifier = next(((s.user, s.bot_id) for s in sources if s.user), None)
        if self.notifier is not None:
            self.emulator.add_user(self.notifier[0], "ci-notifier", is_bot=True)

    def door(self, run: CiRun) -> str:
        door = run.door
        if door == NOTIFIER and self.notifier is None:
            return REACTION  # the workspace lists no CI notifier: a person asks instead
        return door

    def send(self, run: CiRun, bot_url: str, engine: Engine) -> list[dict[str, Any]]:
        """What the sender saw: the ingest routes' and the webhook's answers, or where in Slack the
        failure was posted (``{"door", "channel", "ts"}``)."""
        door = self.door(run)
        self.counts[door] += 1
        if door in (REPORT, JUNIT):
            return self._ingest(run, door, bot_url)
        self.actions.add_run(
            str(run.report["run"]["repository"]),
            workflow_run_event(run.report, run.at, self.actions.url)["workflow_run"],
            {ARTIFACT: artifact_zip(run.report)},
        )
        if door == GITHUB:
            return self._webhook(run, bot_url)
        return [self._slack(run, door, engine)]

    def _ingest(self, run: CiRun, door: str, bot_url: str) -> list[dict[str, Any]]:
        """``triagebot send``'s request, over one kept-alive client; sometimes CI uploads twice."""
        if door == JUNIT:
            body = junit_xml(run.report).encode()
            fields = {k: str(v) for k, v in run.report["run"].items() if v is not None and k != "provider"}
            path, content_type = "/ingest/junit?" + urlencode(fields), "application/xml"
        else:
            body, path, content_type = json.dumps(run.report).encode(), "/ingest/report", "application/json"
        headers = {"X-Triage-Signature": sign(body, self.ingest_secret), "Content-Type": content_type}
        return [
            self._answer(run, self.http.post(bot_url + path, content=body, headers=headers), 202)
            for _ in range(2 if run.resent else 1)
        ]

    def _webhook(self, run: CiRun, bot_url: str) -> list[dict[str, Any]]:
        """GitHub's delivery; a re-upload is GitHub redelivering it (the same delivery id)."""
        body = json.dumps(workflow_run_event(run.report, run.at, self.actions.url)).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/sim",
            "X-GitHub-Event": "workflow_run",
            "X-GitHub-Delivery": str(uuid.uuid5(uuid.NAMESPACE_URL, f"workflow_run/{run.run_id}")),
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(body, self.github_secret),
        }
        first = self._answer(run, self.http.post(bot_url + "/webhooks/github", content=body, headers=headers), 202)
        answers = [first]
        if run.resent:
            again = self.http.post(bot_url + "/webhooks/github", content=body, headers=headers)
            answers.append(self._answer(run, again, 200))
        return answers

    @staticmethod
    def _answer(run: CiRun, response: httpx.Response, expected: int) -> dict[str, Any]:
        if response.status_code != expected:
            raise SimulationError(f"run {run.run_id} ({run.door}) answered {response.status_code}: {response.text}")
        answer: dict[str, Any] = response.json()
        return answer

    def channel(self, run: CiRun) -> str:
        playbook = self.playbooks.get(run.playbook) if run.playbook else self.playbooks.default
        routing = playbook.routing
        route = routing.suites.get(run.suite)
        channel = route.channel if route else routing.default_channel
        return channel or self.playbooks.workspace.default_channel

    def responder(self) -> str:
        """Someone allowed to open cards: the first member of the first responder group."""
        groups = self.emulator.workspace.usergroups
        for group in self.playbooks.workspace.responders:
            if group in groups and groups[group].user_ids:
                return sorted(groups[group].user_ids)[0]
        users = self.emulator.workspace.users
        return sorted(u for u, user in users.items() if not user.is_bot)[0]

    def _slack(self, run: CiRun, door: str, engine: Engine) -> dict[str, Any]:
        channel, url = self.channel(run), str(run.report["run"]["url"])
        workflow = run.report["run"].get("workflow") or run.suite
        if door == NOTIFIER:
            assert self.notifier is not None
            user, bot_id = self.notifier
            text = f":x: *{workflow}* failed on main: <{url}|run {run.run_id}>"
            ts, answer = self.emulator.post_as_user(user, channel, text, bot_id=bot_id)
            answers = [answer]
        else:
            person = self.responder()
            ts, answer = self.emulator.post_as_user(
                person, channel, f"{workflow} is red again: <{url}|run {run.run_id}>"
            )
            answers = [answer]
            if door == REACTION:
                answers.append(
                    self.emulator.add_reaction(person, channel, ts, self.playbooks.workspace.triage_reaction)
                )
            else:
                answers.append(self.emulator.mention_bot(person, channel, "triage", thread_ts=ts))
        for delivered in answers:
            if delivered is None or delivered.status != 200:
                raise SimulationError(f"run {run.run_id} ({door}): Slack's event delivery failed: {delivered}")
        self._wait_for_fetch(engine, run, door, channel, ts)
        return {"door": door, "channel": channel, "ts": ts}

    @staticmethod
    def _wait_for_fetch(engine: Engine, run: CiRun, door: str, channel: str, ts: str) -> None:
        """Bolt acks an event before its listener runs: wait until the run's fetch is queued."""
        key = Key.github_fetch(channel, ts)
        query = select(col(OutboxItem.id)).where(col(OutboxItem.dedup_key) == key)
        deadline = time.monotonic() + HANDLED_WITHIN
        while True:
            with Session(engine) as session:
                if session.exec(query).first() is not None:
                    return
            if time.monotonic() > deadline:
                raise SimulationError(
                    f"run {run.run_id} ({door}): the bot did not take the Slack message {channel}/{ts} "
                    f"within {HANDLED_WITHIN:g}s"
                )
            time.sleep(0.005)  # polling the listener's commit, with the deadline above
