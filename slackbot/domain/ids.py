"""What makes two failures "the same failure" (one card per failure episode), and how ids read."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_PARAMS = re.compile(r"\[[^\]]*\]")
_SPACE = re.compile(r"\s+")


def normalise_test_identity(identity: str) -> str:
    """Parametrised variants (``test_x[a-1]``) and spacing differences are one test."""
    identity = _PARAMS.sub("", identity)
    identity = identity.replace(" &gt; ", " > ")
    return _SPACE.sub(" ", identity).strip()


def fingerprint(repository: str, scenario_id: str | None, invariant_id: str | None, test_identity: str) -> str:
    if scenario_id and invariant_id:
        basis = f"ids|{repository}|{scenario_id}|{invariant_id}"
    else:
        basis = f"test|{repository}|{normalise_test_identity(test_identity)}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def prefix_of(identifier: str | None) -> str | None:
    if not identifier or "-" not in identifier:
        return None
    return identifier.split("-", 1)[0]


def short_symptom(message: str | None, limit: int = 80) -> str:
    """The first meaningful line of the failure message, cut to fit a card title."""
    if not message:
        return "no failure message"
    line = next((part.strip() for part in message.splitlines() if part.strip()), "no failure message")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def incident_key(incident_id: int | None) -> str:
    return f"INC-{incident_id}"


ALERTMANAGER_REPOSITORY = "alertmanager"  # the repository of incidents opened from Alertmanager alerts


def identity(incident: Any) -> str:
    """How people name a failure: its ids, or the test when its playbook needs no ids."""
    if incident.scenario_id or incident.invariant_id:
        return f"{incident.scenario_id or 'no scenarioId'} / {incident.invariant_id or 'no invariantId'}"
    if incident.contract_violation:
        return "no scenarioId / no invariantId"
    return str(incident.test_identity)
