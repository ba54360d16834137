"""Durations as an on-call lead types them in YAML: ``20m``, ``90s``, ``1h``, ``7d`` (one unit)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"durations need a unit, e.g. '{value}s' or '{value}m'")
    if not isinstance(value, str):
        raise ValueError("expected a duration such as '20m', '90s' or '1h'")
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration; use a number and one unit: ms, s, m, h or d (e.g. '20m')")
    amount, unit = match.groups()
    seconds = int(amount) * _UNITS[unit]
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


def human_duration(value: timedelta, *, adjective: bool = False) -> str:
    """``20 minutes`` (or ``20-minute`` as an adjective), ``1 hour``, ``7 days``, ``90 seconds``."""
    seconds = int(value.total_seconds())
    for size, name in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            if adjective:
                return f"{count}-{name}"
            return f"{count} {name}{'s' if count != 1 else ''}"
    milliseconds = int(value.total_seconds() * 1000)
    return f"{milliseconds}-ms" if adjective else f"{milliseconds} ms"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
