"""Paging: who gets paged for an incident, and the effects a page consists of.

A page is (seed 001 / DESIGN.md): the target mentioned in the incident thread, a DM to the on-call
person, and a PagerDuty Events v2 trigger when the routing entry has a routing key. Each part is
its own outbox row so each is retried on its own; the dedup keys make a page for the same reason
and level impossible to enqueue twice. Routing keys are looked up at delivery time from the
runbook (by role and class), so no secret is stored in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from slackbot.config.models import FailureClass, Owner, Runbook, Target
from slackbot.db.models import Incident
from slackbot.services.effects import Effects

ROLES = ("owner", "escalation", "fallback", "release_maintainer")


@dataclass(frozen=True)
class PageTarget:
    role: str
    failure_class: str | None  # which routing entry the role was taken from (None: release maintainer)
    target: Target

    @property
    def dm_user(self) -> str | None:
        if isinstance(self.target, Owner) and self.target.oncall_user:
            return self.target.oncall_user
        return self.target.user


def owning_class(incident: Incident) -> str | None:
    return incident.failure_class or incident.suggested_class


def resolve_target(runbook: Runbook, role: str, failure_class: str | None) -> PageTarget:
    routing = runbook.routing
    if role == "release_maintainer" or failure_class is None:
        # Nobody owns an unrouted failure yet: the release maintainer is the catch-all (seed 003).
        return PageTarget("release_maintainer", None, routing.release_maintainer)
    route = routing.route(FailureClass(failure_class))
    target: Target = {"owner": route.owner, "escalation": route.escalation, "fallback": route.fallback}[role]
    return PageTarget(role, failure_class, target)


def targets_for(runbook: Runbook, incident: Incident, roles: list[str]) -> list[PageTarget]:
    seen: set[str] = set()
    out = []
    for role in roles:
        page_target = resolve_target(runbook, role, owning_class(incident))
        key = page_target.target.mention()
        if key not in seen:
            seen.add(key)
            out.append(page_target)
    return out


def enqueue_page(
    effects: Effects,
    runbook: Runbook,
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
    base = f"page:{iid}:{reason}:{step}"
    effects.enqueue(
        "thread_post",
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
                "dm",
                f"{base}:dm:{user}",
                {**ref, "user": user, "note": note},
                incident_id=iid,
                lane=f"dm:{user}",
            )
        if page_target.target.pagerduty_routing_key:
            effects.enqueue(
                "pagerduty",
                f"{base}:pd:{page_target.role}:{page_target.failure_class}",
                {**ref, "action": "trigger"},
                incident_id=iid,
                lane="pagerduty",
            )
    effects.record(
        "paged",
        f"Paging {', '.join(t.target.describe() for t in targets)} ({reason})",
        incident_id=iid,
        source="rule" if reason != "manual" else "command",
        data={"reason": reason, "step": step, "targets": [t.role for t in targets]},
    )
