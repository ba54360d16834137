"""Text answers for ``/triage`` (ephemeral unless they change an incident)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slackbot.config.models import FailureClass, Runbook
from slackbot.db.models import Incident, TimelineEvent
from slackbot.slack.card import class_label
from slackbot.slack.escape import code, escape, slack_date

USAGE = """*Usage:* `/triage <subcommand>`
• `help` — this text
• `list [open|mine|overdue]` — open incidents (default open)
• `show ID` — one incident, with its pending actions
• `ack ID` — take ownership
• `classify ID CLASS` — infra_ci, harness_diagnostics, algorithm_regression, data_schema_drift, flake_concurrency
• `severity ID SEV-n` — SEV-1, SEV-2 or SEV-3
• `assign ID @user`
• `escalate ID [reason]`
• `bead ID` — file the defect bead
• `status ID MILESTONE [note]` — triage_complete, mitigation_active, fix_merged, validation_complete, resolved
• `resolve ID root cause…`
• `timeline ID` — the audit trail
• `runbook [prefix|class]` — taxonomy entry or first-response checklist
• `owners [class]` — routing table
• `postmortem ID` — the postmortem as a file in the thread (a draft while open)
• `stats` — time to classify, MTTA, MTTR and reclassification rate per class, 7 and 30 days
Incident ids look like `INC-42`."""


def incident_line(incident: Incident, runbook: Runbook) -> str:
    ids = f"{incident.scenario_id or '—'} / {incident.invariant_id or '—'}"
    owner = f" · <@{incident.assignee}>" if incident.assignee else ""
    return (
        f"• *{incident.key}* {code(ids)} — {escape(incident.symptom)}"
        f" · {escape(class_label(runbook, incident.failure_class))}"
        f" · {incident.severity}{owner} · ×{incident.occurrence_count}"
    )


def incident_list(title: str, incidents: Sequence[Incident], runbook: Runbook, limit: int = 30) -> str:
    if not incidents:
        return f"*{title}:* none 🎉"
    lines = [incident_line(i, runbook) for i in incidents[:limit]]
    more = len(incidents) - limit
    if more > 0:
        lines.append(f"…and {more} more (see App Home or `triagebot incidents`)")
    return f"*{title} ({len(incidents)}):*\n" + "\n".join(lines)


def incident_detail(incident: Incident, runbook: Runbook, pending: Sequence[tuple[str, datetime]]) -> str:
    lines = [
        f"*{incident.key}* {code(incident.scenario_id)} / {code(incident.invariant_id)} — {escape(incident.symptom)}",
        f"Status: {incident.status}{f' ({incident.milestone})' if incident.milestone else ''} · "
        f"Class: {escape(class_label(runbook, incident.failure_class))} · Severity: {incident.severity} · "
        f"Assignee: {f'<@{incident.assignee}>' if incident.assignee else 'nobody'}",
        f"Occurrences: {incident.occurrence_count} "
        f"(first {slack_date(incident.first_seen)}, last {slack_date(incident.last_seen)})",
    ]
    if incident.suggested_class:
        lines.append(
            f"Suggested owner: {escape(class_label(runbook, incident.suggested_class))} "
            f"({escape(incident.suggested_reason)})"
        )
    if incident.contract_violation:
        lines.append("⚠️ Contract violation: no scenarioId/invariantId")
    if incident.documentation_gap:
        lines.append(f"📘 Documentation gap: {escape(incident.documentation_gap)}")
    if incident.bead_id:
        lines.append(f"Bead: {code(incident.bead_id)}")
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


def runbook_text(runbook: Runbook, topic: str | None) -> str:
    taxonomy, routing = runbook.taxonomy, runbook.routing
    if not topic:
        scen = ", ".join(f"`{s.prefix}-*` {escape(s.meaning)}" for s in taxonomy.scenarios)
        inv = ", ".join(f"`{i.prefix}-*` {escape(i.meaning)}" for i in taxonomy.invariants)
        steps = "\n".join(f"{n}. {escape(s.text)}" for n, s in enumerate(runbook.policy.response_steps, 1))
        return (
            f"*Scenarios:* {scen}\n*Invariants:* {inv}\n*Response:*\n{steps}\n"
            "Ask `/triage runbook BID` or `/triage runbook flake` for details."
        )
    key = topic.strip().upper().rstrip("-*")
    entry = taxonomy.scenario(key) or taxonomy.invariant(key)
    if entry is not None:
        evidence = "\n".join(f"• {escape(e)}" for e in entry.evidence)
        return (
            f"*`{entry.prefix}-*`* — {escape(entry.meaning)}\n"
            f"*Typical failure surface:* {escape(entry.failure_surface)}\n"
            f"*Evidence to capture:*\n{evidence}"
        )
    from slackbot.services.incidents import IncidentError, parse_class

    try:
        chosen = parse_class(topic)
    except IncidentError:
        return (
            f"Nothing in the runbook called '{escape(topic)}'. "
            "Try a prefix (BID, TENANT, …) or a class (flake, infra, …)."
        )
    route = routing.route(chosen)
    steps = "\n".join(f"{n}. {escape(s)}" for n, s in enumerate(route.first_response, 1))
    return f"*{escape(route.label)}* — {escape(route.description)}\n*First response:*\n{steps}"


def owners_text(runbook: Runbook, topic: str | None) -> str:
    from slackbot.services.incidents import parse_class

    classes = [parse_class(topic)] if topic else list(FailureClass)
    blocks = []
    for failure_class in classes:
        route = runbook.routing.route(failure_class)
        scope = ", ".join(code(s) for s in route.scope) or "—"
        blocks.append(
            f"*{escape(route.label)}* — owner {escape(route.owner.describe())}"
            + (f" (on call <@{route.owner.oncall_user}>)" if route.owner.oncall_user else "")
            + f"; escalation {escape(route.escalation.describe())}; fallback {escape(route.fallback.describe())}\n"
            f"  scope: {scope}\n  RACI: R {escape(route.raci.responsible)}, A {escape(route.raci.accountable)}"
        )
    return "\n".join(blocks)
