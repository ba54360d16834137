"""Text answers for ``/triage`` (ephemeral unless they change an incident), in the words of the
incident's playbook (or of the default one when no incident is named)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slackbot.config import ChoiceError, Playbook, Playbooks
from slackbot.db.models import Incident, TimelineEvent
from slackbot.domain.ids import echo, identity
from slackbot.slack.escape import code, escape, link, slack_date
from slackbot.slack.lease import lease_line
from slackbot.slack.suspects import suspect_lines

COMMANDS = (
    ("help [ID|playbook]", "this text, in the words of an incident's playbook"),
    ("list [open|mine|overdue]", "open incidents (default open)"),
    ("show ID", "one incident, with its pending actions"),
    ("ack ID", "take ownership"),
    ("classify ID CLASS", "a class of the incident's playbook, by key, label or alias"),
    ("severity ID SEVERITY", "a severity of the incident's playbook"),
    ("assign ID @user", ""),
    ("escalate ID [reason]", ""),
    ("flag ID FLAG", "set a flag of the playbook (e.g. rollback required); `unflag ID FLAG` clears it"),
    ("bead ID", "file the defect bead"),
    ("status ID MILESTONE [note]", "post a status milestone; the note fills what it asks for"),
    ("resolve ID root cause…", ""),
    ("timeline ID", "the audit trail"),
    ("runbook [prefix|class|task]", "taxonomy entry, first-response checklist or task runbook"),
    ("owners [class]", "routing table"),
    ("postmortem ID", "the postmortem as a file in the thread (a draft while open)"),
    (
        "stats [chart]",
        "time to classify, MTTA, MTTR and reclassification rate per class, 7 and 30 days, the flakiest tests;"
        " `chart` uploads them as an image",
    ),
)

USAGE = (
    "*Usage:* `/triage <subcommand>`\n"
    + "\n".join(f"• `{usage}`" + (f" — {what}" if what else "") for usage, what in COMMANDS)
    + "\nIncident ids look like `INC-42`."
)


def usage(playbook: Playbook, playbooks: Playbooks) -> str:
    """The help text with the playbook's own choices spelled out."""
    classes = ", ".join(f"{escape(r.label)} (`{k}`)" for k, r in playbook.classes.items())
    severities = ", ".join(f"`{k}`" for k in playbook.severities)
    milestones = ", ".join(f"`{m.key}`" for m in playbook.milestones)
    lines = [
        USAGE,
        f"\n*{escape(playbook.title)}* (playbook `{playbook.name}`):",
        f"• classes: {classes}",
        f"• severities: {severities} (default `{playbook.policy.default_severity}`)",
        f"• milestones: {milestones}",
    ]
    if playbook.flags:
        lines.append("• flags: " + ", ".join(f"{escape(r.label)} (`{k}`)" for k, r in playbook.flags.items()))
    others = [p.name for p in playbooks if p.name != playbook.name]
    if others:
        lines.append(f"Other playbooks: {', '.join(f'`{n}`' for n in others)} (`/triage help NAME`).")
    return "\n".join(lines)


def incident_line(incident: Incident, playbook: Playbook) -> str:
    owner = f" · <@{incident.assignee}>" if incident.assignee else ""
    return (
        f"• *{incident.key}* {code(identity(incident))} — {escape(incident.symptom)}"
        f" · {escape(playbook.class_label(incident.failure_class))}"
        f" · {escape(incident.severity)}{owner} · ×{incident.occurrence_count}"
    )


LIST_LINES = 30


def incident_list(
    title: str, incidents: Sequence[Incident], playbooks: Playbooks, limit: int = LIST_LINES, total: int | None = None
) -> str:
    """``total``: how many there are when ``incidents`` holds only the first ones."""
    total = len(incidents) if total is None else total
    if not total:
        return f"*{title}:* none 🎉"
    lines = [incident_line(i, playbooks.get(i.playbook)) for i in incidents[:limit]]
    more = total - limit
    if more > 0:
        lines.append(f"…and {more} more (see App Home or `triagebot incidents`)")
    return f"*{title} ({total}):*\n" + "\n".join(lines)


