"""A page and the effects it consists of.

A page is (seed 001 / DESIGN.md): the targets mentioned in the incident thread, a DM to the on-call
person, and a PagerDuty Events v2 trigger when the routing entry has a routing key. Each part is
its own outbox row so each is retried on its own; the keys make a page for the same reason and
step impossible to queue twice. Who a role means is the playbook's routing
(``Playbook.target``); routing keys are looked up again at delivery time, so no secret is stored.
"""

from __future__ import annotations

from slackbot.config import PageTarget, Playbook
from slackbot.config.targets import Role
from slackbot.db.models import Incident
from slackbot.domain.effects import EffectKind, Event, Key, Lane
from slackbot.incidents.effects import Effects


def targets_for(playbook: Playbook, incident: Incident, roles: list[Role]) -> list[PageTarget]:
    return playbook.targets(roles, incident.owning_class)


def enqueue_page(
    effects: Effects,
    incident: Incident,
    targets: list[PageTarget],
    *,
    reason: str,
    step: str,
    note: str = "",
    actor: str | None = None,
) -> None:
    """``step`` makes the page unique (escalation level, manual revision, …)."""
    assert incident.id is not None
    iid = incident.id
    base = Key.page(iid, reason, step)
    effects.enqueue(
        EffectKind.THREAD_POST,
        f"{base}:thread",
        {
            "template": "paged",
            "reason": reason,
            "level": incident.escalation_level,
            "note": note,
            "actor": actor,
            "targets": [{"role": t.role, "class": t.failure_class} for t in targets],
        },
        incident_id=iid,
        lane=incident.channel,
    )
    for page_target in targets:
        ref = {"role": page_target.role, "class": page_target.failure_class, "reason": reason, "step": step}
        user = page_target.dm_user
        if user:
            effects.enqueue(
                EffectKind.DM,
                f"{base}:dm:{user}",
                {**ref, "user": user, "note": note},
                incident_id=iid,
                lane=Lane.dm(user),
            )
        if page_target.target.pagerduty_routing_key:
            effects.enqueue(
                EffectKind.PAGERDUTY,
                f"{base}:pd:{page_target.role}:{page_target.failure_class}",
                {**ref, "action": "trigger"},
                incident_id=iid,
                lane=Lane.PAGERDUTY,
            )
    effects.record(
        Event.PAGED,
        f"Paging {', '.join(t.target.describe() for t in targets) or 'nobody (no target configured)'} ({reason})",
        incident_id=iid,
        source="rule" if reason != "manual" else "command",
        data={"reason": reason, "step": step, "targets": [t.role for t in targets]},
    )
