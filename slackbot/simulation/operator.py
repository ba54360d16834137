"""Ops on call works an alert the seed-004 way (``--responders``): "trigger one failure and execute
the runbook end to end".

When Alertmanager's alert has opened its card (preset to the failure mode by policy.yml), the
failure mode's owner from routing.yml (ops on call) acknowledges it and runs the checklist the bot
posted in the thread, one click per step through the Slack emulator: Detect, Diagnose, Recover,
then Verify and Document, with the Diagnosed / Recovered / Verified milestones on the way. The
metric recovers because ops recovered it: the alert's resolution is held until the Recover steps
are done (``Alerts.release``), and the Verify step comes after Alertmanager said "resolved".

For one alert per run (seeded) a step fails as written (a diagnose step whose command is "not yet
documented", preferably): ops marks it Failed, which must page the escalation (seed 004: "any
runbook step that fails when executed exactly as written" goes to engineering), then retries it
once engineering has answered and marks it Done. The response steps follow (the rollback step is
skipped: the failed step changed nothing). Ops resolves with the root cause and what was changed,
asks for the postmortem and reads it in the thread.

Every click is kept (``clicks``) with the step text the person read next to the button, and every
postmortem as uploaded to Slack, so the outside checks can compare them with the YAML, the
``runbook_executions`` audit and the pages the fakes recorded.

Ops on call is the on-call escalation path: they are paged by every alert, so they work alerts on
weekends and at night too (more slowly at night).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slackbot.config import Playbook
from slackbot.simulation.alerts import Alerts
from slackbot.slack import card as card_ids
from slackbot.slack.checklist import ACTION_PREFIX

OP = "op:"  # the prefix of the operator's steps in the people's queue
PHASES = ("detect", "diagnose", "recover", "verify", "document", "escalate")
_PHASE = re.compile(r"\*\d+\.\*(?: _(\w+)_ —)?\s*(?:(\w+):)?")


@dataclass
class Click:
    """One checklist button pressed, and what the person read beside it."""

    at: datetime
    user: str
    incident: str
    alertname: str
    failure_class: str
    runbook: str  # as the button names it: the class key, "alert:<name>" or "response"
    index: int
    result: str  # done | failed | skipped
    read: str  # the step's section as shown in Slack
    answer: str


@dataclass
class Button:
    runbook: str
    index: int
    phase: str | None
    read: str


@dataclass
class Job:
    incident_id: int
    key: str
    alertname: str
    failure_class: str
    playbook: str
    channel: str
    card_ts: str
    user: str
    fails: bool  # this alert's story has a step that fails as written
    steps: list[Button] = field(default_factory=list)
    position: int = 0
    failing: int | None = None  # the position of the step that fails first
    failed: bool = False
    resolution: datetime | None = None  # when Alertmanager resolves it (released by the recovery)
    resolved: bool = False
    postmortem: str | None = None  # as uploaded into the thread
    looked: int = 0  # how often ops looked for the checklist or the postmortem


class Operator:
    def __init__(self, people: Any, playbooks: list[Playbook], alerts: Alerts, *, seed: int) -> None:
        # responders.People (not imported: it builds the operator, and modules here import in no cycle)
        self.people = people
        self.playbooks = {p.name: p for p in playbooks}
        self.alerts = alerts
        self.rng = random.Random(f"operator:{seed}")
        alerts.hold_resolutions()
        # one alert per run has a step that fails: one of the first three to fire, so it is worked
        # before a short run ends
        firing = sorted(
            {a.alertname: a.at for a in alerts.schedule if a.status == "firing"}.items(), key=lambda x: x[1]
        )
        self.failing_alert = self.rng.choice(firing[:3])[0] if firing else None
        self.jobs: dict[int, Job] = {}
        self.clicks: list[Click] = []

    # -- seeing --------------------------------------------------------------------------------------

    def observe(self, now: datetime, incident_id: int, key: str, alertname: str | None, playbook: str) -> None:
        """An open alert's card is in Slack: ops on call, paged for it, picks it up."""
        if incident_id in self.jobs or alertname is None or playbook not in self.playbooks:
            return
        incident = self.people._incident(incident_id)
        runbook = self.playbooks[playbook]
        failure_class = incident.failure_class or ""
        target = runbook.target("owner", failure_class or None)
        user = (target.dm_user if target else None) or self.people._lead()
        job = Job(
            incident_id,
            key,
            alertname,
            failure_class,
            playbook,
            incident.channel,
            str(incident.card_ts),
            user,
            fails=alertname == self.failing_alert,
        )
        self.jobs[incident_id] = job
        night = now.hour >= 22 or now.hour < 7
        delay = self.rng.randint(10, 25) if night else self.rng.randint(4, 15)
        self._next(now + timedelta(minutes=delay), job, "ack")

    def _next(self, at: datetime, job: Job, step: str) -> None:
        self.people._schedule(at, job.incident_id, OP + step, job.user)

    def _soon(self, now: datetime, lo: int = 3, hi: int = 12) -> datetime:
        return now + timedelta(minutes=self.rng.randint(lo, hi), seconds=self.rng.randint(0, 59))

    # -- acting --------------------------------------------------------------------------------------

    def run(self, step: str, incident_id: int, now: datetime) -> None:
        job = self.jobs[incident_id]
        step = step.removeprefix(OP)
        people = self.people
        if step == "ack":
            incident = people._incident(incident_id)
            if incident.status != "open":
                return
            if incident.assignee is None:
                answer = people.click(job.user, incident, card_ids.ACTION_ACK)
                people._log(now, job.user, job.key, "acknowledged it (card button)", answer)
            self._next(self._soon(now, 1, 4), job, "step")
        elif step == "step":
            self._step(job, now)
        elif step == "resolve":
            cause = f"{job.alertname}: the cause the diagnose steps confirmed"
            changed = "ran the recover steps of the checklist" + (
                "; engineering documented the failed step's command" if job.failed else ""
            )
            answer = people.command(
                job.user, job.channel, f'status {job.key} resolved what_we_changed="{changed}" {cause}'
            )
            people._log(now, job.user, job.key, "resolved it (Documented and resolved)", answer)
            job.resolved = f"{job.key} resolved" in answer  # a refusal is left for the checks to name
            self._next(self._soon(now, 2, 6), job, "postmortem")
        elif step == "postmortem":
            answer = people.command(job.user, job.channel, f"postmortem {job.key}")
            people._log(now, job.user, job.key, "asked for the postmortem", answer)
            self._next(self._soon(now, 2, 5), job, "read")
        elif step == "read":
            job.postmortem = self._uploaded(job)
            job.looked += 1
            if job.postmortem is None and job.looked < 20:
                self._next(self._soon(now, 5, 10), job, "read")

    def _step(self, job: Job, now: datetime) -> None:
        people = self.people
        if not job.steps:
            job.steps = self._checklist(job)
            job.looked += 1
            if not job.steps:  # not posted yet (or Slack is refusing posts): look again shortly
                if job.looked < 40:
                    self._next(self._soon(now, 5, 10), job, "step")
                return
            job.looked = 0
            if job.fails:
                candidates = [
                    i for i, b in enumerate(job.steps) if b.runbook != "response" and b.phase in ("diagnose", "recover")
                ]
                documented = [i for i in candidates if "not yet documented" in job.steps[i].read]
                job.failing = (documented or candidates or [0])[0]
        button = job.steps[job.position]
        result = "done"
        if job.position == job.failing and not job.failed:
            result = "failed"
        elif button.runbook == "response" and button.phase == "recover":
            result = "skipped"  # the rollback step: nothing was half-changed (the failed step changed nothing)
        answer = self._press(job, button, result, now)
        if result == "failed":
            job.failed = True
            # engineering answers the page with the missing command; ops retries the step
            self._next(self._soon(now, 20, 45), job, "step")
            return
        job.position += 1
        following = job.steps[job.position] if job.position < len(job.steps) else None
        milestone = self._milestone(button, following)
        if milestone:
            note = {
                "diagnosed": 'diagnosis="the checklist\'s diagnostic output is in the thread"',
                "recovered": "",
                "verified": f'verification="{job.alertname} resolved in Alertmanager; the metric is back"',
            }[milestone]
            answer = people.command(job.user, job.channel, f"status {job.key} {milestone} {note}".strip())
            people._log(now, job.user, job.key, f"posted milestone {milestone}", answer)
        if following is None:
            self._next(self._soon(now, 3, 10), job, "resolve")
            return
        at = self._soon(now)
        if button.phase == "recover" and following.phase != "recover" and job.resolution is None:
            # the recovery worked: the metric falls under the threshold and the alert resolves
            job.resolution = self.alerts.release(job.alertname, self._soon(now, 4, 12))
            if job.resolution is not None:
                at = self._soon(job.resolution, 3, 8)  # verify once Alertmanager said resolved
        self._next(at, job, "step")
        del answer

    @staticmethod
    def _milestone(button: Button, following: Button | None) -> str | None:
        """The milestone a phase's last step reaches (the class's own steps only)."""
        if button.runbook == "response":
            return None
        ends = following is None or following.runbook == "response" or following.phase != button.phase
        return (
            {"diagnose": "diagnosed", "recover": "recovered", "verify": "verified"}.get(button.phase or "")
            if ends
            else None
        )

    def _press(self, job: Job, button: Button, result: str, now: datetime) -> str:
        action_id = f"{ACTION_PREFIX}:{button.runbook}:{button.index}:{result}"
        ts = self._checklist_ts(job, button)
        try:
            answer = (
                self.people.press(job.user, job.channel, ts, action_id) if ts else "no such checklist in the thread"
            )
        except LookupError as exc:  # the checklist no longer offers the button (superseded meanwhile)
            answer = str(exc)
        self.clicks.append(
            Click(
                now,
                job.user,
                job.key,
                job.alertname,
                job.failure_class,
                button.runbook,
                button.index,
                result,
                button.read,
                answer,
            )
        )
        self.people._log(now, job.user, job.key, f"marked a checklist step {result}", answer)
        return answer

    # -- reading Slack -------------------------------------------------------------------------------

    def _thread(self, job: Job) -> list[tuple[str, str, list[dict[str, Any]]]]:
        workspace = self.people.emulator.workspace
        with workspace.lock:
            channel = workspace.channels.get(job.channel)
            replies = list(channel.threads.get(job.card_ts, [])) if channel is not None else []
            return [(m.ts, m.text, list(m.blocks or [])) for m in replies]

    def _checklist(self, job: Job) -> list[Button]:
        """The live checklist's steps, in order, as the thread shows them."""
        buttons: list[Button] = []
        for _, text, blocks in self._thread(job):
            if not text.startswith(f"Runbook checklist for {job.key}"):
                continue
            found: list[Button] = []
            read = ""
            for block in blocks:
                if block.get("type") == "section":
                    read = str((block.get("text") or {}).get("text", ""))
                block_id = str(block.get("block_id") or "")
                if block.get("type") == "actions" and block_id.startswith("checklist:"):
                    runbook, _, index = block_id.removeprefix("checklist:").rpartition(":")
                    found.append(Button(runbook, int(index), _phase_of(read), read))
            if found:
                buttons = found if found[0].index == 1 or not buttons else buttons + found
        return buttons

    def _checklist_ts(self, job: Job, button: Button) -> str | None:
        block_id = f"checklist:{button.runbook}:{button.index}"
        for ts, text, blocks in self._thread(job):
            if text.startswith(f"Runbook checklist for {job.key}") and any(
                b.get("block_id") == block_id for b in blocks
            ):
                return ts
        return None

    def _uploaded(self, job: Job) -> str | None:
        workspace = self.people.emulator.workspace
        with workspace.lock:
            for upload in workspace.files.values():
                if upload.name == f"{job.key}-postmortem.md" and upload.thread_ts == job.card_ts and upload.content:
                    return upload.text
        return None


def _phase_of(read: str) -> str | None:
    found = _PHASE.search(read)
    if found is None:
        return None
    phase = (found[1] or found[2] or "").lower()
    return phase if phase in PHASES else None
