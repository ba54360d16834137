"""Messages reduced to what stays the same between two failures of one cause: numbers, ids,
hashes, quoted values and paths masked."""

from __future__ import annotations

import functools
import re

_MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<id>"),
    (re.compile(r"\b[0-9a-f]{7,40}\b", re.I), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
]
_WORD = re.compile(r"[a-z_][a-z_]{2,}")
_COMMON = frozenset({"the", "and", "for", "with", "from", "not", "was", "but", "got", "has", "are", "this", "that"})


@functools.lru_cache(maxsize=4096)  # a run's thousands of failures repeat a few messages
def masked_line(message: str | None) -> str:
    """The first non-empty line, masked: the same infrastructure error in many tests is one line."""
    line = next((ln.strip() for ln in (message or "").splitlines() if ln.strip()), "")[:300]
    for pattern, mask in _MASKS:
        line = pattern.sub(mask, line)
    return line


@functools.lru_cache(maxsize=4096)  # every ingest reads the past's 500 newest decided symptoms again
def tokens(text: str | None) -> frozenset[str]:
    lowered = (text or "")[:2000].lower()
    for pattern, _mask in _MASKS:
        lowered = pattern.sub(" ", lowered)
    return frozenset(w for w in _WORD.findall(lowered) if w not in _COMMON)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
