"""Runbook checklists as data: which steps an incident's class lists, and what a step button says.

A checklist is the class's first-response steps followed by the playbook's response steps (an
operational alert's own steps replace the class's). Each step carries the version of the file it
came from, so a click on a checklist drawn from an older runbook is refused rather than recorded
against the wrong step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from slackbot.config import Playbook
from slackbot.domain.ids import parse_incident_ref

RESPONSE = "response"  # the runbook name of policy.response_steps (class checklists use the class key)


class StaleButton(ValueError):
    """A button from an older version of the bot or of the checklist."""


@dataclass(frozen=True)
class Step:
    runbook: str  # a class key (first response), "response", or "alert:<name>"
    index: int  # 1-based within its runbook, as people say "step 3"
    text: str
    phase: str | None
    version: int  # routing.yml's version for class steps, policy.yml's for the others

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.runbook, self.index, self.version)


def steps_for(playbook: Playbook, failure_class: str, alertname: str | None = None) -> list[Step]:
    """What the checklist of a class lists: its first-response steps, then the response steps. An
    alert with steps of its own (seed 004's failure-mode runbooks) lists those instead of the class's."""
    alert = playbook.alert(alertname) if alertname else None
    steps: list[Step] = []
    if alert is not None and alert.steps:
        version = playbook.policy.version
        steps += [Step(f"alert:{alert.alertname}", n, s.text, s.phase, version) for n, s in enumerate(alert.steps, 1)]
    else:
        route = playbook.class_route(failure_class)
        if route is not None:
            version = playbook.routing.version
            steps += [Step(failure_class, n, text, None, version) for n, text in enumerate(route.first_response, 1)]
    steps += [
        Step(RESPONSE, n, s.text, s.phase, playbook.policy.version)
        for n, s in enumerate(playbook.policy.response_steps, 1)
    ]
    return steps


def runbook_title(playbook: Playbook, name: str) -> str:
    if name == RESPONSE:
        phases = [s.phase for s in playbook.policy.response_steps if s.phase]
        ordered = list(dict.fromkeys(phases))
        return " → ".join(p.capitalize() if i == 0 else p for i, p in enumerate(ordered)) or "Response steps"
    if name.startswith("alert:"):
        return f"Runbook — {name.removeprefix('alert:')}"
    return f"First response — {playbook.class_label(name)}"


@dataclass(frozen=True)
class StepRef:
    """What one button says: which checklist, which step, which result. Compact JSON in ``value``."""

    incident: int
    checklist: str
    failure_class: str
    runbook: str
    index: int
    version: int
    result: str

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> StepRef:
        try:
            data = json.loads(raw)
            return cls(
                incident=parse_incident_ref(data["incident"]),
                checklist=str(data["checklist"]),
                failure_class=str(data["failure_class"]),
                runbook=str(data["runbook"]),
                index=_small(data["index"]),
                version=_small(data["version"]),
                result=str(data["result"]),
            )
        except (ValueError, KeyError, TypeError, RecursionError):  # IncidentRefError is a ValueError
            raise StaleButton("this checklist button is from an older version of the bot") from None


def _small(value: object) -> int:
    """A step index or version from a button: a plain integer of a sane size (a forged value
    must not reach a comparison or a query as a 1,000-digit number)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("not an integer")
    text = str(value)
    if not (0 < len(text) <= 9 and text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError("not a small integer")
    return int(text)