def history_line(branch: str, history: dict[str, Any]) -> str:
    """The test's history on its branch (``History.as_json``): how often it failed and flipped, the
    run it started failing in and the last green one, which are what a responder compares."""
    runs, failed = int(history.get("runs") or 0), int(history.get("failed") or 0)
    flips = int(history.get("flips") or 0)
    parts = [
        f"History on {code(branch or 'no branch')}: {runs} run{'s' if runs != 1 else ''}, "
        f"fails {round(100 * failed / runs) if runs else 0}% ({failed}/{runs}), {flips} flip{'s' if flips != 1 else ''}"
    ]
    for label, seen in (("first failing", history.get("firstFailing")), ("last green", history.get("lastGreen"))):
        if seen:
            attempt = int(seen.get("attempt") or 1)
            run = f"run {seen.get('runId')}" + (f" (attempt {attempt})" if attempt > 1 else "")
            sha = f" (sha {code(str(seen['sha'])[:8])})" if seen.get("sha") else ""
            parts.append(f"{label} {link(seen.get('url'), run)}{sha}")
    return " · ".join(parts)


def incident_detail(
    incident: Incident,
    playbook: Playbook,
    pending: Sequence[tuple[str, datetime]],
    history: tuple[str, dict[str, Any]] | None = None,
) -> str:
    """``history``: the test's branch and its ``History.as_json``, when test history has it."""
    status = incident.status + (f" ({playbook.milestone_label(incident.milestone)})" if incident.milestone else "")
    lines = [
        f"*{incident.key}* {code(identity(incident))} — {escape(incident.symptom)}",
        f"Playbook: {escape(playbook.title)} · Status: {escape(status)} · "
        f"Class: {escape(playbook.class_label(incident.failure_class))} · Severity: {escape(incident.severity)} · "
        f"Assignee: {f'<@{incident.assignee}>' if incident.assignee else 'nobody'}",
        f"Occurrences: {incident.occurrence_count} "
        f"(first {slack_date(incident.first_seen)}, last {slack_date(incident.last_seen)})",
    ]
    if incident.suggested_class:  # as the card words it (slackbot/suggest): which signals voted, how sure
        suggestion = f"Suggested class: {escape(playbook.class_label(incident.suggested_class))}"
        if incident.suggested_reason:
            suggestion += f" ({escape(incident.suggested_reason)})"
        if incident.suggested_confidence is not None:
            suggestion += f" · {round(100 * incident.suggested_confidence)}% confident"
        lines.append(suggestion)
    if incident.suspects:  # the changes since the last green sha (slackbot/suggest)
        lines.append("Suspect changes: " + " · ".join(suspect_lines(incident.suspects)))
    if history is not None:
        lines.append(history_line(*history))
    if incident.contract_violation:
        lines.append(
            "⚠️ Contract violation: "
            + "/".join(playbook.missing_ids(incident.scenario_id, incident.invariant_id))
            + " missing"
        )
    if incident.documentation_gap:
        lines.append(f"📘 Documentation gap: {escape(incident.documentation_gap)}")
    for key in incident.flags:
        lines.append(f"🚩 {escape(playbook.flags[key].label if key in playbook.flags else key)}")
    for key, value in incident.record.items():
        if key != "root_cause":
            lines.append(f"{escape(key.replace('_', ' ').capitalize())}: {escape(value)}")
    if incident.bead_id:
        lines.append(f"Bead: {code(incident.bead_id)}")
    lease = lease_line(playbook, incident, markup=False)
    if lease:
        lines.append(lease)
    for description, at in pending:
        lines.append(f"⏰ Pending: {escape(description)} at {slack_date(at)}")
    return "\n".join(lines)


def timeline_text(incident: Incident, events: Sequence[TimelineEvent], limit: int = 40) -> str:
    rows = [
        f"• {slack_date(e.at)} — {escape(e.message)} _({escape(e.source)}, {escape(e.actor)})_" for e in events[-limit:]
    ]
    skipped = len(events) - limit
    head = f"*Timeline of {incident.key}* ({len(events)} events)" + (f", latest {limit}" if skipped > 0 else "")
    return head + ":\n" + "\n".join(rows)


