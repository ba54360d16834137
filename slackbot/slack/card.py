"""The failure card: a pure function of the incident's state (the Netflix Dispatch rule).

Every change to an incident redraws the whole card from a ``CardView``; nothing patches blocks.
Built as the dicts slack_sdk's Block Kit models make (slackbot/slack/blocks.py; the menus through
the models themselves), within Slack's limits, and every
piece of untrusted text goes through ``escape``. The words are the incident's playbook's: its
classes, severities, milestones and flags in the menus, its labels on the fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from slack_sdk.models.blocks import ConfirmObject, Option, StaticSelectElement

from slackbot.config import Playbook
from slackbot.config.taxonomy import TaxonomyEntry
from slackbot.db.models import Incident, Run
from slackbot.documents.commands import fill_command, repro_for
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY, escalate_value, identity
from slackbot.domain.states import BeadState, IncidentStatus
from slackbot.slack.alert_card import render_alert_card
from slackbot.slack.blocks import Block, button, context, divider, header, md, section
from slackbot.slack.escape import code, escape, link, slack_date, truncate
from slackbot.slack.lease import lease_line
from slackbot.slack.posts import Mrkdwn, render_named
from slackbot.slack.suspects import suspect_lines, suspect_summary

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
ACTION_FLAG = "incident_flag"
ACTION_DETAILS = "incident_details"
ACTION_HIDE_DETAILS = "incident_hide_details"
ACTION_CONFIRM = "incident_confirm_suggestion"
SUGGESTION_BLOCK = "suggested:"  # + the class the Confirm button beside it classifies as


@dataclass(frozen=True)
class PendingAction:
    """Something the bot will do unless a person acts first, e.g. escalate at 10:42."""

    description: str
    at: datetime


@dataclass(frozen=True)
class CardView:
    playbook: Playbook
    incident: Incident
    run: Run | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    pending: list[PendingAction] = field(default_factory=list)
    command: str | None = None  # the failing command, when the source reported one
    log: str = ""  # the tail of its log


def _md(text: str) -> dict[str, Any]:
    return md(text or " ")


def _section(text: str) -> Block:
    return section(_md(truncate(text, SECTION_LIMIT)))


def _entry_text(kind: str, ident: str | None, entry: TaxonomyEntry | None, violation: bool) -> str:
    if not ident:
        missing = " — the harness must emit it (contract violation)" if violation else ""
        return f"*{kind}:* _missing_{missing}"
    if entry is None:
        return f"*{kind}:* {code(ident)} — _prefix not in the taxonomy (documentation gap)_"
    return f"*{kind}:* {code(ident)} — {escape(entry.meaning)}\n_Typical surface:_ {escape(entry.failure_surface)}"


def render_card(view: CardView) -> tuple[str, list[dict[str, Any]]]:
    """Returns (fallback text, blocks as dicts). Pure: same view, same card."""
    incident = view.incident
    if incident.repository == ALERTMANAGER_REPOSITORY:  # an alert has its own layout (alert_card.py)
        actions = None if incident.status == IncidentStatus.RESOLVED else _actions(incident, view.playbook)
        pending = [(p.description, p.at) for p in view.pending]
        return render_alert_card(incident, view.playbook, pending=pending, actions=actions)
    blocks = _failure_card(view)[:MAX_BLOCKS]
    fallback = truncate(f"{incident.key} {identity(incident)}: {escape(incident.symptom)}", 3900)
    return fallback, blocks


def _header(incident: Incident) -> Block:
    resolved = incident.status == IncidentStatus.RESOLVED
    icon = "✅" if resolved else ("🟠" if incident.failure_class else "🔴")
    return header(truncate(f"{icon} {incident.key} · {identity(incident)}", 150, "…"))


def _failure_card(view: CardView) -> list[Block]:
    """Built for the first screen at 3 a.m. (incident.io: answer the majority's question first,
    details in one click; PagerDuty: the actions on the notification itself). Above the buttons:
    what failed and where, how bad, whose, in what state, and what the bot does next. Taxonomy,
    evidence, artifacts and the repro stay behind "Details", which redraws the card expanded."""
    incident, playbook = view.incident, view.playbook
    blocks: list[Block] = [_header(incident)]
    what = render_named(playbook, "card_summary", **summary_context(view)) + "\n" + _where_line(view)
    blocks.append(section(_md(truncate(what, SECTION_LIMIT)), accessory=_details_button(incident)))
    blocks.append(_state_block(view))
    if incident.status != IncidentStatus.RESOLVED:
        blocks.append(_actions(incident, playbook))
    if view.pending:
        pending = [f"⏰ {escape(p.description)} at {slack_date(p.at, '{time}')}" for p in view.pending]
        blocks.append(context([_md(truncate(c, SECTION_LIMIT)) for c in pending[:10]]))
    if incident.card_details:
        blocks.append(divider())
        blocks.extend(_details(view))
    return blocks


def _where_line(view: CardView) -> str:
    """The failing test, its suite and the run to open, and whether it is new."""
    incident, run = view.incident, view.run
    parts = [f"suite {code(incident.suite)}"]
    if identity(incident) != incident.test_identity:  # the header names the ids; this, the test
        parts.insert(0, code(incident.test_identity))
    if run is not None:
        parts.append(
            link(run.url, f"run {run.run_id}" + (f" (attempt {run.run_attempt})" if run.run_attempt > 1 else ""))
        )
    if incident.occurrence_count > 1:
        parts.append(f"seen {incident.occurrence_count}× since {slack_date(incident.first_seen)}")
    return " · ".join(parts)


def _state_lines(view: CardView) -> list[str]:
    """How bad and in what state; then whose: the class and its owner, or the suggestion."""
    incident, playbook = view.incident, view.playbook
    resolved = incident.status == IncidentStatus.RESOLVED
    status = "Resolved" if resolved else playbook.milestone_label(incident.milestone)
    assignee = f"<@{incident.assignee}>" if incident.assignee else "nobody yet"
    state = (
        f"*Severity:* {escape(playbook.severity_label(incident.severity))} · *Status:* {escape(status)} · "
        f"*Assignee:* {assignee}"
    )
    if incident.escalation_level:
        state += f" · *Escalated:* level {incident.escalation_level}"
    if incident.bead_id:  # the defect's record is what a responder opens next: first screen, not Details
        state += f" · *Bead:* {code(incident.bead_id)}"
    if incident.failure_class:
        route = playbook.class_route(incident.failure_class)
        whose = f"*Class:* {escape(playbook.class_label(incident.failure_class))}" + (
            " _(contract rule)_" if incident.class_source == "contract" else ""
        )
    elif incident.suggested_class:
        route = playbook.class_route(incident.suggested_class)
        reason = f" ({escape(incident.suggested_reason)})" if incident.suggested_reason else ""
        whose = f"*Suggested class:* {escape(playbook.class_label(incident.suggested_class))}{truncate(reason, 400)}"
        if incident.suggested_confidence is not None:  # the signals' suggestion (slackbot/suggest)
            whose += f" · {round(100 * incident.suggested_confidence)}% confident"
    else:
        route = None
        whose = "*Class:* unclassified — classify to route"
    owner = route.owner.mention() if route else playbook.owner_target(None).mention()
    if route is not None and route.secondary_owner is not None:
        owner += f" (secondary {route.secondary_owner.mention()})"
    lines = [state, f"{whose} · *Owner:* {owner}"]
    flags = _flag_lines(view, short=True)
    if flags:
        lines.append(" · ".join(flags))
    progress = validation_line(incident.validation)
    if progress:
        lines.append(progress)
    lease = lease_line(playbook, incident)
    if lease:
        lines.append(lease)
    suspects = suspect_summary(incident.suspects, details_shown=incident.card_details) if incident.suspects else None
    if suspects:  # what changed since green is the next question: its gist here, the list in Details
        lines.append(suspects)
    return lines


def validation_line(progress: dict[str, Any] | None) -> str | None:
    """Validation by evidence (slackbot/incidents/validation.py): the green runs counted so far
    and the run that last interrupted them; or the runs that completed it."""
    if not progress or progress.get("state") not in ("awaiting", "complete"):
        return None
    green, needed = progress.get("green") or [], int(progress.get("needed") or 0)
    runs = ", ".join(link(g.get("url"), _run_label(g)) for g in green)
    if progress["state"] == "complete":
        return f"🧪 *Validated* by {len(green)} green run{'s' if len(green) != 1 else ''}: {runs}"
    branch = f" on {code(progress['branch'])}" if progress.get("branch") else ""
    line = f"🧪 *Validation:* {len(green)}/{needed} green runs{branch}" + (f": {runs}" if runs else "")
    interrupted = progress.get("interrupted")
    if interrupted:
        line += (
            f" · interrupted by {link(interrupted.get('url'), _run_label(interrupted))} (failed), counted again since"
        )
    return line


def _run_label(seen: dict[str, Any]) -> str:
    attempt = int(seen.get("attempt") or 1)
    return f"run {seen.get('runId')}" + (f" (attempt {attempt})" if attempt > 1 else "")


def _state_block(view: CardView) -> Block:
    """The state lines; with a suggestion nobody has acted on, its one-click Confirm beside them.
    The block names the suggested class, so a click on a card drawn before the suggestion changed
    confirms what that card showed."""
    incident, playbook = view.incident, view.playbook
    text = _md(truncate("\n".join(_state_lines(view)), SECTION_LIMIT))
    if incident.suggested_class and not incident.failure_class and incident.status != IncidentStatus.RESOLVED:
        label = truncate(f"Confirm {playbook.class_label(incident.suggested_class)}", 75, "…")
        return section(
            text,
            block_id=f"{SUGGESTION_BLOCK}{incident.suggested_class}",
            accessory=button(label, ACTION_CONFIRM, str(incident.id), "primary"),
        )
    return section(text)


def _details_button(incident: Incident) -> dict[str, Any]:
    """Show and hide are two actions, so a stale or repeated click asks for the state it names."""
    if incident.card_details:
        return button("Hide details", ACTION_HIDE_DETAILS, str(incident.id))
    return button("Details", ACTION_DETAILS, str(incident.id))


def _details(view: CardView) -> list[Block]:
    incident, playbook = view.incident, view.playbook
    blocks: list[Block] = []
    flags = _flag_lines(view)
    if flags:
        blocks.append(_section("\n".join(flags)))
    blocks.append(section(fields=[_md(truncate(f, FIELD_LIMIT)) for f in _detail_fields(view)[:10]]))
    blocks.extend(_failure_sections(view))
    lines = [f"Test: {code(incident.test_identity)}", f"Playbook: {escape(playbook.title)}"]
    blocks.append(context([_md(truncate(c, SECTION_LIMIT)) for c in lines]))
    return blocks


def _detail_fields(view: CardView) -> list[str]:
    """What the first screen leaves out: history, deadlines, a bead still being filed, the tested organisation."""
    incident, playbook = view.incident, view.playbook
    fields = [
        f"*Occurrences:*\n{incident.occurrence_count} (first {slack_date(incident.first_seen)}, "
        f"last {slack_date(incident.last_seen)})"
    ]
    if incident.organization_under_test or playbook.policy.id_contract != "none":
        fields.append(f"*Organization under test:*\n{escape(incident.organization_under_test) or '—'}")
    if not incident.failure_class and incident.is_open and incident.classify_deadline is not None:
        fields.append(f"*Classify by:*\n{slack_date(incident.classify_deadline)}")
    if not incident.bead_id and incident.bead_state != BeadState.NONE:
        fields.append(f"*Defect bead:*\n{escape(incident.bead_state)}")
    if incident.suspects:
        fields.append("*Suspect changes:*\n" + "\n".join(suspect_lines(incident.suspects)))
    return fields


def summary_context(view: CardView) -> dict[str, Any]:
    """What the playbook's ``card_summary.j2`` may say (escaped unless built from trusted ids)."""
    incident, playbook = view.incident, view.playbook
    route = playbook.class_route(incident.owning_class)
    return {
        "incident": incident.key,
        "identity": identity(incident),
        "symptom": incident.symptom,
        "class_label": playbook.class_label(incident.failure_class),
        "suggested_label": playbook.class_label(incident.suggested_class) if incident.suggested_class else "",
        "severity": playbook.severity_label(incident.severity),
        "status": playbook.milestone_label(incident.milestone) if incident.status == "open" else "Resolved",
        "owner": Mrkdwn(playbook.owner_target(incident.owning_class).mention()),
        "required_action": route.required_action if route and route.required_action else "",
        "failing_command": view.command or "",
        "occurrences": incident.occurrence_count,
    }


