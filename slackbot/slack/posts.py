"""Thread posts rendered from the Jinja2 templates in ``runbooks/templates/slack/``.

The wording of status posts is runbook content, so it lives with the runbook. Every value is
escaped on output unless it is ``Mrkdwn`` (mentions, links and dates we built from trusted ids),
so a template author cannot forget to escape a test name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from slackbot.config.models import FailureClass, Runbook, Severity
from slackbot.db.models import Incident, Run
from slackbot.slack.card import MILESTONE_LABELS, class_label
from slackbot.slack.escape import escape, link, slack_date


class Mrkdwn(str):
    """Text that is already safe Slack markup."""


def _finalize(value: Any) -> Any:
    if isinstance(value, Mrkdwn):
        return value
    if isinstance(value, str):
        return escape(value)
    return value


def _mention(user: str | None) -> Mrkdwn:
    if user and user[:1] in ("U", "W") and user.isalnum():
        return Mrkdwn(f"<@{user}>")
    return Mrkdwn(escape(user or "someone"))


class PostRenderer:
    def __init__(self, runbook: Runbook, templates_dir: Path) -> None:
        self.runbook = runbook
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir / "slack")),
            undefined=StrictUndefined,
            finalize=_finalize,
            autoescape=False,  # HTML escaping is wrong for Slack; _finalize does Slack's three characters
            keep_trailing_newline=False,
            trim_blocks=True,
        )

    def render(self, payload: dict[str, Any], incident: Incident, run: Run | None) -> str:
        name = payload["template"]
        context = self._context(name, payload, incident, run)
        return self.env.get_template(f"{name}.j2").render(**context).strip()

    def render_named(self, name: str, **context: Any) -> str:
        return self.env.get_template(f"{name}.j2").render(**context).strip()

    def _context(self, name: str, payload: dict[str, Any], incident: Incident, run: Run | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {"actor": _mention(payload.get("actor")), "incident": incident.key}
        if name == "classified":
            chosen = FailureClass(payload["class"])
            route = self.runbook.routing.route(chosen)
            ctx |= {
                "label": route.label,
                "previous": payload.get("previous"),
                "previous_label": class_label(self.runbook, payload.get("previous")),
                "owner": Mrkdwn(route.owner.mention()),
                "oncall": Mrkdwn(f"<@{route.owner.oncall_user}>") if route.owner.oncall_user else None,
                "checklist": route.first_response,
            }
        elif name == "occurrence":
            label = f"{run.repository} #{run.run_id} attempt {run.run_attempt}" if run else "a later run"
            ctx |= {
                "run_link": Mrkdwn(link(run.url if run else None, label)),
                "added": payload.get("added", 1),
                "total": incident.occurrence_count,
                "last_seen": Mrkdwn(slack_date(incident.last_seen)),
            }
        elif name == "bead_filed":
            bead = str(payload.get("bead", ""))
            ctx["bead_link"] = Mrkdwn(link(payload.get("url"), bead) if payload.get("url") else f"`{escape(bead)}`")
        elif name == "bead_failed":
            ctx["error"] = str(payload.get("error", ""))[:1500]
        elif name == "assigned":
            ctx["assignee"] = _mention(payload.get("assignee"))
        elif name == "severity":
            severity = Severity(payload["severity"])
            ctx |= {
                "severity": severity.value,
                "previous": payload.get("previous", ""),
                "definition": self.runbook.policy.severities[severity].definition,
            }
        elif name == "paged":
            from slackbot.services.paging import resolve_target

            targets = [resolve_target(self.runbook, t["role"], t.get("class")) for t in payload.get("targets", [])]
            minutes = int(self.runbook.policy.classify_within.total_seconds() // 60)
            ctx |= {
                "reason": payload.get("reason", "manual"),
                "level": payload.get("level", 0),
                "note": payload.get("note", ""),
                "classify_within": f"{minutes} min",
                "mentions": Mrkdwn(", ".join(t.target.mention() for t in targets) or "nobody configured"),
            }
        elif name == "reminder":
            from slackbot.services.reminders import who_to_remind

            ctx |= {
                "asked": Mrkdwn(who_to_remind(self.runbook, incident)),
                "quiet": str(payload.get("quiet", "")),
                "status": MILESTONE_LABELS.get(incident.milestone or "", "Open"),
            }
        elif name in ("escalated", "milestone", "resolved"):
            ctx["note"] = payload.get("note", "")
            if name == "milestone":
                ctx["milestone_label"] = MILESTONE_LABELS.get(payload["milestone"], payload["milestone"])
        return ctx
