"""One report's outcomes as sorted fixed-width records: 8 bytes of the test's digest, 1 byte of
outcome flags. 10,000 results are 90 kB and one row; finding a test is a binary search, no
decoding. The flags are a set, so a test retried within one report (JUnit reruns) that failed
and then passed keeps both: that is what a flake looks like, and neither half may be lost."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import IntFlag
from typing import Protocol

_DIGEST = 8
_WIDTH = _DIGEST + 1


class Outcome(IntFlag):
    PASSED = 1
    FAILED = 2
    SKIPPED = 4

    @classmethod
    def of(cls, status: str) -> Outcome:
        if status in ("failed", "error"):
            return cls.FAILED
        return cls.SKIPPED if status == "skipped" else cls.PASSED


def key_of(scenario_id: str | None, invariant_id: str | None, test_identity: str) -> bytes:
    """The test a result or an incident is about. Ids win when the harness emitted both, as the
    incident fingerprint does, so renaming a test file keeps its scenario's history."""
    basis = f"ids|{scenario_id}|{invariant_id}" if scenario_id and invariant_id else f"test|{test_identity}"
    return hashlib.blake2b(basis.encode(), digest_size=_DIGEST).digest()


PASSED, FAILED, SKIPPED = 1, 2, 4  # Outcome's values as plain ints, for the hot paths
_BITS = {"passed": PASSED, "failed": FAILED, "error": FAILED, "skipped": SKIPPED}
_BYTES = [bytes((n,)) for n in range(8)]


class ResultLike(Protocol):  # what it reads of sources.report.Result (history imports no source)
    @property
    def scenario_id(self) -> str | None: ...
    @property
    def invariant_id(self) -> str | None: ...
    @property
    def test_identity(self) -> str: ...
    @property
    def status(self) -> str: ...


# A suite reports the same tests run after run: each test's digest is worked out once per process
# (hashing was half of what recording 10,000 results cost). Emptied when full, never grown
# without end; a digest never changes, so a concurrent ingest reading it meanwhile is harmless.
_KEYS: dict[object, bytes] = {}
_KEYS_KEPT = 200_000  # about 30 MB at most, for suites of up to that many tests


def pack(results: Iterable[ResultLike]) -> bytes:
    """``key_of`` and ``Outcome.of`` inlined: this runs once per result of every report (10,000
    results must cost milliseconds), and enum arithmetic is slow in Python."""
    flags: dict[bytes, int] = {}
    keys, blake = _KEYS, hashlib.blake2b
    for result in results:
        scenario, invariant = result.scenario_id, result.invariant_id
        name: object = (scenario, invariant) if scenario and invariant else result.test_identity
        key = keys.get(name)
        if key is None:
            basis = f"ids|{scenario}|{invariant}" if scenario and invariant else f"test|{name}"
            key = blake(basis.encode(), digest_size=_DIGEST).digest()
            if len(keys) >= _KEYS_KEPT:
                keys.clear()
            keys[name] = key
        flags[key] = flags.get(key, 0) | _BITS.get(result.status, 1)
    return b"".join([key + _BYTES[flags[key]] for key in sorted(flags)])


def failed_count(packed: bytes) -> int:
    """How many tests of a packed report failed (counted in C: one flag byte per record)."""
    outcomes = packed[_DIGEST::_WIDTH]
    return sum(outcomes.count(value) for value in range(8) if value & FAILED)


def lookup(packed: bytes, key: bytes) -> int | None:
    """The test's outcome in this report, or None when the report did not carry it (a JSON report
    names only failures: absent means unknown, not passed)."""
    lo, hi = 0, len(packed) // _WIDTH
    while lo < hi:
        mid = (lo + hi) // 2
        start = mid * _WIDTH
        found = packed[start : start + _DIGEST]
        if found < key:
            lo = mid + 1
        elif found > key:
            hi = mid
        else:
            return packed[start + _DIGEST]
    return None


def count(packed: bytes) -> int:
    return len(packed) // _WIDTH
