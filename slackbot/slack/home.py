"""App Home: what needs me, what is overdue, what is open — a pure function of the incidents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from slackbot.clock import as_utc
from slackbot.config import Playbooks
from slackbot.db.models import Incident
from slackbot.slack.escape import truncate
from slackbot.slack.replies import incident_line

MAX_LINES = 15


def _list(title: str, incidents: Sequence[Incident], playbooks: Playbooks) -> list[Any]:
    if not incidents:
        return [SectionBlock(text=MarkdownTextObject(text=f"*{title}:* none"))]
    lines = [incident_line(i, playbooks.get(i.playbook)) for i in incidents[:MAX_LINES]]
    if len(incidents) > MAX_LINES:
        lines.append(f"…and {len(incidents) - MAX_LINES} more (`/triage list`)")
    return [
        SectionBlock(
            text=MarkdownTextObject(text=truncate(f"*{title} ({len(incidents)}):*\n" + "\n".join(lines), 3000))
        )
    ]


def render_home(
    user_id: str, open_incidents: Sequence[Incident], playbooks: Playbooks, now: datetime
) -> dict[str, Any]:
    oldest_first = sorted(open_incidents, key=lambda i: (i.created_at, i.id or 0))
    mine = [i for i in oldest_first if i.assignee == user_id]
    overdue = [
        i
        for i in oldest_first
        if not i.failure_class and i.classify_deadline is not None and as_utc(i.classify_deadline) <= now
    ]
    counts = Counter(playbooks.get(i.playbook).class_label(i.failure_class) for i in oldest_first)
    summary = " · ".join(f"{label}: {n}" for label, n in sorted(counts.items())) or "no open incidents"
    blocks: list[Any] = [
        HeaderBlock(text="Integration failure triage"),
        ContextBlock(elements=[MarkdownTextObject(text=f"Open by class — {summary}")]),
        DividerBlock(),
        *_list("Assigned to you", mine, playbooks),
        *_list("Overdue for classification", overdue, playbooks),
        *_list("Open, oldest first", oldest_first, playbooks),
        ContextBlock(
            elements=[MarkdownTextObject(text="`/triage help` for commands · cards live in the suite channels")]
        ),
    ]
    return View(type="home", blocks=blocks).to_dict()