def runbook_text(playbook: Playbook, topic: str | None) -> str:
    taxonomy = playbook.taxonomy
    if not topic:
        parts = [
            f"*{escape(playbook.title)}*" + (f" — {escape(playbook.policy.summary)}" if playbook.policy.summary else "")
        ]
        if taxonomy.scenarios:
            parts.append("*Scenarios:* " + ", ".join(f"`{s.prefix}-*` {escape(s.meaning)}" for s in taxonomy.scenarios))
        if taxonomy.invariants:
            parts.append(
                "*Invariants:* " + ", ".join(f"`{i.prefix}-*` {escape(i.meaning)}" for i in taxonomy.invariants)
            )
        parts.append("*Classes:* " + ", ".join(escape(r.label) for r in playbook.classes.values()))
        if playbook.policy.response_steps:
            steps = "\n".join(f"{n}. {escape(s.text)}" for n, s in enumerate(playbook.policy.response_steps, 1))
            parts.append(f"*Response:*\n{steps}")
        if playbook.policy.tasks:
            parts.append("*Task runbooks:* " + ", ".join(f"`{t.key}` {escape(t.title)}" for t in playbook.policy.tasks))
        parts.append("Ask `/triage runbook <prefix>` or `/triage runbook <class>` for details.")
        return "\n".join(parts)
    key = topic.strip().upper().rstrip("-*")
    entry = taxonomy.scenario(key) or taxonomy.invariant(key)
    if entry is not None:
        evidence = "\n".join(f"• {escape(e)}" for e in entry.evidence)
        return (
            f"*`{entry.prefix}-*`* — {escape(entry.meaning)}\n"
            f"*Typical failure surface:* {escape(entry.failure_surface)}\n"
            f"*Evidence to capture:*\n{evidence}"
        )
    task = next((t for t in playbook.policy.tasks if t.key == topic.strip().lower().replace("-", "_")), None)
    if task is not None:

        def listed(title: str, items: list[str]) -> str:
            return f"*{title}:*\n" + "\n".join(f"{n}. {escape(i)}" for n, i in enumerate(items, 1)) if items else ""

        parts = [
            f"*{escape(task.title)}* (role: {escape(task.role)})",
            listed("Prerequisites", task.prerequisites),
            listed("Steps", task.steps),
            listed("Verification", task.verification),
            listed("Rollback", task.rollback),
        ]
        return "\n".join(p for p in parts if p)
    try:
        chosen = playbook.parse_class(topic)
    except ChoiceError:
        return (
            f"Nothing in the {escape(playbook.name)} runbook called '{escape(topic)}'. "
            "Try a prefix, a class or a task runbook (`/triage runbook` lists them)."
        )
    route = playbook.classes[chosen]
    steps = "\n".join(f"{n}. {escape(s)}" for n, s in enumerate(route.first_response, 1)) or "(no steps listed)"
    action = f"\n*Required action:* {escape(route.required_action)}" if route.required_action else ""
    return f"*{escape(route.label)}* — {escape(route.description)}{action}\n*First response:*\n{steps}"


def owners_text(playbook: Playbook, topic: str | None) -> str:
    """The routing table; raises ``ChoiceError`` (with the valid classes) for an unknown class."""
    keys = [playbook.parse_class(topic)] if topic else list(playbook.classes)
    blocks = [f"*Owners in {escape(playbook.title)}:*"]
    for key in keys:
        route = playbook.classes[key]
        scope = ", ".join(code(s) for s in route.scope) or "—"
        escalation = playbook.target("escalation", key)
        fallback = playbook.target("fallback", key)
        line = (
            f"*{escape(route.label)}* — owner {escape(route.owner.describe())}"
            + (f" (on call <@{route.owner.oncall_user}>)" if route.owner.oncall_user else "")
            + (f"; secondary {escape(route.secondary_owner.describe())}" if route.secondary_owner else "")
            + f"; escalation {escape(escalation.target.describe()) if escalation else '—'}"
            + f"; fallback {escape(fallback.target.describe()) if fallback else '—'}"
        )
        if route.required_action:
            line += f"\n  required action: {escape(route.required_action)}"
        line += f"\n  scope: {scope}"
        if route.raci:
            line += f"\n  RACI: R {escape(route.raci.responsible)}, A {escape(route.raci.accountable)}"
        blocks.append(line)
    return "\n".join(blocks)


def usage_lines() -> list[str]:
    """The ``/triage`` subcommands as lines, for the published runbook (so it lists exactly these)."""
    return [f"`{usage}`" + (f" — {what}" if what else "") for usage, what in COMMANDS]


def busy(waiting: int, asked: str) -> str:
    """The ack of a read refused under a flood (slackbot.after_ack): what happened, what to do."""
    again = code(echo("/triage " + " ".join(asked.split()), limit=60))
    return (
        f":hourglass: triagebot is answering {waiting} requests ahead of yours right now, so it did not "
        f"take this one. Nothing was changed. Ask again in a few seconds: {again}"
    )
