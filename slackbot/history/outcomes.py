"""One report's outcomes as sorted fixed-width records: 8 bytes of the test's digest, 1 byte of
outcome flags. 10,000 results are 90 kB and one row; finding a test is a binary search, no
decoding. The flags are a set, so a test retried within one report (JUnit reruns) that failed
and then passed keeps both: that is what a flake looks like, and neither half may be lost."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from enum import IntFlag
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


# A suite reports the same tests run after run: each test's record (its digest and an outcome's
# flag byte) is worked out once per process, keyed by (scenario id, invariant id, status) when the
# ids are set (hashing was half of what recording 10,000 results cost). Emptied when full, never
# grown without end; a record never changes, so a concurrent ingest reading meanwhile is harmless.
_RECORDS: dict[tuple[str, str, str], bytes] = {}
_KEYS: dict[str, bytes] = {}  # tests without ids, by their identity
_KEPT = 100_000  # about 330 bytes each (its ids kept too): some 33 MB at most

# ... and in the same order: the last few test sets seen (their records in report order, all
# passed) with where each lands in the sorted records. A report of that set then costs no sort
# and no Python work per passing test: its records are the set's, with the others' flags set.
_SETS: dict[bytes, _Layout | None] = {}  # None: the set repeats a test (a retry), packed the slow way
_SETS_KEPT = 8  # about 600 kB each for 10,000 tests

# Results are read this many at a time: a C call over all of a 100,000-result report holds the
# GIL, and the event loop with it, for tens of ms.
_PIECE = 10_000
_READ = attrgetter("scenario_id", "invariant_id", "status")
_ALL_PASSED = bytes((PASSED,))
_NOT_PASSED = re.compile(b"[^%c]" % PASSED)
_UNSEEN = ...  # not in _SETS (None is: a set packed the slow way)


class _Layout(NamedTuple):
    slots: list[int]  # by report position: the flag byte's offset in the records
    passed: bytes  # the records, every test passed


def pack(results: Iterable[ResultLike]) -> bytes:
    """One report's records. Attributes are read and records looked up by ``map`` (in C): this
    runs for every report, and a report of 10,000 mostly passing tests must cost a few ms.
    Nothing here keeps a container per result alive: 10,000 of them would set off the cyclic
    collector (young collections, then a full one walking the whole report) mid-ingest."""
    results = results if isinstance(results, list) else list(results)
    found: list[bytes | None] = []
    for start in range(0, len(results), _PIECE):  # one C call holds the GIL: 100,000 took 20 ms
        found += map(_RECORDS.get, map(_READ, results[start : start + _PIECE]))
    if None in found:
        found = [record or _record(result) for record, result in zip(found, results, strict=True)]
    joined = b"".join(found)  # type: ignore[arg-type]  # no None left
    flags = joined[_DIGEST::_WIDTH]
    everyone_passed = bytearray(joined)
    everyone_passed[_DIGEST::_WIDTH] = _ALL_PASSED * len(flags)
    tests = bytes(everyone_passed)
    known = _SETS.get(tests, _UNSEEN)  # one lookup: another ingest may empty it meanwhile
    if isinstance(known, _Layout) or known is None:
        layout = known
    else:
        layout = _layout(tests)
        if len(_SETS) >= _SETS_KEPT:
            _SETS.clear()
        _SETS[tests] = layout
    if layout is None:
        return _pack_merged(joined)
    records, slots = bytearray(layout.passed), layout.slots
    for other in _NOT_PASSED.finditer(flags):  # in C: only the failed and skipped reach Python
        index = other.start()
        records[slots[index]] = flags[index]
    return bytes(records)


def key_for(result: ResultLike) -> bytes:
    """``key_of`` the result, remembered: the test's name is only read when its ids do not
    identify it (it is built on each read)."""
    return _record(result)[:_DIGEST]


def _record(result: ResultLike) -> bytes:
    scenario, invariant, status = _READ(result)
    if scenario and invariant:
        name = (scenario, invariant, status)
        record = _RECORDS.get(name)
        if record is None:
            record = key_of(scenario, invariant, "") + _BYTES[_BITS.get(status, PASSED)]
            if len(_RECORDS) >= _KEPT:
                _RECORDS.clear()
            _RECORDS[name] = record
        return record
    identity = result.test_identity
    key = _KEYS.get(identity)
    if key is None:
        key = key_of(scenario, invariant, identity)
        if len(_KEYS) >= _KEPT:
            _KEYS.clear()
        _KEYS[identity] = key
    return key + _BYTES[_BITS.get(status, PASSED)]


def _layout(tests: bytes) -> _Layout | None:
    """Where each test of the set lands in the sorted records; None when the set repeats a test."""
    keys = [tests[start : start + _DIGEST] for start in range(0, len(tests), _WIDTH)]
    count = len(keys)
    if len(set(keys)) != count:
        return None
    # Sorted by digest a first byte at a time: one sort of 100,000 is one C call that held the GIL
    # for 32 ms; digests are uniform, so each of the 256 runs is a short one.
    runs: list[list[int]] = [[] for _ in range(256)]
    for index, key in enumerate(keys):
        runs[key[0]].append(index)
    order: list[int] = []
    for run in runs:
        run.sort(key=keys.__getitem__)
        order += run
    ordered = b"".join(map(keys.__getitem__, order))
    records = bytearray(_WIDTH * count)
    for byte in range(_DIGEST):  # interleave the sorted digests with their flag bytes, in C
        records[byte::_WIDTH] = ordered[byte::_DIGEST]
    records[_DIGEST::_WIDTH] = _ALL_PASSED * count
    slots = [0] * count
    for position, index in enumerate(order):
        slots[index] = _DIGEST + _WIDTH * position
    return _Layout(slots, bytes(records))


def _pack_merged(joined: bytes) -> bytes:
    """A report that carries a test more than once (JUnit reruns): its outcomes merge, so a test
    that failed and then passed keeps both flags."""
    flags: dict[bytes, int] = {}
    for start in range(0, len(joined), _WIDTH):
        key = joined[start : start + _DIGEST]
        flags[key] = flags.get(key, 0) | joined[start + _DIGEST]
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
