"""The failure card: a pure function of the incident's state (the Netflix Dispatch rule).

Every change to an incident redraws the whole card from a ``CardView``; nothing patches blocks.
Built with slack_sdk's Block Kit models so Slack's limits are checked before we send, and every
piece of untrusted text goes through ``escape``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
    StaticSelectElement,
)

from slackbot.config.models import AlertRunbook, FailureClass, Runbook, Severity, TaxonomyEntry
from slackbot.db.models import Incident, Run
from slackbot.services.repro import fill_command
from slackbot.slack.escape import code, escape, link, slack_date, truncate

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_BLOCKS = 50

ACTION_ACK = "incident_ack"
ACTION_CLASSIFY = "incident_classify"
ACTION_SEVERITY = "incident_severity"
ACTION_ESCALATE = "incident_escalate"
ACTION_BEAD = "incident_file_bead"
ACTION_RUNBOOK = "incident_runbook"
ACTION_STATUS = "incident_status"

ALERTMANAGER_REPOSITORY = "alertmanager"  # incidents opened from Alertmanager (services/alertmanager.py)

MILESTONE_LABELS = {
    "triage_complete": "Triage complete",
    "mitigation_active": "Mitigation active",
    "fix_merged": "Fix merged",
    "validation_complete": "Validation complete",
    "resolved": "Resolved",
}


@dataclass(frozen=True)
class PendingAction:
    """Something the bot will do unless a person acts first, e.g. escalate at 10:42."""

    description: str
    at: datetime


@dataclass(frozen=True)
class CardView:
    incident: Incident
    run: Run | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    pending: list[PendingAction] = field(default_factory=list)


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text or " ", verbatim=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(truncate(text, SECTION_LIMIT)))


def _entry_text(kind: str, ident: str | None, entry: TaxonomyEntry | None) -> str:
    if not ident:
        return f"*{kind}:* _missing_ — the harness must emit it (contract violation)"
    if entry is None:
        return f"*{kind}:* {code(ident)} — _prefix not in the taxonomy (documentation gap)_"
    return f"*{kind}:* {code(ident)} — {escape(entry.meaning)}\n_Typical surface:_ {escape(entry.failure_surface)}"


def class_label(runbook: Runbook, value: str | None) -> str:
    if not value:
        return "unclassified"
    try:
        return runbook.routing.route(FailureClass(value)).label
    except ValueError:
        return value


def render_card(view: CardView, runbook: Runbook) -> tuple[str, list[dict[str, Any]]]:
    """Returns (fallback text, blocks as dicts). Pure: same view, same card."""
    incident, run = view.incident, view.run
    routing = runbook.routing
    resolved = incident.status == "resolved"
    ids = f"{incident.scenario_id or 'no scenarioId'} / {incident.invariant_id or 'no invariantId'}"
    icon = "✅" if resolved else ("🟠" if incident.failure_class else "🔴")
    header = truncate(f"{icon} {incident.key} · {ids}", 150, "…")
    blocks: list[Block] = [HeaderBlock(text=header)]
    blocks.append(_section(f"*Symptom:* {escape(incident.symptom)}"))

    flags = []
    if incident.contract_violation:
        flags.append("⚠️ *Contract violation:* no scenarioId/invariantId emitted — harness/diagnostics defect")
    if incident.documentation_gap:
        flags.append(f"📘 *Documentation gap:* {escape(incident.documentation_gap)} — update the runbook taxonomy")
    if incident.multi_prefix:
        flags.append("🧩 *Multi-prefix run:* failures span several scenario classes — likely harness or shared service")
    if flags:
        blocks.append(_section("\n".join(flags)))

    status = MILESTONE_LABELS.get(incident.milestone or "", "Open") if not resolved else "Resolved"
    suggested = (
        f"{escape(class_label(runbook, incident.suggested_class))} ({escape(incident.suggested_reason)})"
        if incident.suggested_class
        else "none — classify to route"
    )
    owner = "—"
    if incident.failure_class:
        owner = routing.route(FailureClass(incident.failure_class)).owner.mention()
    fields = [
        f"*Status:*\n{status}",
        f"*Class:*\n{escape(class_label(runbook, incident.failure_class))}"
        + (" _(contract rule)_" if incident.class_source == "contract" else ""),
        f"*Severity:*\n{incident.severity}",
        f"*Assignee:*\n{f'<@{incident.assignee}>' if incident.assignee else 'nobody yet'}",
        f"*Owner:*\n{owner}",
        f"*Suggested owner:*\n{truncate(suggested, 400)}",
        f"*Occurrences:*\n{incident.occurrence_count} (first {slack_date(incident.first_seen)}, "
        f"last {slack_date(incident.last_seen)})",
        f"*Organization under test:*\n{escape(incident.organization_under_test) or '—'}",
    ]
    if not incident.failure_class and not resolved:
        fields.append(f"*Classify by:*\n{slack_date(incident.classify_deadline)}")
    if incident.escalation_level:
        fields.append(f"*Escalation level:*\n{incident.escalation_level}")
    if incident.bead_id or incident.bead_state != "none":
        bead = code(incident.bead_id) if incident.bead_id else f"bead {incident.bead_state}"
        fields.append(f"*Defect bead:*\n{bead}")
    blocks.append(SectionBlock(fields=[_md(truncate(f, FIELD_LIMIT)) for f in fields[:10]]))

    alert = alert_runbook(incident, runbook)
    if alert is not None:
        blocks.extend(_alert_sections(alert, incident, run, view))
    else:
        blocks.extend(_failure_sections(incident, run, view, runbook))

    context = [f"Test: {code(incident.test_identity)}"]
    context += [f"⏰ {escape(p.description)} at {slack_date(p.at, '{time}')}" for p in view.pending]
    blocks.append(ContextBlock(elements=[_md(truncate(c, SECTION_LIMIT)) for c in context[:10]]))

    if not resolved:
        blocks.append(DividerBlock())
        blocks.append(_actions(incident, runbook))
    blocks = blocks[:MAX_BLOCKS]
    fallback = truncate(f"{incident.key} {ids}: {escape(incident.symptom)}", 3900)
    return fallback, [b.to_dict() for b in blocks]


def alert_runbook(incident: Incident, runbook: Runbook) -> AlertRunbook | None:
    """Operational alerts from Alertmanager carry their own runbook (policy.yml ``alerts``)."""
    if incident.repository != ALERTMANAGER_REPOSITORY:
        return None
    return next((a for a in runbook.policy.alerts if a.alertname == incident.scenario_id), None)


def _alert_sections(alert: AlertRunbook, incident: Incident, run: Run | None, view: CardView) -> list[Block]:
    steps = "\n".join(f"{n}. *{s.phase}:* {escape(s.text)}" for n, s in enumerate(alert.steps, 1))
    blocks: list[Block] = [
        _section(f"*Alert:* {code(alert.alertname)} — _detected by_ {escape(alert.detection)}"),
        _section(f"*Runbook (detect → diagnose → recover → verify → document):*\n{steps}"),
    ]
    if incident.key_entity_ids:
        labels = ", ".join(f"{escape(k)}={code(v)}" for k, v in sorted(incident.key_entity_ids.items()))
        blocks.append(_section(f"*Key entity ids (alert labels):* {labels}"))
    if run is not None and run.url:
        blocks.append(_section(f"*Source:* {link(run.url, 'Alertmanager')}"))
    return blocks


def _failure_sections(incident: Incident, run: Run | None, view: CardView, runbook: Runbook) -> list[Block]:
    taxonomy, policy = runbook.taxonomy, runbook.policy
    blocks: list[Block] = []
    blocks.append(
        _section(_entry_text("Scenario", incident.scenario_id, taxonomy.scenario(_prefix(incident.scenario_id))))
    )
    invariant = taxonomy.invariant(_prefix(incident.invariant_id))
    text = _entry_text("Invariant", incident.invariant_id, invariant)
    if invariant is not None:
        text += "\n_Evidence to capture:_ " + "; ".join(escape(e) for e in invariant.evidence)
    blocks.append(_section(text))

    if run is not None:
        run_line = (
            f"*Run:* {link(run.url, f'{run.repository} #{run.run_id} (attempt {run.run_attempt})')} · "
            f"suite {code(run.suite)} · branch {code(run.branch)} · sha {code((run.sha or '')[:12] or None)}"
        )
        blocks.append(_section(run_line))
    if incident.key_entity_ids:
        entities = ", ".join(f"{escape(k)}={code(v)}" for k, v in sorted(incident.key_entity_ids.items()))
        blocks.append(_section(f"*Key entity ids:* {entities}"))
    blocks.append(_section(_evidence_text(view.evidence)))
    commands = (
        "*Download artifacts:*\n```" + escape(fill_command(policy.commands.artifact_download, incident, run)) + "```\n"
        "*Reproduce this scenario locally:*\n```"
        + "\n".join(
            escape(f"export {v.name}=" + (f"<{v.name.lower()} from your local secrets>" if v.secret else v.value))
            for v in policy.environment
        )
        + "\n"
        + escape(fill_command(policy.commands.single_scenario, incident, run))
        + "```"
    )
    blocks.append(_section(commands))

    return blocks


def _prefix(identifier: str | None) -> str | None:
    return identifier.split("-", 1)[0] if identifier and "-" in identifier else None


def _evidence_text(evidence: list[dict[str, Any]]) -> str:
    if not evidence:
        return "*Evidence:* none attached by the harness"
    head = f"*Evidence ({len(evidence)}):*\n"
    lines: list[str] = []
    used = len(head)
    for index, item in enumerate(evidence):
        line = f"• {escape(item.get('kind', '?'))}: {code(item.get('path'))}"
        remaining = len(evidence) - index
        tail = f"\n… and {remaining} more (truncated; see the run's artifacts)"
        if used + len(line) + 1 + len(tail) > SECTION_LIMIT:
            lines.append(tail.strip())
            break
        lines.append(line)
        used += len(line) + 1
    return head + "\n".join(lines)


def _actions(incident: Incident, runbook: Runbook) -> ActionsBlock:
    value = str(incident.id)
    class_options = [Option(value=c.value, label=route.label) for c, route in runbook.routing.classes.items()]
    severity_options = [Option(value=s.value, label=s.value) for s in Severity]
    current_class = next((o for o in class_options if o.value == incident.failure_class), None)
    current_severity = next((o for o in severity_options if o.value == incident.severity), None)
    elements: list[Any] = []
    if not incident.assignee:
        elements.append(ButtonElement(text="Acknowledge", action_id=ACTION_ACK, value=value, style="primary"))
    elements.append(
        StaticSelectElement(
            placeholder="Classify…",
            action_id=ACTION_CLASSIFY,
            options=class_options,
            initial_option=current_class,
        )
    )
    elements.append(
        StaticSelectElement(
            placeholder="Severity…",
            action_id=ACTION_SEVERITY,
            options=severity_options,
            initial_option=current_severity,
        )
    )
    elements.append(_status_select(incident))
    elements.append(
        ButtonElement(
            text="Escalate",
            action_id=ACTION_ESCALATE,
            value=value,
            style="danger",
            confirm=ConfirmObject(
                title="Escalate now?",
                text="Pages the escalation target for this incident.",
                confirm="Escalate",
                deny="Cancel",
            ),
        )
    )
    if not incident.bead_id:
        elements.append(ButtonElement(text="File bead", action_id=ACTION_BEAD, value=value))
    elements.append(ButtonElement(text="Runbook", action_id=ACTION_RUNBOOK, value=value))
    return ActionsBlock(block_id=f"incident:{incident.id}", elements=elements)


def _status_select(incident: Incident) -> StaticSelectElement:
    """Seed 003's milestones, forward only: the ones after the current one. Resolved is always
    offered; choosing it opens a modal that asks for the root cause."""
    order = list(MILESTONE_LABELS)
    start = order.index(incident.milestone) + 1 if incident.milestone in order else 0
    options = [Option(value=m, label=MILESTONE_LABELS[m]) for m in order[start:]]
    return StaticSelectElement(placeholder="Status…", action_id=ACTION_STATUS, options=options)
