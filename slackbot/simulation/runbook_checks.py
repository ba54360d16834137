"""Seed 004's runbooks executed end to end, checked from the outside (``--responders``).

What must have happened comes from the operations playbook's YAML (policy.yml's alert rules name
the failure mode, routing.yml's failure mode lists the checklist's steps and names the escalation)
and from what ops on call did through Slack (``operator.Click``); what did happen comes from the
fakes: the Slack emulator's DMs, the fake PagerDuty's events, and the postmortem as uploaded into
the thread. One check reads the bot's ``runbook_executions`` table, because seed 004 names that
table as the audit trail: every click must be in it, with who, which step, the result and when.
Each check counts the cases it examined; none examined is a failure (``check_all``).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from slackbot.config import Playbook
from slackbot.db.engine import make_engine
from slackbot.db.models import RunbookExecution
from slackbot.simulation.operator import Click
from slackbot.simulation.records import Check, SimulationRun

ARRIVAL = timedelta(minutes=5)  # as outside.ARRIVAL: a paced DM lane, a 429 burst, a crash's lease
SOLVING = ("detect", "diagnose", "recover", "verify")  # the phases ops must execute, in seed 004's words


def _when(value: datetime) -> str:
    return value.strftime("%a %d %b %H:%M:%S")


def clicks(run: SimulationRun) -> list[Click]:
    operator = getattr(run.people, "operator", None)
    return list(operator.clicks) if operator is not None else []


def _playbook(playbooks: Sequence[Playbook], alertname: str) -> Playbook | None:
    return next((p for p in playbooks if any(a.alertname == alertname for a in p.policy.alerts)), None)


def yaml_steps(playbook: Playbook, alertname: str) -> list[tuple[str, int, str]]:
    """(runbook, index, text) of the checklist policy.yml and routing.yml say the alert gets: the
    alert rule's own steps if it has any, else its failure mode's first response; then the
    playbook's response steps."""
    rule = next(a for a in playbook.policy.alerts if a.alertname == alertname)
    if rule.steps:
        own = [(f"alert:{alertname}", n, s.text) for n, s in enumerate(rule.steps, 1)]
    else:
        route = playbook.routing.classes.get(rule.failure_class or "")
        own = [(rule.failure_class or "", n, t) for n, t in enumerate(route.first_response if route else [], 1)]
    return own + [("response", n, s.text) for n, s in enumerate(playbook.policy.response_steps, 1)]


def escalation_targets(playbook: Playbook, failure_class: str) -> tuple[set[str], set[str]]:
    """Whom a failed step pages, from the YAML alone: the first level of policy.yml's escalation
    (or, without one, the failure mode's escalation target in routing.yml). (users, PagerDuty keys)."""
    escalation = playbook.policy.escalation
    roles = list(escalation.levels[0].notify) if escalation else ["escalation"]
    route = playbook.routing.classes.get(failure_class)
    users: set[str] = set()
    keys: set[str] = set()
    for role in roles:
        target = getattr(route, role, None) if route is not None else None
        if target is None:
            continue
        if target.dm_user:
            users.add(target.dm_user)
        if target.pagerduty_routing_key:
            keys.add(target.pagerduty_routing_key)
    return users, keys


def failed_step_keys(run: SimulationRun, playbooks: Sequence[Playbook], incident: str) -> dict[str, datetime]:
    """The PagerDuty services a failed step of ``incident`` called for, and since when (for the
    PagerDuty check's list of what may be triggered)."""
    found: dict[str, datetime] = {}
    for click in clicks(run):
        playbook = _playbook(playbooks, click.alertname)
        if click.incident == incident and click.result == "failed" and playbook is not None:
            for key in escalation_targets(playbook, click.failure_class)[1]:
                found.setdefault(key, click.at)
    return found


def check_checklist_steps(run: SimulationRun, playbooks: Sequence[Playbook]) -> Check:
    check = Check(
        "runbook_steps",
        "Ops executed the detect, diagnose, recover and verify steps of each alert's failure-mode runbook, "
        "each beside the text policy.yml and routing.yml give it",
        0,
    )
    by_incident: dict[str, list[Click]] = {}
    for click in clicks(run):
        by_incident.setdefault(click.incident, []).append(click)
    for incident, done in sorted(by_incident.items()):
        playbook = _playbook(playbooks, done[0].alertname)
        if playbook is None:
            check.violations.append(f"{incident}: {done[0].alertname} is in no playbook's alert rules")
            continue
        expected = {(runbook, index): text for runbook, index, text in yaml_steps(playbook, done[0].alertname)}
        for click in done:
            check.checked += 1
            text = expected.get((click.runbook, click.index))
            if text is None:
                check.violations.append(
                    f"{incident}: ops pressed {click.result} on step {click.runbook} {click.index} at "
                    f"{_when(click.at)}, which is not in the checklist the YAML gives {click.alertname}"
                )
            elif " ".join(text.split()) not in " ".join(html.unescape(click.read).split()):
                check.violations.append(
                    f"{incident}: step {click.runbook} {click.index}'s button sits beside {click.read[:80]!r}, "
                    f"not the YAML's {text[:80]!r}"
                )
        if not any(c.runbook == "response" for c in done):
            continue  # not worked to the end before the run stopped: what was done is checked above
        finished = {(c.runbook, c.index) for c in done if c.result == "done"}
        for runbook, index, text in yaml_steps(playbook, done[0].alertname):
            phase = text.split(":", 1)[0].strip().lower()
            if runbook != "response" and phase in SOLVING and (runbook, index) not in finished:
                check.violations.append(f"{incident}: the {phase} step {runbook} {index} was never marked done")
    return check


