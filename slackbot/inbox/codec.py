"""A change as the few JSON values an inbox row keeps, and back."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slackbot.domain.changes import (
    Acknowledge,
    Assign,
    Change,
    Classify,
    Escalate,
    RecordStep,
    RequestBead,
    RequestPostmortem,
    Resolve,
    SetFlag,
    SetMilestone,
    SetSeverity,
    ShowDetails,
)
from slackbot.domain.checklists import StepRef

KINDS: dict[str, type[Any]] = {
    kind.__name__: kind
    for kind in (
        Acknowledge,
        Assign,
        Classify,
        SetSeverity,
        Escalate,
        SetMilestone,
        Resolve,
        SetFlag,
        RequestBead,
        RecordStep,
        RequestPostmortem,
        ShowDetails,
    )
}


def encode(change: Change) -> dict[str, Any]:
    return {"kind": type(change).__name__, **asdict(change)}


def decode(data: dict[str, Any]) -> Change:
    fields = {key: value for key, value in data.items() if key != "kind"}
    kind = KINDS[str(data["kind"])]
    if kind is RecordStep:
        fields["ref"] = StepRef(**fields["ref"])
    change: Change = kind(**fields)
    return change
