"""A flake's lease (slackbot/incidents/leases.py) as people read it: on the card, in ``/triage
show``, in the bead. Pure: who the lease's role means comes from the playbook, the times from the
incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slackbot.clock import as_utc
from slackbot.config import Playbook
from slackbot.config.targets import Target
from slackbot.db.models import Incident
from slackbot.domain.states import IncidentStatus
from slackbot.slack.escape import slack_date


@dataclass(frozen=True)
class LeaseTerms:
    owner: Target | None  # None: the playbook no longer names anyone for the role
    role: str
    due: datetime
    escalated: datetime | None
    escalate_to: list[Target]

    @property
    def owner_name(self) -> str:
        return self.owner.describe() if self.owner else self.role

    @property
    def owner_mention(self) -> str:
        """Built from configured ids only (never from untrusted text)."""
        return self.owner.mention() if self.owner else self.role.replace("_", " ")

    def sentence(self) -> str:
        """Plain text for the bead and the timeline."""
        due = self.due.strftime("%Y-%m-%d %H:%M UTC")
        whom = ", ".join(t.describe() for t in self.escalate_to) or "nobody configured"
        return f"Flake lease: {self.owner_name} until {due}; still open then, it escalates to {whom}."


def lease_terms(playbook: Playbook, incident: Incident) -> LeaseTerms | None:
    """The lease of an incident classified as a flake; None when it has none, or is no longer a
    flake (reclassified: the lease is kept, paused, in case it comes back)."""
    lease = incident.lease
    route = playbook.class_route(incident.failure_class)
    if not lease or route is None or "flake" not in route.signals:
        return None
    found = playbook.target(lease["role"], incident.failure_class)
    policy = playbook.policy.flake.lease if playbook.policy.flake else None
    escalate_to = (
        [t.target for t in playbook.targets(list(policy.escalate_to), incident.failure_class)] if policy else []
    )
    escalated = lease.get("escalated")
    return LeaseTerms(
        owner=found.target if found else None,
        role=str(lease["role"]),
        due=as_utc(datetime.fromisoformat(lease["due"])),
        escalated=as_utc(datetime.fromisoformat(escalated)) if escalated else None,
        escalate_to=escalate_to,
    )


def lease_line(playbook: Playbook, incident: Incident, *, markup: bool = True) -> str | None:
    """``⏳ Flake lease: @owner until <date>`` while the flake is open, overdue once it escalated."""
    terms = lease_terms(playbook, incident)
    if terms is None or incident.status != IncidentStatus.OPEN:
        return None
    label = "*Flake lease:*" if markup else "Flake lease:"
    line = f"⏳ {label} {terms.owner_mention} until {slack_date(terms.due)}"
    if terms.escalated:
        line += f" · overdue, escalated {slack_date(terms.escalated)}"
    return line
