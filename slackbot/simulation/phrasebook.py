"""What CI says when a playbook's classes fail, in the words of the seed that playbook came from.

The simulation's extra playbooks (every non-alert playbook but seed 001's) get their routing,
channels, owners, suites and match rules from their YAML; only the sentences a failing check or test
prints cannot be read from YAML. Those live here, keyed by class, each written to be caught by that
class's own ``patterns`` the way real output would be. A class with no entry gets a story built from
its ``examples`` in routing.yml, so a team's own playbook is simulated too, only in plainer words.

``shape`` says how the episode unfolds:

* ``persistent``: fails every run from its day until a responder's fix is merged;
* ``flake``: fails every few days and passes in between (a responder's first fix does not hold);
* ``outage``: one run where many tests fail at once and never again;
* ``sev1``: persistent, and data-loss grade: someone marks it SEV-1 when the playbook has one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """One failing result: the test (or check) and what it printed."""

    test_file: str
    test_name: str
    message: str
    command: str | None = None


@dataclass(frozen=True)
class Episode:
    kind: str  # one of traffic.KINDS
    shape: str  # persistent | flake | outage | sev1
    lines: tuple[Line, ...]
    root_cause: str


_COVERAGE = "python3 scripts/validate-fixture-coverage.py"
_PARITY = "python3 scripts/validate-legacy-alias-parity.py"

# Seed 002 (contract fixture drift, F2-TASK-046) and seed 003 (CBDD, a .NET library whose tests are
# CBDD.Tests; JUnit classnames are the test classes, so they are the test "file" in both doors).
EPISODES: dict[str, Episode] = {
    "schema_drift": Episode(
        "contract_drift",
        "persistent",
        (
            Line(
                "scripts/validate-fixture-coverage.py",
                "fixture coverage: dispatch.assignment",
                "contract dispatch.assignment changed (v3): schema fields shiftWindow, capMinutes not covered "
                "by fixture pack baseline v2",
                _COVERAGE,
            ),
        ),
        "the assignment contract gained two fields in a schema change PR without its fixture pack; "
        "updated the contract and the fixture baseline in one PR",
    ),
    "fixture_stale": Episode(
        "stale_fixture",
        "persistent",
        (
            Line(
                "scripts/validate-legacy-alias-parity.py",
                "legacy alias parity: bid.accept",
                "fixture for legacy alias bid.accept is stale: expected old status 'accepted', the runtime now "
                "returns 'confirmed' (intended change); regenerate the fixtures",
                _PARITY,
            ),
        ),
        "the intended bid.accept status rename shipped without refreshing its expected fixture; refreshed "
        "the fixture pack and notes.md",
    ),
    "runtime_regression": Episode(
        "regression",
        "persistent",
        (
            Line(
                "scripts/validate-legacy-alias-parity.py",
                "legacy alias parity: bid.withdraw",
                "bid.withdraw after close: expected status 409 but got 200; the implementation output no longer "
                "matches the contract",
                _PARITY,
            ),
        ),
        "the withdraw handler lost its closed-window guard in a refactor; restored it, contract untouched",
    ),
    "feature_regression": Episode(
        "regression",
        "persistent",
        (
            Line(
                "CBDD.Tests.Query.IndexScanTests",
                "RangeScan_ReturnsKeysInAscendingOrder",
                "Assert.Equal() Failure: Expected 42 keys in ascending order, Actual 41 (key 0x7F skipped at a "
                "page boundary)",
            ),
        ),
        "the B-tree range scan skipped the first key of every new leaf page after the prefetch change; "
        "reverted the prefetch",
    ),
    "transaction_protocol": Episode(
        "flake",
        "flake",
        (
            Line(
                "CBDD.Tests.Transactions.ConcurrentCommitTests",
                "ConcurrentCommits_AreSerializable",
                "Assert.Equal() Failure: Expected 2 committed rows, Actual 1 (a concurrent commit was lost; "
                "passes on rerun)",
            ),
        ),
        "two commits raced on the free-page list without the writer lock; the commit path now takes it",
    ),
    "storage_recovery": Episode(
        "sev1",
        "sev1",
        (
            Line(
                "CBDD.Tests.Storage.RecoveryTests",
                "Recover_ReplaysCommittedTransactions_AfterUncleanShutdown",
                "System.IO.InvalidDataException : Write-ahead log record checksum mismatch at LSN 1842 "
                "(segment 00000003.wal)",
            ),
        ),
        "the WriteAheadLog flushed the record header before its payload; a crash between the two left a "
        "zeroed checksum. Header and payload are now written in one fsync'd write",
    ),
    "ci_gate": Episode(
        "infra_outage",
        "outage",
        tuple(
            Line(
                f"CBDD.Tests.{area}",
                name,
                "The active test run was aborted. Reason: Test host process crashed (the runner ran out of disk)",
            )
            for area, name in (
                ("Query.IndexScanTests", "PointLookup_FindsInsertedKey"),
                ("Storage.PageCacheTests", "Evict_WritesDirtyPages"),
                ("Transactions.IsolationTests", "ReadCommitted_HidesUncommittedWrites"),
                ("Serialization.DocumentTests", "RoundTrip_PreservesNestedArrays"),
                ("Indexing.CompositeKeyTests", "Compare_OrdersByEveryPart"),
            )
        ),
        "the CI runner's disk filled with test databases and the test host crashed; the job now cleans "
        "its temp directory",
    ),
}
