"""One report's outcomes as sorted fixed-width records: 8 bytes of the test's digest, 1 byte of
outcome flags. 10,000 results are 90 kB and one row; finding a test is a binary search, no
decoding. The flags are a set, so a test retried within one report (JUnit reruns) that failed
and then passed keeps both: that is what a flake looks like, and neither half may be lost."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import IntFlag
from itertools import compress
from operator import attrgetter
from typing import NamedTuple, Protocol

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
# Keyed by (scenario id, invariant id) when both are set, else by the test's identity.
_KEYS: dict[object, bytes] = {}
_KEYS_KEPT = 200_000  # about 30 MB at most, for suites of up to that many tests

# ... and in the same order: the last few test sets seen (their digests in report order, joined)
# with where each lands in the sorted records. A report of that set then costs no sort and no
# Python work per passing test: its records are the set's, all passed, with the others set.
_SETS: dict[bytes, _Layout | None] = {}  # None: the set repeats a test (a retry), packed the slow way
_SETS_KEPT = 8  # about 300 kB each for 10,000 tests

_IDS, _STATUS = attrgetter("scenario_id", "invariant_id"), attrgetter("status")
_ALL_PASSED = bytes((PASSED,))
_UNSEEN = ...  # not in _SETS (None is: a set packed the slow way)


class _Layout(NamedTuple):
    slots: list[int]  # by report position: the flag byte's offset in the records
    passed: bytes  # the records, every test passed


def pack(results: Iterable[ResultLike]) -> bytes:
    """One report's records. Attributes are read and digests looked up by ``map`` (in C): this
    runs for every report, and a report of 10,000 mostly passing tests must cost a few ms."""
    results = results if isinstance(results, list) else list(results)
    # Nothing here keeps a container per result alive: 10,000 of them would set off the cyclic
    # collector (young collections, then a full one walking the whole report) mid-ingest.
    keys: list[bytes | None] = list(map(_KEYS.get, map(_IDS, results)))
    if None in keys:
        keys = [key or key_for(result) for key, result in zip(keys, results, strict=True)]
    joined = b"".join(keys)  # type: ignore[arg-type]  # no None left
    found = _SETS.get(joined, _UNSEEN)  # one lookup: another ingest may empty it meanwhile
    if isinstance(found, _Layout) or found is None:
        layout = found
    else:
        layout = _layout(keys)  # type: ignore[arg-type]
        if len(_SETS) >= _SETS_KEPT:
            _SETS.clear()
        _SETS[joined] = layout
    if layout is None:
        return _pack_merged(keys, results)  # type: ignore[arg-type]
    records = bytearray(layout.passed)
    statuses = list(map(_STATUS, results))
    slots = layout.slots
    for index in compress(range(len(statuses)), map("passed".__ne__, statuses)):
        records[slots[index]] = _BITS.get(statuses[index], PASSED)
    return bytes(records)


def key_for(result: ResultLike) -> bytes:
    """``key_of`` the result, remembered: the test's name is only read when its ids do not
    identify it (it is built on each read)."""
    scenario, invariant = result.scenario_id, result.invariant_id
    name: object = (scenario, invariant) if scenario and invariant else result.test_identity
    key = _KEYS.get(name)
    if key is None:
        basis = f"ids|{scenario}|{invariant}" if scenario and invariant else f"test|{name}"
        key = hashlib.blake2b(basis.encode(), digest_size=_DIGEST).digest()
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[name] = key
    return key


def _layout(keys: list[bytes]) -> _Layout | None:
    count = len(keys)
    if len(set(keys)) != count:
        return None
    order = sorted(range(count), key=keys.__getitem__)
    ordered = b"".join(map(keys.__getitem__, order))
    records = bytearray(_WIDTH * count)
    for byte in range(_DIGEST):  # interleave the sorted digests with their flag bytes, in C
        records[byte::_WIDTH] = ordered[byte::_DIGEST]
    records[_DIGEST::_WIDTH] = _ALL_PASSED * count
    rank = sorted(range(count), key=order.__getitem__)  # the inverse of order: sorted position by index
    slots = list(map(range(_DIGEST, _WIDTH * count, _WIDTH).__getitem__, rank))
    return _Layout(slots, bytes(records))


def _pack_merged(keys: list[bytes], results: list[ResultLike]) -> bytes:
    """A report that carries a test more than once (JUnit reruns): its outcomes merge, so a test
    that failed and then passed keeps both flags."""
    flags: dict[bytes, int] = {}
    for key, status in zip(keys, map(_STATUS, results), strict=True):
        flags[key] = flags.get(key, 0) | _BITS.get(status, PASSED)
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
