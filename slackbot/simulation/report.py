"""The simulation's report, for someone who has never seen the code: Markdown and JSON.

Both carry the same numbers, in the order a lead reads them (issue 15): outcomes first (time to
acknowledge, classify and resolve per class and per playbook, what is still open and why, pages per
person per night), then each promise with the cases it examined, then the faults injected and how
the bot weathered them; after those, what was simulated (runs and failures of every playbook), what
the bot did and what the simulated people did.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slackbot.clock import as_utc
from slackbot.outbox.slack_deliveries import CARD_EVENT, POST_EVENT
from slackbot.settings import DEFAULT_RUNBOOKS
from slackbot.simulation.applicable import not_applicable, one_line
from slackbot.simulation.doors import DOOR_NAMES, door_counts
from slackbot.simulation.faults import BD_OUTAGE, CRASH, PAGERDUTY_OUTAGE, github_issue_lines
from slackbot.simulation.invariants import Check, Facts
from slackbot.simulation.records import SimulationRun
from slackbot.simulation.traffic import KIND_LABELS, KINDS

BEAD_KINDS = ("bead_file", "bead_comment", "bead_close", "bead_reopen")
SHOWN_VIOLATIONS = 25


@dataclass
class SimulationResult:
    run: SimulationRun
    checks: list[Check]
    figures: dict[str, Any]  # every number the report shows

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def _when(value: datetime | None) -> str:
    return as_utc(value).strftime("%a %d %b %H:%M") if value else "—"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return f"{int(delta.total_seconds())} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def numbers(run: SimulationRun, facts: Facts) -> dict[str, Any]:
    """Every number the report shows, computed from the database and the outside world."""
    snapshot = run.snapshot
    incidents = facts.incidents
    events = [e for rows in facts.timeline.values() for e in rows]
    kinds = Counter(e.kind for e in events)
    cards = [m for m in snapshot.top_level() if (m.metadata or {}).get("event_type") == CARD_EVENT]
    thread_posts = [m for m in snapshot.replies() if (m.metadata or {}).get("event_type") == POST_EVENT]
    dm_rows = [r for r in facts.rows("dm") if r.state == "done"]
    pd = snapshot.pagerduty
    classified_by_people = [i for i in incidents if i.class_source == "human"]
    to_classify = [
        (as_utc(i.classified_at) - as_utc(i.created_at)).total_seconds() / 60
        for i in classified_by_people
        if i.classified_at
    ]
    people = Counter(d.what.split(" (")[0] for d in run.people.done)
    return {
        "simulated": {
            "days": run.config.days,
            "from": run.started.isoformat(),
            "to": run.ended.isoformat(),
            "drained_at": run.drained_at.isoformat(),
            "seed": run.config.seed,
            "runbooks": str(run.runbook_dir),
            # promises the run never meant to test (from its plan), and why: left out of the checks
            "not_applicable": not_applicable(run, facts.playbooks),
            "responders": run.config.responders,
            "faults": run.config.faults,
        },
        "ci": {**run.traffic.counts(), "by_door": door_counts(run.traffic.sent, run.ingest_answers)},
        "bot": {
            "incidents": len(incidents),
            "incidents_by_class": dict(Counter(i.failure_class or "unclassified" for i in incidents)),
            "contract_violations": sum(1 for i in incidents if i.contract_violation),
            "documentation_gaps": sum(1 for i in incidents if i.documentation_gap),
            "cards": len(cards),
            "card_updates": snapshot.calls.get("chat.update", {}).get(200, 0),
            "thread_posts": len(thread_posts),
            "escalations": sum(1 for e in events if e.kind == "escalated" and e.source == "timer"),
            "manual_escalations": sum(1 for e in events if e.kind == "escalated" and e.source != "timer"),
            "multi_prefix_runs_escalated": sum(1 for r in facts.rows("run_escalation") if r.state == "done"),
            "page_dms": sum(1 for r in dm_rows if not r.result.get("skipped")),
            "page_dms_dropped_after_classification": sum(1 for r in dm_rows if r.result.get("skipped")),
            "pagerduty_triggers": sum(1 for e in pd if e.get("event_action") == "trigger"),
            "pagerduty_acknowledges": sum(1 for e in pd if e.get("event_action") == "acknowledge"),
            "pagerduty_resolves": sum(1 for e in pd if e.get("event_action") == "resolve"),
            "sev1_incidents": sum(1 for i in incidents if i.severity == "SEV-1"),
            "beads_filed": sum(1 for i in incidents if i.bead_id),
            "beads_in_bd": len(snapshot.beads),
            "issues_in_github": len(snapshot.github_issues),
            "bead_comments": sum(
                1 for r in facts.rows("bead_comment") if r.state == "done" and not r.result.get("skipped")
            ),
            "reminders": kinds["reminded"],
            "classified_by_people": len(classified_by_people),
            "median_minutes_to_classification": round(statistics.median(to_classify), 1) if to_classify else None,
            "resolved": sum(1 for i in incidents if i.status == "resolved"),
            "reopened": kinds["reopened"],
            "open_at_end": sum(1 for i in incidents if i.status == "open"),
            "outbox_rows": len(facts.outbox),
            "restarts": len(run.restarts),
        },
        "people": {
            "actions": len(run.people.done),
            "by_action": dict(people),
            # whatever playbook each came from (seed 001's tenant leak, seed 003's WAL corruption, ...)
            "marked_sev1": [
                f"{i.key} ({i.playbook}: {_failure_of(i)})"
                for key in dict.fromkeys(d.incident for d in run.people.done if d.what.startswith("marked it SEV-1"))
                for i in incidents
                if i.key == key
            ],
        },
        "outcomes": outcomes(run, facts),
        "faults": _faults(run, facts),
        "wall_seconds": round(run.wall_seconds, 1),
    }


def _faults(run: SimulationRun, facts: Facts) -> dict[str, Any]:
    calls = run.snapshot.calls
    posts_429 = calls.get("chat.postMessage", {}).get(429, 0)
    updates_429 = calls.get("chat.update", {}).get(429, 0)
    errors_5xx = sum(n for method in calls.values() for status, n in method.items() if status >= 500)
    bead_retries = [o for o in run.outcomes if o.kind in BEAD_KINDS and o.outcome == "retry"]
    late_beads = [r for r in facts.rows("bead_file") if r.state == "done" and r.attempts > 1 and r.done_at is not None]
    late_pages = [
        r for r in facts.rows("pagerduty", "pagerduty_follow") if r.state == "done" and r.attempts > 1 and r.done_at
    ]
    crashes = []
    for fault in run.faults.by_kind(CRASH):
        restart = next((r for r in run.restarts if fault.triggered_at and r.at == fault.triggered_at), None)
        crashes.append(
            {
                **fault.as_json(),
                "restarted_as": restart.process if restart else None,
                "in_flight": restart.in_flight if restart else [],
            }
        )
    return {
        "injected": [f.as_json() for f in run.faults.faults if f.kind != CRASH],
        "slack_429_posts": posts_429,
        "slack_429_updates": updates_429,
        "slack_5xx": errors_5xx,
        "bd_failed_calls": len(bead_retries),
        "beads_filed_late": [
            {
                "incident": f"INC-{r.incident_id}",
                "attempts": r.attempts,
                "late_by": _duration(as_utc(r.done_at) - as_utc(r.created_at)) if r.done_at else None,
            }
            for r in late_beads
        ],
        "pagerduty_refused": run.snapshot.pagerduty_refused,
        "pages_delivered_late": [
            {
                "incident": f"INC-{r.incident_id}",
                "kind": r.kind,
                "attempts": r.attempts,
                "late_by": _duration(as_utc(r.done_at) - as_utc(r.created_at)),
                "late_seconds": int((as_utc(r.done_at) - as_utc(r.created_at)).total_seconds()),
            }
            for r in late_pages
            if r.done_at is not None
        ],
        "crashes": crashes,
        "dead_letters": sum(1 for r in facts.outbox if r.state == "dead"),
    }


def _median_minutes(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def outcomes(run: SimulationRun, facts: Facts) -> dict[str, Any]:
    """What a lead asks first: how fast people acknowledged, classified and resolved, per class and
    playbook; what is still open and why; how often each person was paged at night. Times run from
    the card's appearance in Slack to the person's action (what both sides saw)."""
    posted: dict[str, datetime] = {}
    for message in run.snapshot.top_level():
        metadata = message.metadata or {}
        if metadata.get("event_type") == CARD_EVENT:
            key = f"INC-{(metadata.get('event_payload') or {}).get('incident')}"
            posted.setdefault(key, datetime.fromtimestamp(message.at, as_utc(run.started).tzinfo))
    first: dict[tuple[str, str], datetime] = {}
    for done in run.people.done:
        step = (
            "ack"
            if done.what.startswith("acknowledged")
            else "classify"
            if done.what.startswith(("classified", "reclassified"))
            else "resolve"
            if done.what.startswith("resolved") and "resolved" in done.answer
            else None
        )
        if step is not None:
            first.setdefault((done.incident, step), done.at)
    per_class: dict[str, dict[str, list[float]]] = {}
    per_playbook: dict[str, dict[str, list[float]]] = {}
    still_open = []
    for incident in facts.incidents:
        group = f"{incident.playbook} / {incident.failure_class or incident.suggested_class or 'unclassified'}"
        times = per_class.setdefault(group, {"incidents": [], "ack": [], "classify": [], "resolve": []})
        mine = per_playbook.setdefault(
            incident.playbook, {"incidents": [], "ack": [], "classify": [], "resolve": [], "open": []}
        )
        for table in (times, mine):
            table["incidents"].append(1)
        mine["open"] += [1] if incident.status == "open" else []
        card = posted.get(incident.key)
        for step in ("ack", "classify", "resolve"):
            at = first.get((incident.key, step))
            if card is not None and at is not None:
                for table in (times, mine):
                    table[step].append((at - card).total_seconds() / 60)
        if incident.status == "open":
            still_open.append(
                f"{incident.key} ({incident.playbook}: {_failure_of(incident)}): {_why_open(run, facts, incident)}"
            )
    nights: Counter[str] = Counter()
    for message in run.snapshot.messages:
        if message.channel.startswith("D") and "You are paged" in message.text:
            hour = datetime.fromtimestamp(message.at, as_utc(run.started).tzinfo).hour
            if hour >= 22 or hour < 7:
                nights[message.channel[1:]] += 1
    number_of_nights = max(1, (run.ended - run.started).days)
    return {
        "classify_with_suggestion": _classify_with_suggestion(run, posted),
        "by_class": {group: _medians(t) for group, t in sorted(per_class.items())},
        # the same medians per playbook, with how many incidents each resolved and left open
        "by_playbook": {
            name: {**_medians(t), "resolved": len(t["resolve"]), "open_at_end": len(t["open"])}
            for name, t in sorted(per_playbook.items())
        },
        "still_open": still_open,
        "operations": _operations(run),
        "waited_for_monday": sorted(run.people.waited, key=lambda k: int(k.removeprefix("INC-"))),
        "night_pages_per_person": {user: round(n / number_of_nights, 1) for user, n in nights.most_common()},
    }


def _medians(times: dict[str, list[float]]) -> dict[str, Any]:
    return {
        "incidents": len(times["incidents"]),
        "median_minutes_to_acknowledge": _median_minutes(times["ack"]),
        "median_minutes_to_classify": _median_minutes(times["classify"]),
        "median_minutes_to_resolve": _median_minutes(times["resolve"]),
    }


def _failure_of(incident: Any) -> str:
    if incident.scenario_id or incident.invariant_id:
        return f"{incident.scenario_id or '-'} / {incident.invariant_id or '-'}"
    return str(incident.test_identity or "no test named")


def _why_open(run: SimulationRun, facts: Facts, incident: Any) -> str:
    """Why an incident is open at the end, in the words of what people and the bot did."""
    playbook = facts.playbook(incident.playbook)
    if not incident.failure_class:
        if playbook.policy.classify_within is not None:
            why = f"unclassified, escalated to level {incident.escalation_level}"
        else:
            why = "unclassified (the playbook has no timed rule to escalate it)"
    else:
        why = f"classified {incident.failure_class}, milestone {incident.milestone or 'none yet'}"
        progress = incident.validation or {}
        if progress.get("state") == "awaiting":
            why += f", awaiting green runs ({len(progress.get('green') or [])} of {progress.get('needed')})"
    waited = run.people.waited.get(incident.key)
    if waited is not None and incident.key not in {d.incident for d in run.people.done if d.at > waited}:
        why += f"; its people wait for Monday since {_when(waited)}"
    elif not run.config.responders:
        why += "; nobody works the cards in this run"
    bead = f", bead {incident.bead_id}" if incident.bead_id else ""
    return why + bead


def _operations(run: SimulationRun) -> dict[str, Any]:
    """Seed 004's runbooks as ops on call executed them: alerts worked, steps clicked, failed steps
    (each escalated), resolutions and postmortems read in the thread."""
    operator = run.people.operator
    if operator is None:
        return {}
    jobs = list(operator.jobs.values())
    return {
        "alerts_worked": len(jobs),
        "steps_clicked": len(operator.clicks),
        "steps_failed": sum(1 for c in operator.clicks if c.result == "failed"),
        "resolved": sum(1 for j in jobs if j.resolved),
        "postmortems_read": sum(1 for j in jobs if j.postmortem),
        "alerts_resolved_after_recovery": sum(1 for j in jobs if j.resolution is not None),
    }


def _classify_with_suggestion(run: SimulationRun, posted: dict[str, datetime]) -> dict[str, dict[str, Any]]:
    """Time to classify per class, for cards whose suggestion a person confirmed and for cards
    classified by hand: from the card's appearance in Slack to the bot's first "classified" post in
    its thread (both as the Slack emulator recorded them). A wrong first class counts until the
    reclassification that put it right (the thread's second classification post).
    The class is the one people settled on."""
    tz = as_utc(run.started).tzinfo
    by_card: dict[tuple[str, str], str] = {}
    for message in run.snapshot.top_level():
        metadata = message.metadata or {}
        if metadata.get("event_type") == CARD_EVENT:
            key = f"INC-{(metadata.get('event_payload') or {}).get('incident')}"
            by_card.setdefault((message.channel, message.ts), key)
    classified: dict[str, list[datetime]] = {}
    for message in sorted(run.snapshot.messages, key=lambda m: m.at):
        card_key = by_card.get((message.channel, message.thread_ts or ""))
        if card_key is not None and ("classified this as" in message.text or "reclassified this from" in message.text):
            classified.setdefault(card_key, []).append(datetime.fromtimestamp(message.at, tz))
    how: dict[str, tuple[bool, str, bool]] = {}  # incident -> (confirmed, final class, first was wrong)
    for done in run.people.done:
        if done.what.startswith("classified it "):
            how.setdefault(done.incident, ("(confirmed the suggestion)" in done.what, done.what.split()[2], False))
        elif done.what.startswith("reclassified it ") and done.incident in how:
            confirmed, _, _ = how[done.incident]
            how[done.incident] = (confirmed, done.what.split()[2], True)
    groups: dict[str, dict[str, list[float]]] = {}
    for key, (confirmed, final, corrected) in how.items():
        card, posts = posted.get(key), classified.get(key)
        if card is None or not posts:
            continue
        settled = posts[min(len(posts), 2) - 1] if corrected else posts[0]
        column = "with_suggestion" if confirmed else "by_hand"
        groups.setdefault(final, {"with_suggestion": [], "by_hand": [], "corrected": []})
        groups[final][column].append((settled - card).total_seconds() / 60)
        if corrected:
            groups[final]["corrected"].append(1)
    return {
        cls: {
            "confirmed": len(t["with_suggestion"]),
            "median_minutes_with_suggestion": _median_minutes(t["with_suggestion"]),
            "by_hand": len(t["by_hand"]),
            "median_minutes_by_hand": _median_minutes(t["by_hand"]),
            "reclassified": len(t["corrected"]),
        }
        for cls, t in sorted(groups.items())
    }


def _outcome_lines(figures: dict[str, Any]) -> list[str]:
    found = figures["outcomes"]

    def minutes(value: float | None) -> str:
        return "—" if value is None else f"{value:g} min"

    rows = [
        (
            group,
            str(t["incidents"]),
            minutes(t["median_minutes_to_acknowledge"]),
            minutes(t["median_minutes_to_classify"]),
            minutes(t["median_minutes_to_resolve"]),
        )
        for group, t in found["by_class"].items()
    ]
    lines = _table(
        [
            (
                name,
                str(t["incidents"]),
                f"{t['resolved']} / {t['open_at_end']}",
                minutes(t["median_minutes_to_acknowledge"]),
                minutes(t["median_minutes_to_classify"]),
                minutes(t["median_minutes_to_resolve"]),
            )
            for name, t in found.get("by_playbook", {}).items()
        ],
        ("playbook", "incidents", "resolved / open", "to acknowledge", "to classify", "to resolve"),
    )
    lines += ["", "Per class:", ""]
    lines += _table(rows, ("playbook / class", "incidents", "to acknowledge", "to classify", "to resolve"))
    lines += ["", "Medians from the card's appearance in Slack to the person's action (— : nobody did it)."]
    suggestion = found.get("classify_with_suggestion") or {}
    if suggestion:
        lines += ["", "Time to classify with the card's suggestion (Confirm) and by hand:", ""]
        lines += _table(
            [
                (
                    cls,
                    f"{t['confirmed']} · {minutes(t['median_minutes_with_suggestion'])}",
                    f"{t['by_hand']} · {minutes(t['median_minutes_by_hand'])}",
                    str(t["reclassified"]),
                )
                for cls, t in suggestion.items()
            ],
            ("class", "confirmed · median", "by hand · median", "reclassified"),
        )
        lines += [
            "",
            "From the card's post to the bot's classification post in its thread, as Slack recorded them; a "
            "wrong first class counts until the reclassification.",
        ]
    if found["still_open"]:
        lines += ["", f"**Still open at the end ({len(found['still_open'])}):**", ""]
        lines += [f"- {line}" for line in found["still_open"][:SHOWN_VIOLATIONS]]
        if len(found["still_open"]) > SHOWN_VIOLATIONS:
            lines.append(f"- … and {len(found['still_open']) - SHOWN_VIOLATIONS} more (see the JSON report)")
    else:
        lines += ["", "Nothing is open at the end."]
    ops = found.get("operations") or {}
    if ops:
        lines += [
            "",
            f"Ops on call worked {ops['alerts_worked']} alerts from their failure-mode runbook: "
            f"{ops['steps_clicked']} checklist clicks, {ops['steps_failed']} step(s) failed as written and "
            f"escalated, {ops['alerts_resolved_after_recovery']} alert(s) resolved in Alertmanager after the "
            f"recovery, {ops['resolved']} incident(s) documented and resolved, {ops['postmortems_read']} "
            "postmortem(s) read in the thread.",
        ]
    waited = found.get("waited_for_monday") or []
    lines += [
        "",
        f"Incidents that waited for Monday (nobody but the on-call path acts on weekends): {len(waited)}"
        + (f" ({', '.join(waited[:SHOWN_VIOLATIONS])})" if waited else "")
        + ".",
    ]
    nights = found["night_pages_per_person"]
    lines += [
        "",
        "Pages per person per night (22:00-07:00 UTC): "
        + (", ".join(f"<@{user}> {n}" for user, n in nights.items()) or "none")
        + ".",
    ]
    return lines


def report_json(result: SimulationResult, figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "passed": result.passed,
        **figures,
        "invariants": [c.as_json() for c in result.checks],
        "sabotage": result.run.sabotage,
        "people_log": [d.as_json() for d in result.run.people.done],
        "restarts": [
            {"at": r.at.isoformat(), "reason": r.reason, "process": r.process, "in_flight": r.in_flight}
            for r in result.run.restarts
        ],
    }


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def socket_lines(run: SimulationRun) -> list[str]:
    """Which bot processes took Slack over Socket Mode, and what travelled to them that way."""
    if not run.socket_processes:
        return []
    envelopes = run.snapshot.socket_envelopes
    kinds = Counter(carried or kind for kind, carried, _ in envelopes)
    carried = ", ".join(f"{what} {n}" for what, n in kinds.most_common()) or "nothing"
    processes = ", ".join(str(n) for n in run.socket_processes)
    return [
        "",
        f"Slack over Socket Mode: bot process{'es' if len(run.socket_processes) > 1 else ''} {processes} connected "
        f"over a WebSocket instead of serving /slack/events; {len(envelopes)} requests went to them as envelopes "
        f"({carried}), the people's clicks and commands and Slack's events alike.",
    ]


def report_markdown(result: SimulationResult, figures: dict[str, Any]) -> str:
    run = result.run
    sim, ci, bot = figures["simulated"], figures["ci"], figures["bot"]
    verdict = "PASSED" if result.passed else "FAILED"
    broken = [c for c in result.checks if not c.passed]
    who = (
        "simulated responders who work the cards with realistic delays"
        if sim["responders"]
        else "nobody answering: no one acknowledges, classifies or resolves anything"
    )
    out = [f"# Founder-absence simulation: {verdict}", ""]
    out.append(
        f"{sim['days']} days of CI traffic ({_when(run.started)} to {_when(run.ended)} UTC, simulated) went through "
        f"the real bot with {who}. Slack, PagerDuty and bd were local stand-ins; "
        f"{'outages and process crashes were injected on the way' if sim['faults'] else 'no faults were injected'}."
    )
    out.append("")
    cases = sum(c.checked for c in result.checks)
    if result.passed:
        out.append(
            f"**All {len(result.checks)} promises held**, each examined against at least one case ({cases} cases "
            f"in all; a promise that examines none fails). The run took {figures['wall_seconds']} s of real time."
        )
    else:
        out.append(
            f"**{len(broken)} of {len(result.checks)} promises were broken:** "
            + "; ".join(f"“{c.promise}”" for c in broken)
            + ". The violations are listed below."
        )
    if run.sabotage:
        out += ["", "Deliberately broken for this run: " + "; ".join(run.sabotage) + "."]

    out += ["", "## Outcomes", ""]
    out += _outcome_lines(figures)

    out += ["", "## Invariants", ""]
    out.append(
        "Each promise with the number of cases it examined. The checks marked *from the outside* compute what "
        "must have happened from the playbook's YAML and the traffic sent, and compare it with what Slack, "
        "PagerDuty, bd and GitHub recorded; the others compare the bot's own records with those fakes."
    )
    out.append("")
    verdicts = [
        (
            c.promise + (" *(from the outside)*" if c.outside else ""),
            # per playbook: a playbook whose traffic no check examined was not tested at all
            str(c.checked)
            + (
                f" ({', '.join(f'{name} {n}' for name, n in sorted(c.per_playbook.items()))})" if c.per_playbook else ""
            ),
            "PASS" if c.passed else f"FAIL ({len(c.violations)})",
        )
        for c in result.checks
    ]
    out += _table(verdicts, ("promise", "checked", "result"))
    kept = {c.key for c in result.checks}
    left_out = {k: v for k, v in sim.get("not_applicable", {}).items() if k not in kept}
    if left_out:
        out += ["", one_line(left_out)]
    for check in broken:
        out += ["", f"### {check.promise}: {len(check.violations)} violation(s)", ""]
        out += [f"- {v}" for v in check.violations[:SHOWN_VIOLATIONS]]
        if len(check.violations) > SHOWN_VIOLATIONS:
            out.append(f"- … and {len(check.violations) - SHOWN_VIOLATIONS} more (see the JSON report)")

    out += ["", "## Faults injected and how the bot weathered them", ""]
    out += _fault_lines(result, figures)

    out += ["", "## What was simulated", ""]
    out.append(
        f"CI ran {ci['runs']} times ({ci['green_runs']} of them green): {_runs_per_playbook(run)}. They reported "
        f"{ci['results']} test results, {ci['failures']} of them failing. CI uploaded {ci['resent_reports']} "
        "reports twice (the bot must ignore the copy)."
    )
    skipped = ci.get("playbooks_without_traffic") or {}
    if skipped:
        out += ["", "No CI traffic for " + "; ".join(f"{name} ({why})" for name, why in sorted(skipped.items())) + "."]
    doors = door_counts(run.traffic.sent, run.ingest_answers)
    out += ["", "Entry points (runs through each): " + ", ".join(f"{DOOR_NAMES[d]} {n}" for d, n in doors.items())]
    out += socket_lines(run)
    if run.alerts is not None and run.alerts.sent:
        fired = run.alerts.firing()
        out += [
            "",
            f"Alertmanager fired {len(fired)} alerts from the playbooks' alert rules through `/webhooks/alertmanager` "
            f"({', '.join(a.alertname for a in fired)}) and resolved "
            f"{sum(1 for a in run.alerts.sent if a.status == 'resolved')} of them.",
        ]
    out.append("")
    rows = [(KIND_LABELS[k], str(ci["failures_by_kind"].get(k, 0))) for k in KINDS]
    out += _table(rows, ("kind of failure", "failing results"))
    days = ci.get("story_days", {})
    if days:
        out += [
            "",
            "When the stories began (day 1 is the first day): "
            + "; ".join(f"{KIND_LABELS[k]} on day {d + 1}" for k, d in sorted(days.items(), key=lambda kv: kv[1]))
            + ".",
        ]

    out += ["", "## What the bot did", ""]
    rows = [
        ("incidents opened (one per distinct failure)", str(bot["incidents"])),
        ("cards posted in Slack", str(bot["cards"])),
        ("card updates (edits in place)", str(bot["card_updates"])),
        ("posts in incident threads", str(bot["thread_posts"])),
        ("escalations by the 20-minute rule and its repeats", str(bot["escalations"])),
        (
            "runs escalated at once for failing across several scenario prefixes",
            str(bot["multi_prefix_runs_escalated"]),
        ),
        ("pages sent as Slack DMs", str(bot["page_dms"])),
        (
            "pages dropped because the incident was classified before their turn",
            str(bot["page_dms_dropped_after_classification"]),
        ),
        (
            "PagerDuty triggers (acknowledge / resolve)",
            f"{bot['pagerduty_triggers']} ({bot['pagerduty_acknowledges']} / {bot['pagerduty_resolves']})",
        ),
        ("SEV-1 incidents", str(bot["sev1_incidents"])),
        ("contract violations (missing ids) filed as harness defects", str(bot["contract_violations"])),
        (
            "defect beads filed (bd / GitHub issues)",
            f"{bot['beads_filed']} ({bot['beads_in_bd']} / {bot['issues_in_github']})",
        ),
        ("comments added to beads for recurrences", str(bot["bead_comments"])),
        ("status reminders in quiet threads", str(bot["reminders"])),
        ("incidents classified by people", str(bot["classified_by_people"])),
        (
            "incidents resolved / reopened / still open at the end",
            f"{bot['resolved']} / {bot['reopened']} / {bot['open_at_end']}",
        ),
        ("process restarts after crashes", str(bot["restarts"])),
    ]
    if bot["median_minutes_to_classification"] is not None:
        rows.append(("median time from card to classification", f"{bot['median_minutes_to_classification']} min"))
    out += _table(rows, ("what", "count"))
    by_class = ", ".join(f"{k}: {v}" for k, v in sorted(bot["incidents_by_class"].items()))
    out += ["", f"Incidents by class at the end: {by_class}."]

    out += ["", "## What people did", ""]
    if run.people.done:
        shown = run.people.done if len(run.people.done) <= 12 else run.people.done[:12]
        if not sim["responders"]:
            out.append(
                "Nobody worked the cards. A passer-by marked "
                f"{', '.join(figures['people']['marked_sev1']) or 'nothing'} SEV-1 with `/triage severity` "
                "(the report format has no severity field, so a person has to say it); everything after that "
                "was the bot's."
            )
            out.append("")
        else:
            counts = ", ".join(f"{v}× {k}" for k, v in figures["people"]["by_action"].items())
            out.append(f"{figures['people']['actions']} actions through Slack: {counts}. The first few:")
            out.append("")
        for done in shown:
            out.append(f"- {_when(done.at)} <@{done.user}> {done.what} on {done.incident}")
        if len(run.people.done) > len(shown):
            out.append(f"- … and {len(run.people.done) - len(shown)} more (see the JSON report)")
    else:
        out.append("Nobody touched Slack.")

    out += ["", "## Reproduce", ""]
    command = f"triagebot simulate --days {sim['days']} --seed {sim['seed']}"
    if sim["responders"]:
        command += " --responders"
    if not sim["faults"]:
        command += " --no-faults"
    if run.config.inject_bug:
        command += f" --inject-bug {run.config.inject_bug}"
    if Path(sim["runbooks"]).resolve() != DEFAULT_RUNBOOKS.resolve():
        command += f" --runbooks {sim['runbooks']}"
    out += ["```", command, "```", ""]
    out.append(
        "The same seed replays the same CI traffic, faults and people. "
        f"Real time: {figures['wall_seconds']} s; the bot's outbox handled {bot['outbox_rows']} effects."
    )
    return "\n".join(out) + "\n"


def _runs_per_playbook(run: SimulationRun) -> str:
    """Each playbook's runs by suite, from what CI sent ("integration-triage: 14 nightly, 52 smoke")."""
    default = run.traffic.runbook.name
    suites: dict[str, Counter[str]] = {}
    for sent in run.traffic.sent:
        suites.setdefault(sent.playbook or default, Counter())[sent.suite] += 1
    return (
        "; ".join(
            f"{name}: " + ", ".join(f"{n} {suite}" for suite, n in sorted(counts.items()))
            for name, counts in sorted(suites.items())
        )
        or "none"
    )


def _fault_lines(result: SimulationResult, figures: dict[str, Any]) -> list[str]:
    run, faults = result.run, figures["faults"]
    if not run.config.faults:
        return ["None (run without `--no-faults` to inject outages and crashes)."]
    delivered = next((c for c in result.checks if c.key == "outbox"), None)
    fine = delivered is not None and delivered.passed
    later = "all of them were delivered later" if fine else "not all of them arrived (see the invariants)"
    lines = []
    if faults["slack_429_posts"] or faults["slack_429_updates"]:
        lines.append(
            f"- **Slack rate limits.** Slack answered 429 to {faults['slack_429_posts']} posts and "
            f"{faults['slack_429_updates']} card updates; the bot waited out each Retry-After (other channels "
            f"kept flowing) and {later}."
        )
    if faults["slack_5xx"]:
        lines.append(f"- **Slack errors.** Slack answered HTTP 5xx to {faults['slack_5xx']} calls; {later}.")
    outages = [f for f in run.faults.by_kind(BD_OUTAGE)]
    if outages:
        windows = "; ".join(f"{_when(f.at)} to {_when(f.until)}" for f in outages)
        late = faults["beads_filed_late"]
        detail = (
            "; ".join(
                f"{b['incident']}'s bead was filed {b['late_by']} after it was due ({b['attempts']} attempts)"
                for b in late
            )
            if late
            else "no bead came due while bd was down"
        )
        lines.append(
            f"- **bd unavailable** ({windows}). {faults['bd_failed_calls']} bead calls failed and were retried; "
            f"{detail}. Triage went on meanwhile (cards said the bead was pending)."
        )
    for fault in run.faults.by_kind(PAGERDUTY_OUTAGE):
        late = faults["pages_delivered_late"]
        if late:
            incidents = ", ".join(dict.fromkeys(p["incident"] for p in late))
            worst = max(late, key=lambda p: p["late_seconds"])
            detail = (
                f"{len(late)} PagerDuty events (for {incidents}) were retried until PagerDuty was back and "
                f"arrived at most {worst['late_by']} late"
            )
        else:
            detail = "no PagerDuty event came due meanwhile"
        lines.append(
            f"- **PagerDuty down** ({_when(fault.at)} to {_when(fault.until)}). PagerDuty refused "
            f"{faults['pagerduty_refused']} requests; {detail}. The Slack half of each page (thread mention "
            "and DM) does not go through PagerDuty and was not held up."
        )
    lines += run.faults.github_lines(run.snapshot.github_refused, run.snapshot.github_downloads)
    lines += github_issue_lines(run.faults, run.snapshot.github_issue_outages, run.snapshot.github_issue_refused)
    for crash in faults["crashes"]:
        if crash["triggered_at"] is None:
            lines.append(f"- **Crash planned but not reached:** {crash['description']} (no such moment came).")
            continue
        at = datetime.fromisoformat(crash["triggered_at"])
        flight = crash["in_flight"]
        taken = (
            f"; the new process took over {len(flight)} deliveries left half-done ({', '.join(flight)})"
            if flight
            else ""
        )
        lines.append(
            f"- **Crash** at {_when(at)}: {crash['description']}, while doing: {crash['interrupted']}. "
            f"Process {crash['restarted_as']} started on the same database{taken}."
        )
    if faults["dead_letters"]:
        lines.append(f"- {faults['dead_letters']} deliveries were given up (dead-lettered); see the invariants.")
    return lines or ["No fault met any work."]


def write_reports(
    result: SimulationResult, markdown: Path | None = None, json_path: Path | None = None
) -> tuple[str, dict[str, Any]]:
    """The Markdown text and the JSON document (written to the paths given)."""
    text = report_markdown(result, result.figures)
    data = report_json(result, result.figures)
    if markdown is not None:
        markdown.write_text(text, encoding="utf-8")
    if json_path is not None:
        json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return text, data