def _flag_lines(view: CardView, *, short: bool = False) -> list[str]:
    """What is unusual about the failure; ``short`` names it for the first screen, the details explain."""
    incident, playbook = view.incident, view.playbook
    lines = []
    if incident.contract_violation:
        missing = "/".join(playbook.missing_ids(incident.scenario_id, incident.invariant_id)) or "ids"
        holder = playbook.class_label(playbook.missing_ids_class)
        lines.append(f"⚠️ *Contract violation:* no {missing} emitted — {escape(holder)} defect")
    if incident.documentation_gap:
        lines.append(
            "📘 *Documentation gap*"
            if short
            else f"📘 *Documentation gap:* {escape(incident.documentation_gap)} — update the "
            f"{escape(playbook.name)} playbook's runbook"
        )
    if incident.multi_prefix:
        lines.append(
            "🧩 *Multi-prefix run*"
            if short
            else "🧩 *Multi-prefix run:* failures span several scenario classes — likely harness or shared service"
        )
    for key in incident.flags:
        rule = playbook.flags.get(key)
        if rule is not None:
            described = f" — {escape(rule.description)}" if rule.description and not short else ""
            lines.append(f"🚩 *{escape(rule.label)}*{described}")
    return lines


def _failure_sections(view: CardView) -> list[Block]:
    incident, run, playbook = view.incident, view.run, view.playbook
    policy, taxonomy = playbook.policy, playbook.taxonomy
    blocks: list[Block] = []
    violation = incident.contract_violation
    if taxonomy.scenarios or incident.scenario_id or violation:
        entry = playbook.scenario_entry(incident.scenario_id)
        blocks.append(_section(_entry_text("Scenario", incident.scenario_id, entry, violation)))
    if taxonomy.invariants or incident.invariant_id or (violation and policy.id_contract == "both"):
        invariant = playbook.invariant_entry(incident.invariant_id)
        text = _entry_text("Invariant", incident.invariant_id, invariant, violation)
        if invariant is not None:
            text += "\n_Evidence to capture:_ " + "; ".join(escape(e) for e in invariant.evidence)
        blocks.append(_section(text))
    if view.command:
        text = f"*Failing command:* {code(view.command)}"
        if view.log.strip():
            text += "\n```" + escape(truncate(view.log.strip(), 1200, "…")).replace("```", "'''") + "```"
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
    if view.evidence or policy.id_contract != "none":
        blocks.append(_section(_evidence_text(view.evidence)))
    commands = []
    if policy.commands.artifact_download:
        download = fill_command(policy.commands.artifact_download, incident, run, view.command)
        commands.append(f"*Download artifacts:*\n```{escape(download)}```")
    repro = repro_for(playbook, incident)
    if repro:
        exports = [
            f"export {v.name}=" + (f"<{v.name.lower()} from your local secrets>" if v.secret else v.value)
            for v in policy.environment
        ]
        lines = [*exports, fill_command(repro, incident, run, view.command)]
        commands.append("*Reproduce locally:*\n```" + escape("\n".join(lines)) + "```")
    if commands:
        blocks.append(_section("\n".join(commands)))
    return blocks


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


