"""What a person (or an integration) asks of an incident: one typed value per kind of change.

Handlers parse Slack and HTTP input into these; ``slackbot.incidents.IncidentCore.apply`` is the one
function that carries any of them out. Choices (a class, a severity, a milestone, a flag) stay as
typed text here: the incident's playbook decides what they may be called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slackbot.domain.checklists import StepRef


class IncidentError(ValueError):
    """A change that was refused; the message is shown to the person who asked."""


@dataclass(frozen=True)
class Actor:
    user_id: str
    source: str  # button | command | timer | api | rule | slack | github | alertmanager

    @property
    def mention(self) -> str:
        return f"<@{self.user_id}>" if self.user_id.startswith(("U", "W")) else self.user_id


@dataclass
class Outcome:
    incident_id: int
    message: str
    changed: bool = True


@dataclass(frozen=True)
class Acknowledge:
    pass


@dataclass(frozen=True)
class Assign:
    user_id: str


@dataclass(frozen=True)
class Classify:
    choice: str


@dataclass(frozen=True)
class SetSeverity:
    choice: str


@dataclass(frozen=True)
class Escalate:
    reason: str = ""
    # The level the asker saw (the card's button carries it): escalate only from there, so one
    # click delivered twice is one step. None (a command) always escalates one level further.
    seen_level: int | None = None


@dataclass(frozen=True)
class SetMilestone:
    choice: str
    note: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolve:
    root_cause: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SetFlag:
    choice: str
    on: bool = True


@dataclass(frozen=True)
class RequestBead:
    expected: str | None = None
    observed: str | None = None


@dataclass(frozen=True)
class RecordStep:
    ref: StepRef


@dataclass(frozen=True)
class RequestPostmortem:
    pass


@dataclass(frozen=True)
class ShowDetails:
    """Expand (or collapse) the card's details. The wanted state, not a toggle: a click delivered
    twice, or made on a card drawn before someone else toggled it, asks for the same thing."""

    on: bool


Change = (
    Acknowledge
    | Assign
    | Classify
    | SetSeverity
    | Escalate
    | SetMilestone
    | Resolve
    | SetFlag
    | RequestBead
    | RecordStep
    | RequestPostmortem
    | ShowDetails
)