def check_audit_rows(run: SimulationRun, playbooks: Sequence[Playbook]) -> Check:
    check = Check(
        "runbook_audit", "Every checklist click has its runbook_executions row (who, which step, result, when)", 0
    )
    engine = make_engine(run.database_url)
    try:
        with Session(engine) as session:
            rows = list(session.exec(select(RunbookExecution)))
    finally:
        engine.dispose()
    audited = Counter(
        (f"INC-{r.incident_id}", r.runbook, r.step_index, r.result, r.actor, int(r.at.replace(tzinfo=UTC).timestamp()))
        for r in rows
    )
    for click in clicks(run):
        check.checked += 1
        key = (click.incident, click.runbook, click.index, click.result, click.user, int(click.at.timestamp()))
        if audited[key] < 1:
            check.violations.append(
                f"{click.incident}: {click.user} marked step {click.runbook} {click.index} {click.result} at "
                f"{_when(click.at)}; runbook_executions has no such row"
            )
        audited[key] -= 1
    for key, left in audited.items():
        if left > 0:
            check.violations.append(f"{key[0]}: runbook_executions has {left} row(s) nobody clicked: {key[1:]}")
    return check


def check_failed_step_pages(run: SimulationRun, playbooks: Sequence[Playbook]) -> Check:
    check = Check(
        "failed_step_escalation",
        "A runbook step marked Failed paged the first escalation level routing.yml names, by DM and PagerDuty",
        0,
    )
    dms: dict[tuple[str, str], list[datetime]] = {}
    for message in run.snapshot.messages:
        if message.channel.startswith("D") and "You are paged for *" in message.text:
            incident = message.text.split("You are paged for *", 1)[1].split("*", 1)[0]
            if "Reason: runbook_step_failed" in message.text:
                dms.setdefault((incident, message.channel[1:]), []).append(datetime.fromtimestamp(message.at, UTC))
    triggers: dict[tuple[str, str], list[datetime]] = {}
    for event in run.snapshot.pagerduty:
        if event.get("event_action") == "trigger" and event.get("_received_at"):
            at = datetime.fromisoformat(str(event["_received_at"]))
            triggers.setdefault((str(event.get("dedup_key")), str(event.get("routing_key"))), []).append(at)
    for click in clicks(run):
        if click.result != "failed":
            continue
        playbook = _playbook(playbooks, click.alertname)
        if playbook is None:
            continue
        users, keys = escalation_targets(playbook, click.failure_class)
        if not users and not keys:
            check.violations.append(f"{click.incident}: routing.yml names nobody to escalate {click.failure_class} to")
        wanted = [
            (f"<@{user}> (escalation) got no page", dms.get((click.incident, user), [])) for user in sorted(users)
        ]
        wanted += [
            (f"PagerDuty service …{key[-6:]} (escalation) got no trigger", triggers.get((click.incident, key), []))
            for key in sorted(keys)
        ]
        for missing, got in wanted:
            check.checked += 1
            if not [at for at in got if click.at <= at <= click.at + ARRIVAL]:
                check.violations.append(
                    f"{click.incident}: step {click.runbook} {click.index} failed at {_when(click.at)}; {missing} by "
                    f"{_when(click.at + ARRIVAL)} (got: {', '.join(map(_when, got)) or 'nothing'})"
                )
    return check


def check_postmortem_lists_steps(run: SimulationRun, playbooks: Sequence[Playbook]) -> Check:
    check = Check("postmortem_steps", "The postmortem posted in each worked alert's thread lists every step run", 0)
    operator = getattr(run.people, "operator", None)
    jobs = {job.key: job for job in operator.jobs.values()} if operator is not None else {}
    for click in clicks(run):
        job = jobs.get(click.incident)
        if job is None or not job.resolved:
            continue  # not resolved before the run ended: no final postmortem is due
        check.checked += 1
        text = job.postmortem
        if text is None:
            check.violations.append(f"{click.incident} was resolved but no postmortem reached its thread")
            continue
        result = "**failed**" if click.result == "failed" else click.result
        rows = [
            line
            for line in text.splitlines()
            if f"| {click.runbook} | {click.index}. " in line and f"| {result} | {click.user} |" in line
        ]
        if not rows:
            check.violations.append(
                f"{click.incident}'s postmortem does not list step {click.runbook} {click.index} {click.result} by "
                f"{click.user} ({_when(click.at)})"
            )
    return check


def check_runbooks_end_to_end(run: SimulationRun, playbooks: Sequence[Playbook]) -> list[Check]:
    if getattr(run.people, "operator", None) is None or not any(p.policy.alerts for p in playbooks):
        return []  # nobody works alerts without --responders, nor where no playbook has alert rules
    return [
        check(run, playbooks)
        for check in (check_checklist_steps, check_audit_rows, check_failed_step_pages, check_postmortem_lists_steps)
    ]
