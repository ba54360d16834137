"""Thread posts rendered from the playbook's Jinja2 templates (``templates/slack/``).

The wording of status posts is runbook content, so it lives with the runbook (a playbook
overrides the shared templates it words differently). Every value is escaped on output unless it
is ``Mrkdwn`` (mentions, links and dates we built from trusted ids), so a template author cannot
forget to escape a test name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slackbot.config import Playbook
from slackbot.config.durations import human_duration
from slackbot.db.models import Incident, Run
from slackbot.documents import templates
from slackbot.slack.escape import escape, link, slack_date


class Mrkdwn(str):
    """Text that is already safe Slack markup."""


def _finalize(value: Any) -> Any:
    if isinstance(value, Mrkdwn):
        return value
    if isinstance(value, str):
        return escape(value)
    return value


def mention(user: str | None) -> Mrkdwn:
    if user and user[:1] in ("U", "W") and user.isalnum():
        return Mrkdwn(f"<@{user}>")
    return Mrkdwn(escape(user or "someone"))


def render_named(playbook: Playbook, name: str, /, **context: Any) -> str:
    return templates.slack(playbook, _finalize).get_template(f"{name}.j2").render(**context).strip()


def render_post(playbook: Playbook, payload: dict[str, Any], incident: Incident, run: Run | None) -> str:
    name = str(payload["template"])
    return render_named(playbook, name, **post_context(playbook, name, payload, incident, run))


def _fields(playbook: Playbook, key: str, fields: dict[str, str]) -> list[dict[str, str]]:
    milestone = playbook.milestone(key)
    labels = {f.key: f.label for f in milestone.asks} if milestone else {}
    return [{"label": labels.get(k, k.replace("_", " ")), "value": v} for k, v in fields.items() if k != "root_cause"]


def post_context(
    playbook: Playbook, name: str, payload: dict[str, Any], incident: Incident, run: Run | None
) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "actor": mention(payload.get("actor")),
        "incident": incident.key,
        "playbook": playbook.title,
    }
    if name == "classified":
        route = playbook.classes[payload["class"]]
        ctx |= {
            "label": route.label,
            # The classifications this one post reports, oldest first: more than one when the
            # ones before were replaced before their post went out ("classified X, then Y").
            "sequence": _sequence(playbook, payload),
            "previous": payload.get("previous"),
            "previous_label": playbook.class_label(payload.get("previous")),
            "owner": Mrkdwn(route.owner.mention()),
            "oncall": Mrkdwn(f"<@{route.owner.oncall_user}>") if route.owner.oncall_user else None,
            "secondary": Mrkdwn(route.secondary_owner.mention()) if route.secondary_owner else None,
            "required_action": route.required_action or "",
            "checklist": route.first_response,
        }
    elif name == "occurrence":
        ctx |= {
            "run_link": Mrkdwn(_occurrence_run(payload, run)),
            "added": payload.get("added", 1),
            "total": payload.get("total") or incident.occurrence_count,
            "last_seen": Mrkdwn(slack_date(_when(payload.get("last_seen")) or incident.last_seen)),
        }
    elif name == "bead_filed":
        bead = str(payload.get("bead", ""))
        ctx["bead_link"] = Mrkdwn(link(payload.get("url"), bead) if payload.get("url") else f"`{escape(bead)}`")
    elif name == "bead_failed":
        ctx["error"] = str(payload.get("error", ""))[:1500]
    elif name == "assigned":
        ctx["assignee"] = mention(payload.get("assignee"))
    elif name == "severity":
        severity = str(payload["severity"])
        ctx |= {
            "severity": playbook.severity_label(severity),
            "previous": playbook.severity_label(payload.get("previous")),
            "definition": playbook.severity_rule(severity).definition,
        }
    elif name == "flag":
        rule = playbook.flags.get(str(payload["flag"]))
        ctx |= {
            "flag": rule.label if rule else str(payload["flag"]),
            "on": bool(payload.get("on", True)),
            "description": rule.description if rule else "",
        }
    elif name == "paged":
        found = [playbook.target(t["role"], t.get("class")) for t in payload.get("targets", [])]
        within = playbook.policy.classify_within
        ctx |= {
            "reason": payload.get("reason", "manual"),
            "level": payload.get("level", 0),
            "note": payload.get("note", ""),
            "classify_within": human_duration(within) if within else "",
            "flake_policy": playbook.policy.flake is not None,
            "mentions": Mrkdwn(", ".join(t.target.mention() for t in found if t is not None) or "nobody configured"),
        }
    elif name == "reminder":
        asked = (
            f"<@{incident.assignee}>" if incident.assignee else playbook.owner_target(incident.owning_class).mention()
        )
        ctx |= {
            "asked": Mrkdwn(asked),
            "quiet": str(payload.get("quiet", "")),
            "status": playbook.milestone_label(incident.milestone),
        }
    elif name in ("escalated", "milestone", "resolved"):
        ctx["note"] = payload.get("note", "")
        ctx["fields"] = _fields(
            playbook, str(payload.get("milestone", playbook.policy.resolving.key)), payload.get("fields") or {}
        )
        if name == "milestone":
            ctx["milestone_label"] = playbook.milestone_label(payload["milestone"])
    return ctx


def _sequence(playbook: Playbook, payload: dict[str, Any]) -> list[dict[str, Any]]:
    steps = payload.get("sequence")
    if not isinstance(steps, list) or not steps:
        steps = [{"class": payload["class"], "actor": payload.get("actor")}]
    return [
        {"label": "", "actor": None, "skipped": int(step["skipped"] or 0)}
        if "skipped" in step
        else {"label": playbook.class_label(step.get("class")), "actor": mention(step.get("actor")), "skipped": 0}
        for step in steps
        if isinstance(step, dict)
    ]


def _occurrence_run(payload: dict[str, Any], latest: Run | None) -> str:
    """The run a recurrence was seen in, as the payload recorded it. A post queued before
    payloads carried it names the incident's latest run only when that is the run it points at."""
    seen = payload.get("run")
    if isinstance(seen, dict):
        label = f"{seen.get('repository')} #{seen.get('run_id')} attempt {seen.get('attempt')}"
        return link(seen.get("url"), label)
    if latest is not None and latest.id == payload.get("run_pk"):
        return link(latest.url, f"{latest.repository} #{latest.run_id} attempt {latest.run_attempt}")
    return escape("a later run")


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def note_context(playbook: Playbook, payload: dict[str, Any], incident: Incident) -> dict[str, Any]:
    """An integration's note in an incident thread (alert runbook, alert update, validation)."""
    context: dict[str, Any] = {**payload, "incident": incident.key, "playbook": playbook.title}
    context.pop("template", None)
    context["run_link"] = Mrkdwn(link(payload.get("url"), str(payload["label"]))) if payload.get("label") else ""
    # Always set, empty when the alert has no runbook_url: templates test it, and an undefined
    # variable would dead-letter the note (a strict environment refuses to guess).
    url = str(payload.get("runbook_url") or "")
    context["runbook_link"] = Mrkdwn(link(url, "runbook")) if url else ""
    return context
