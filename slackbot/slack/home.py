"""App Home: what needs me, what is overdue, what is open — a pure function of the incidents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Section:
    """One list of App Home: its first lines (oldest first) and how many there are in all."""

    incidents: Sequence[Incident]
    total: int


@dataclass(frozen=True)
class HomeData:
    """What App Home shows, bounded whatever the history holds: each list's first ``MAX_LINES``
    incidents and its count, and the open incidents counted per (playbook, class)."""

    mine: Section
    overdue: Section
    open: Section
    open_by_class: Mapping[tuple[str, str | None], int]


def _list(title: str, section: Section, playbooks: Playbooks) -> list[Any]:
    if not section.total:
        return [SectionBlock(text=MarkdownTextObject(text=f"*{title}:* none"))]
    lines = [incident_line(i, playbooks.get(i.playbook)) for i in section.incidents[:MAX_LINES]]
    if section.total > MAX_LINES:
        lines.append(f"…and {section.total - MAX_LINES} more (`/triage list`)")
    return [
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*{title} ({section.total}):*\n" + "\n".join(lines), 3000)))
    ]


def home_data(user_id: str, open_incidents: Sequence[Incident], now: datetime) -> HomeData:
    """The same lists from incidents already in memory (``slackbot.reads.home`` asks the database)."""
    oldest_first = sorted(open_incidents, key=lambda i: (i.created_at, i.id or 0))
    mine = [i for i in oldest_first if i.assignee == user_id]
    overdue = [
        i
        for i in oldest_first
        if not i.failure_class and i.classify_deadline is not None and as_utc(i.classify_deadline) <= now
    ]
    counts = Counter((i.playbook, i.failure_class) for i in oldest_first)
    return HomeData(
        Section(mine[:MAX_LINES], len(mine)),
        Section(overdue[:MAX_LINES], len(overdue)),
        Section(oldest_first[:MAX_LINES], len(oldest_first)),
        counts,
    )


def render_home_view(data: HomeData, playbooks: Playbooks) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    for (playbook, failure_class), n in data.open_by_class.items():
        counts[playbooks.get(playbook).class_label(failure_class)] += n
    summary = " · ".join(f"{label}: {n}" for label, n in sorted(counts.items())) or "no open incidents"
    blocks: list[Any] = [
        HeaderBlock(text="Integration failure triage"),
        ContextBlock(elements=[MarkdownTextObject(text=f"Open by class — {summary}")]),
        DividerBlock(),
        *_list("Assigned to you", data.mine, playbooks),
        *_list("Overdue for classification", data.overdue, playbooks),
        *_list("Open, oldest first", data.open, playbooks),
        ContextBlock(
            elements=[MarkdownTextObject(text="`/triage help` for commands · cards live in the suite channels")]
        ),
    ]
    return View(type="home", blocks=blocks).to_dict()
