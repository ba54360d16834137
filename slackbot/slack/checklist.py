"""The runbook checklist message: a pure function of the steps and their latest results.

Like the card, every click redraws the whole checklist from the database; nothing patches
blocks. Each step is a section (its text, and who last marked it what, and when) followed by a
compact actions block with Done / Failed / Skip. Two blocks per step plus an intro keeps a class
checklist (5-6 steps) and the response steps (11) in one message under Slack's 50-block limit;
a longer runbook continues in further messages, each under the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from slackbot.config import Playbook
from slackbot.config.targets import Role
from slackbot.db.models import Incident, RunbookExecution
from slackbot.domain.checklists import Step, StepRef, runbook_title, steps_for
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY
from slackbot.slack.escape import escape, slack_date, truncate

ACTION_PREFIX = "checklist_step"
MAX_BLOCKS = 50
SECTION_LIMIT = 3000
ICONS = {"done": "✅ Done", "failed": "❌ Failed", "skipped": "⏭️ Skipped"}
BUTTONS = (("done", "Done", "primary"), ("failed", "Failed", "danger"), ("skipped", "Skip", None))


@dataclass(frozen=True)
class ChecklistView:
    playbook: Playbook
    incident: Incident
    key: str  # the checklist's identity, carried by its buttons
    failure_class: str  # the class it was posted for
    results: dict[tuple[str, int, int], RunbookExecution]
    newest: str | None = None  # the incident's newest checklist; None when not known (a preview)

    @property
    def superseded(self) -> bool:
        """Reclassified since: the checklist stays as a record, without buttons. Only the newest
        checklist is live, so going back to an earlier class does not revive its old checklist."""
        stale = self.newest is not None and self.newest != self.key
        return stale or self.incident.failure_class != self.failure_class


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text or " ", verbatim=True)


def action_id(step: Step, result: str) -> str:
    """Unique within the message (Slack requires it); listeners match the prefix."""
    return f"{ACTION_PREFIX}:{step.runbook}:{step.index}:{result}"


def _step_text(title: str, step: Step, latest: RunbookExecution | None) -> str:
    """The step, then who last marked it what and when; a long step is cut, never its status."""
    label = f"*{step.index}.*" + (f" _{step.phase}_ —" if step.phase else "")
    status = ""
    if latest is not None:
        status = f"\n{ICONS.get(latest.result, escape(latest.result))} by <@{latest.actor}> · {slack_date(latest.at)}"
    return truncate(f"{title}{label} {escape(step.text)}", SECTION_LIMIT - len(status)) + status


def _buttons(view: ChecklistView, step: Step, confirm_text: str) -> ActionsBlock:
    incident_id = view.incident.id or 0
    elements: list[Any] = []
    for result, text, style in BUTTONS:
        ref = StepRef(incident_id, view.key, view.failure_class, step.runbook, step.index, step.version, result)
        confirm = None
        if result == "failed":
            confirm = ConfirmObject(
                title="Mark this step failed?",
                text=truncate(confirm_text, 300),
                confirm="Failed: escalate",
                deny="Cancel",
            )
        elements.append(
            ButtonElement(
                text=text, action_id=action_id(step, result), value=ref.encode(), style=style, confirm=confirm
            )
        )
    return ActionsBlock(block_id=f"checklist:{step.runbook}:{step.index}", elements=elements)


def render_checklist(view: ChecklistView, paged_roles: Sequence[Role]) -> list[tuple[str, list[dict[str, Any]]]]:
    """One (fallback text, blocks) per message; usually exactly one. ``paged_roles`` are whom a
    failed step pages (the core decides; the checklist only says so)."""
    incident, playbook = view.incident, view.playbook
    alertname = incident.scenario_id if incident.repository == ALERTMANAGER_REPOSITORY else None
    steps = steps_for(playbook, view.failure_class, alertname)
    label = playbook.class_label(view.failure_class)
    targets = playbook.targets(paged_roles, incident.owning_class)
    paged = ", ".join(t.target.describe() for t in targets) or "nobody (no escalation target configured)"
    confirm_text = f"A failed step escalates at once: it pages {paged} and says so in this thread."
    done = sum(1 for s in steps if (r := view.results.get(s.key)) is not None and r.result in ("done", "skipped"))
    intro = (
        f"📋 *Runbook checklist for {incident.key} — {escape(label)}* ({done}/{len(steps)} steps done or skipped)\n"
        "Mark each step *Done*, *Failed* or *Skip*: who, what and when go to the audit trail. "
        "A *Failed* step escalates."
    )
    if view.superseded:
        intro = (
            f"📋 *Runbook checklist for {incident.key} — {escape(label)}* (superseded)\n"
            f"{incident.key} was reclassified as *{escape(playbook.class_label(incident.failure_class))}*: "
            "use the newer checklist below. The results recorded here stay in the audit trail."
        )
    versions = f"{playbook.name}: routing.yml v{playbook.routing.version} · policy.yml v{playbook.policy.version}"
    # Two blocks per step even without buttons (superseded), so a redraw has as many messages as
    # were posted and every posted message is updated.
    per_step = 2
    messages: list[tuple[str, list[dict[str, Any]]]] = []
    blocks: list[Block] = []
    current: str | None = None
    used = 0
    for step in steps:
        if not blocks or used + per_step + 1 > MAX_BLOCKS:  # + 1: the closing context
            if blocks:
                messages.append(_finish(incident, label, blocks, versions, len(messages)))
            part = len(messages) + 1
            blocks = [SectionBlock(text=_md(intro if part == 1 else f"{intro}\n_(continued, part {part})_"))]
            used = 1
            current = None
        title_line = ""
        if step.runbook != current:  # the runbook's title rides on its first step: no extra block
            current = step.runbook
            title_line = f"*{escape(runbook_title(playbook, step.runbook))}*\n"
        blocks.append(SectionBlock(text=_md(_step_text(title_line, step, view.results.get(step.key)))))
        if not view.superseded:
            blocks.append(_buttons(view, step, confirm_text))
        used += per_step
    messages.append(_finish(incident, label, blocks, versions, len(messages)))
    return messages


def _finish(
    incident: Incident, label: str, blocks: list[Block], versions: str, index: int
) -> tuple[str, list[dict[str, Any]]]:
    blocks.append(ContextBlock(elements=[_md(f"Runbook versions: {versions}")]))
    fallback = f"Runbook checklist for {incident.key} — {escape(label)}" + (f" (part {index + 1})" if index else "")
    return fallback, [b.to_dict() for b in blocks]
