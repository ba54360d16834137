"""The card of an operational alert (Alertmanager): what fired, on what, how bad, what to do.

An alert is not a failed test, so nothing of the CI card applies: no scenario or invariant ids, no
run, no artifact download, no repro. What an on-call responder needs instead, in the order they
need it: the alert's name and state, its summary and value, its labels, the runbook's steps, and
the links they act on (silence it in Alertmanager, open the dashboard, the graph, the runbook).

Pure: a function of the incident, its playbook, what the bot will do next and the card's actions
(``card.render_card`` passes them; this module imports nothing of it). The alert's fields are
``Incident.alert``, the snapshot the Alertmanager source keeps of the latest notification; an
incident without one (opened before it was kept) shows what the incident row has. Every value
from the alert is untrusted and escaped; links are made only of plain http(s) URLs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slackbot.config import Playbook
from slackbot.db.models import Incident
from slackbot.domain.states import BeadState, IncidentStatus
from slackbot.slack.blocks import Block, context, divider, header, md, section
from slackbot.slack.escape import code, escape, link, slack_date, truncate

SECTION_LIMIT = 3000  # Slack's limits, as in card.py
MAX_BLOCKS = 50
STEP_LIMIT = 300  # one runbook step on the card; the thread's checklist has it whole


def _md(text: str) -> dict[str, Any]:
    return md(text or " ")


def _section(text: str) -> Block:
    return section(_md(truncate(text, SECTION_LIMIT)))


def silence_url(external_url: str, labels: dict[str, str]) -> str:
    """Alertmanager's "new silence" form, prefilled with matchers for the alert's labels (its UI
    reads ``#/silences/new?filter={name="value",…}``)."""
    if not external_url or not labels:
        return ""
    matchers = ",".join(f'{name}="{_matcher_value(value)}"' for name, value in sorted(labels.items()))
    return f"{external_url.rstrip('/')}/#/silences/new?filter={urllib.parse.quote('{' + matchers + '}', safe='')}"


def _matcher_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_alert_card(
    incident: Incident,
    playbook: Playbook,
    *,
    pending: Sequence[tuple[str, datetime]] = (),
    actions: Block | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Returns (fallback text, blocks as dicts), like ``render_card``. ``pending``: what the bot
    will do unless someone acts first, and when; ``actions``: the card's buttons (None: none)."""
    alert: dict[str, Any] = incident.alert or {}
    name = str(alert.get("alertname") or incident.scenario_id or "alert")
    resolved = incident.status == IncidentStatus.RESOLVED
    cleared = alert.get("status") == "resolved"
    icon = "✅" if resolved else ("🟢" if cleared else "🔥")
    blocks: list[Block] = [header(truncate(f"{icon} {incident.key} · {name}", 150, "…"))]

    summary = str(alert.get("summary") or incident.symptom or "")
    lines = [f"*{escape(name)}*" + (f" — {escape(summary)}" if summary else "")]
    lines.append(_state_line(alert, incident.first_seen, resolved))
    value = str(alert.get("value") or "")
    description = str(alert.get("description") or "")
    if value:
        lines.append(f"*Value:* {code(value)}")
    if description and description != summary:
        lines.append(f"*Description:* {escape(description)}")
    blocks.append(_section("\n".join(lines)))

    blocks.append(_section("\n".join(_responder_lines(incident, playbook))))

    labels: dict[str, str] = alert.get("labels") or {"alertname": name, **incident.key_entity_ids}
    # "Key entity ids" is what the operations runbook's steps call the labels
    blocks.append(
        _section("*Labels (key entity ids):* " + " ".join(code(f"{k}={v}") for k, v in sorted(labels.items())))
    )
    if alert.get("alerts") and int(alert.get("firing") or 0) > 1:
        blocks.append(_section(f"*Firing ({alert['firing']}):* " + ", ".join(code(a) for a in alert["alerts"])))

    blocks.append(_section(_runbook_text(incident, playbook, name)))

    links = _links(alert, labels)
    if links:
        blocks.append(_section(" · ".join(links)))

    notes = [f"Playbook: {escape(playbook.title)}"]
    notes += [f"⏰ {escape(what)} at {slack_date(at, '{time}')}" for what, at in pending]
    blocks.append(context([_md(truncate(c, SECTION_LIMIT)) for c in notes[:10]]))
    if actions is not None and not resolved:
        blocks.append(divider())
        blocks.append(actions)
    fallback = truncate(f"{incident.key} {name}: {escape(summary)}", 3900)
    return fallback, blocks[:MAX_BLOCKS]


def _state_line(alert: dict[str, Any], first_seen: datetime, resolved: bool) -> str:
    cleared_at = _when(alert.get("resolved_at"))
    if alert.get("status") == "resolved":
        when = f" at {slack_date(cleared_at)}" if cleared_at else ""
        still = "" if resolved else " — the incident stays open until the playbook's last step"
        return f"🟢 *Alert resolved* by Alertmanager{when}{still}"
    firing = int(alert.get("firing") or 1)
    return f"🔥 *Firing* since {slack_date(first_seen)}" + (f" ({firing} alerts)" if firing > 1 else "")


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _responder_lines(incident: Incident, playbook: Playbook) -> list[str]:
    """Severity, state and whose it is; the flags a responder set or the bot found."""
    status = "Resolved" if incident.status == IncidentStatus.RESOLVED else playbook.milestone_label(incident.milestone)
    assignee = f"<@{incident.assignee}>" if incident.assignee else "nobody yet"
    route = playbook.class_route(incident.failure_class)
    owner = route.owner.mention() if route else playbook.owner_target(None).mention()
    if route is not None and route.secondary_owner is not None:
        owner += f" (secondary {route.secondary_owner.mention()})"
    failure_mode = escape(playbook.class_label(incident.failure_class)) if route else "unclassified"
    lines = [
        f"*Severity:* {escape(playbook.severity_label(incident.severity))} · *Status:* {escape(status)} · "
        f"*Assignee:* {assignee}",
        f"*Failure mode:* {failure_mode} · *Owner:* {owner}",
    ]
    extra = []
    if incident.occurrence_count > 1:
        extra.append(f"*Alerts seen:* {incident.occurrence_count}")
    if incident.escalation_level:
        extra.append(f"*Escalated:* level {incident.escalation_level}")
    if incident.bead_id or incident.bead_state != BeadState.NONE:
        extra.append("*Bead:* " + (code(incident.bead_id) if incident.bead_id else escape(incident.bead_state)))
    if extra:
        lines.append(" · ".join(extra))
    for key in incident.flags:
        rule = playbook.flags.get(key)
        if rule is not None:
            lines.append(f"🚩 *{escape(rule.label)}*")
    return lines


def _runbook_text(incident: Incident, playbook: Playbook, name: str) -> str:
    """The alert's runbook from the playbook: its detection and steps, or the gap, said plainly."""
    rule = playbook.alert(name)
    if rule is None:
        gap = incident.documentation_gap or f"alert {name} has no runbook in the {playbook.name} playbook"
        return (
            f"📘 *No runbook* for {code(name)} in the {escape(playbook.name)} playbook: escalate if unsure, "
            f"and add one (`alerts:` in its policy.yml) so the next responder does not improvise.\n"
            f"*Documentation gap:* {escape(gap)}"
        )
    text = f"*Runbook* — _detected by_ {escape(rule.detection)}"
    if rule.steps:
        steps = [f"*{escape(s.phase or '')}:* {escape(s.text)}" if s.phase else escape(s.text) for s in rule.steps]
    else:  # the failure mode's checklist is the runbook (posted in the thread to click through)
        route = playbook.class_route(rule.failure_class)
        steps = [escape(s) for s in route.first_response] if route else []
    if steps:
        text += "\n" + "\n".join(f"{n}. {truncate(s, STEP_LIMIT, '…')}" for n, s in enumerate(steps, 1))
        text += "\n_Mark each step in the checklist in the thread._"
    return text


def _links(alert: dict[str, Any], labels: dict[str, str]) -> list[str]:
    external = str(alert.get("external_url") or "")
    found = [
        ("🔕 Silence", silence_url(external, labels)),
        ("📊 Dashboard", str(alert.get("dashboard_url") or "")),
        ("📈 Graph", str(alert.get("generator_url") or "")),
        ("📖 Runbook", str(alert.get("runbook_url") or "")),
        ("Alertmanager", external),
    ]
    return [link(url, label) for label, url in found if url]