def _options(pairs: list[tuple[str, str]]) -> list[Option]:
    return [Option(value=value, label=truncate(label, 75, "…")) for value, label in pairs][:100]


def _actions(incident: Incident, playbook: Playbook) -> Block:
    """The card's buttons and menus. The menus hold the playbook's options and depend on a few of
    the incident's fields only; drawing them through slack_sdk's models (which check the options)
    was half the cost of every card redraw, so each combination is drawn once, for every incident
    of the playbook that shares it. The buttons are the incident's own and cheap."""
    incident_id = incident.id
    value = str(incident_id)
    elements: list[dict[str, Any]] = []
    if not incident.assignee:
        elements.append(button("Acknowledge", ACTION_ACK, value, "primary"))
    elements.extend(
        json.loads(  # a fresh copy each time: callers may change it
            _menus(playbook, incident.failure_class, incident.severity, incident.milestone, tuple(incident.flags))
        )
    )
    level = escalate_value(incident_id or 0, incident.escalation_level)
    elements.append(button("Escalate", ACTION_ESCALATE, level, "danger", confirm=json.loads(_ESCALATE_CONFIRM)))
    if not incident.bead_id:
        elements.append(button("File bead", ACTION_BEAD, value))
    elements.append(button("Runbook", ACTION_RUNBOOK, value))
    return {"block_id": f"incident:{incident_id}", "elements": elements, "type": "actions"}


