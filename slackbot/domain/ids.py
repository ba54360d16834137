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


# Incident ids are the incidents table's INTEGER key: 32 bits on PostgreSQL, where a larger
# number in a query is an error ("integer out of range"), not a miss. A reference past it can only
# name an incident that does not exist, and is answered as such without reaching the database.
MAX_INCIDENT_ID = 2**31 - 1
ECHO_LIMIT = 40  # how much of a bad reference is echoed back to the person who typed it
_ASCII_DIGITS = frozenset("0123456789")


class IncidentRefError(ValueError):
    """A reference that names no incident; the message is fit to show the person who sent it
    (the echo is bounded, and escaping is left to the renderer of the answer)."""


def echo(text: object, limit: int = ECHO_LIMIT) -> str:
    """Untrusted input quoted back to its sender, cut to a readable length."""
    shown = str(text).strip()
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def parse_incident_ref(ref: object) -> int:
    """The one reading of an incident reference, wherever it comes from (commands, buttons,
    selects' block ids, modal metadata): ``INC-42``, ``inc-42``, ``#42``, ``42`` or the integer
    42. Only ASCII digits count (``str.isdigit`` also accepts ``²`` and other scripts' digits,
    which ``int`` then refuses or reads as something else)."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        if 0 <= ref <= MAX_INCIDENT_ID:
            return ref
        raise IncidentRefError(f"no incident INC-{echo(ref)}")
    if not isinstance(ref, str):
        raise IncidentRefError("no incident id given; ids look like INC-42")
    raw = ref.strip().upper().removeprefix("INC-").removeprefix("#")
    if not raw or not _ASCII_DIGITS.issuperset(raw):
        raise IncidentRefError(f"'{echo(ref)}' is not an incident id; ids look like INC-42")
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(MAX_INCIDENT_ID)) or int(digits) > MAX_INCIDENT_ID:  # length first: no int() of a megabyte
        raise IncidentRefError(f"no incident INC-{echo(raw)}")
    return int(digits)


ALERTMANAGER_REPOSITORY = "alertmanager"  # the repository of incidents opened from Alertmanager alerts


def identity(incident: Any) -> str:
    """How people name a failure: its ids, or the test when its playbook needs no ids. An alert is
    named by its alertname alone (it never has an invariant to miss)."""
    if incident.repository == ALERTMANAGER_REPOSITORY:
        return str(incident.scenario_id or incident.test_identity)
    if incident.scenario_id or incident.invariant_id:
        return f"{incident.scenario_id or 'no scenarioId'} / {incident.invariant_id or 'no invariantId'}"
    if incident.contract_violation:
        return "no scenarioId / no invariantId"
    return str(incident.test_identity)


ESCALATE_SEPARATOR = "@"


def escalate_value(incident_id: int, level: int) -> str:
    """The card's Escalate button value: the incident and the escalation level the card showed.
    The level makes a click idempotent: the same click delivered twice (to two replicas, or by a
    retrying proxy) finds the incident past that level the second time and escalates once."""
    return f"{incident_id}{ESCALATE_SEPARATOR}{level}"


def parse_escalate_value(value: str) -> tuple[int, int | None]:
    """``7@1`` is INC-7 seen at level 1; ``7`` (a card drawn before levels were carried) has none."""
    ref, separator, level = value.partition(ESCALATE_SEPARATOR)
    incident = parse_incident_ref(ref)
    if not separator:
        return incident, None
    if not (level and level.isascii() and level.isdigit() and len(level) <= 6):
        raise IncidentRefError(
            f"this Escalate button is from an older version of the bot; use /triage escalate INC-{incident}"
        )
    return incident, int(level)
