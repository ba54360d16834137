"""A report's packed outcomes are exact however it is packed: the first time a test set is seen,
again from the remembered layout (a suite sent run after run), and when a report carries a test
twice (a retry that failed, then passed, keeps both)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from slackbot.history.outcomes import FAILED, PASSED, SKIPPED, count, failed_count, key_of, lookup, pack

_FLAGS = {"passed": PASSED, "failed": FAILED, "error": FAILED, "skipped": SKIPPED}


@dataclass
class _Result:
    scenario_id: str | None
    invariant_id: str | None
    test_file: str
    status: str

    @property
    def test_identity(self) -> str:
        return self.test_file


def _expected(results: list[_Result]) -> dict[bytes, int]:
    found: dict[bytes, int] = {}
    for r in results:
        key = key_of(r.scenario_id, r.invariant_id, r.test_identity)
        found[key] = found.get(key, 0) | _FLAGS[r.status]
    return found


def test_every_outcome_is_found_whether_the_test_set_is_new_remembered_or_repeats_a_test() -> None:
    rng = random.Random(16)
    suite = [
        _Result(f"SCH-{n:03d}" if n % 3 else None, f"STATE-{n % 7:03d}" if n % 5 else None, f"t/{n}.py", "passed")
        for n in range(300)
    ]
    reports = []
    for attempt in range(40):
        tests = list(suite) if attempt % 4 else rng.sample(suite, 200)  # mostly the same set, in order
        results = [_Result(t.scenario_id, t.invariant_id, t.test_file, rng.choice(list(_FLAGS))) for t in tests]
        if attempt % 7 == 3:  # a retry: the same test again, passing
            results.append(_Result(results[0].scenario_id, results[0].invariant_id, results[0].test_file, "passed"))
        reports.append(results)
    for results in reports + reports:  # each again, now from what the first pass remembered
        packed, expected = pack(results), _expected(results)
        assert count(packed) == len(expected)
        assert {key: lookup(packed, key) for key in expected} == expected
        assert failed_count(packed) == sum(1 for flags in expected.values() if flags & FAILED)


def test_a_report_read_in_several_pieces_packs_every_outcome_sorted() -> None:
    """Large reports are read and sorted a piece at a time (so no one C call holds the GIL for
    long): results on either side of each piece's edge keep their outcome, and every test is found."""
    rng = random.Random(17)
    statuses = list(_FLAGS)
    for _ in range(2):  # the set is new, then remembered
        results = [_Result(None, None, f"t/{n}.py", rng.choice(statuses)) for n in range(25_001)]
        packed, expected = pack(results), _expected(results)
        assert count(packed) == 25_001
        keys = [packed[start : start + 8] for start in range(0, len(packed), 9)]
        assert keys == sorted(keys)
        assert {key: lookup(packed, key) for key in expected} == expected