_ESCALATE_CONFIRM = json.dumps(
    ConfirmObject(
        title="Escalate now?",
        text="Pages the escalation target for this incident.",
        confirm="Escalate",
        deny="Cancel",
    ).to_dict()
)


@lru_cache(maxsize=2048)
def _menus(
    playbook: Playbook,
    failure_class: str | None,
    severity: str | None,
    milestone: str | None,
    flags: tuple[str, ...],
) -> str:
    class_options = _options([(k, r.label) for k, r in playbook.classes.items()])
    severity_options = _options(
        [(k, f"{k} — {r.label}" if r.label and r.label != k else k) for k, r in playbook.severities.items()]
    )
    current_class = next((o for o in class_options if o.value == failure_class), None)
    current_severity = next((o for o in severity_options if o.value == severity), None)
    elements = [
        StaticSelectElement(
            placeholder="Classify…", action_id=ACTION_CLASSIFY, options=class_options, initial_option=current_class
        ),
        StaticSelectElement(
            placeholder="Severity…",
            action_id=ACTION_SEVERITY,
            options=severity_options,
            initial_option=current_severity,
        ),
        _status_select(milestone, playbook),
    ]
    unset = [(k, r.label) for k, r in playbook.flags.items() if k not in flags]
    if unset:
        elements.append(StaticSelectElement(placeholder="Flag…", action_id=ACTION_FLAG, options=_options(unset)))
    return json.dumps([e.to_dict() for e in elements], ensure_ascii=False)


def _status_select(milestone: str | None, playbook: Playbook) -> StaticSelectElement:
    """The playbook's milestones, forward only: the ones after the current one. The resolving one
    is always offered; a milestone that asks for fields opens a modal for them."""
    options = _options([(m.key, m.label) for m in playbook.milestones_after(milestone)])
    return StaticSelectElement(placeholder="Status…", action_id=ACTION_STATUS, options=options)
