"""The real JUnit producers, run once per module on the samples in tests/producers, and what a
person sees after their files are ingested: which incidents, named how, of which class.

pytest (the venv's), vitest 3 and jest 30 with jest-junit 17 (tests/producers/js, pinned by its
lock file). Each tool runs once per module (about 1 s for pytest, 2 s each for vitest and jest).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from slackbot.config import Playbooks
from tests.producers.tools import Seen, ingest, run_jest, run_pytest, run_vitest, sqlite_db

HARNESS = "harness_diagnostics"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("producers")


@pytest.fixture(scope="module")
def pytest_xml(base: Path) -> bytes:
    return run_pytest(base)


@pytest.fixture(scope="module")
def vitest_xml(base: Path) -> bytes:
    return run_vitest(base)


@pytest.fixture(scope="module")
def jest_xml(base: Path) -> bytes:
    return run_jest(base)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from sqlite_db(tmp_path_factory.mktemp("db"))


def by_label(seen: list[Seen]) -> dict[str, Seen]:
    labels = [s.label for s in seen]
    assert len(set(labels)) == len(labels), labels
    return {s.label: s for s in seen}


# --- pytest ---------------------------------------------------------------------------------------


def test_pytest_classes_params_setup_teardown_and_collection(
    pytest_xml: bytes, db: Engine, playbooks: Playbooks
) -> None:
    seen = by_label(ingest(db, playbooks, pytest_xml, "pytest/dispatch"))
    assert sorted(seen) == [
        "tests/test_broken.py::tests.test_broken",
        "tests/test_shop.py::TestCheckout::test_total",
        "tests/test_shop.py::TestRefund::test_total",
        "tests/test_shop.py::fixture database (setup)",
        "tests/test_shop.py::fixture scratch_dir (teardown)",
        "tests/test_shop.py::test_BID_002_TENANT_002_receipt",
        "tests/test_shop.py::test_total_in[USD-11]",
    ]
    # Two classes with a test of the same name: two incidents.
    assert seen["tests/test_shop.py::TestRefund::test_total"].symptom.startswith("AssertionError: assert {'refunded'")

    # Parametrized variants: one incident, each variant its own occurrence under its own id.
    params = seen["tests/test_shop.py::test_total_in[USD-11]"]
    assert [name for name, _ in params.occurrences] == ["test_total_in[USD-11]", "test_total_in[GBP-12]"]

    # A product failure with ids stays a scenario incident, unclassified until someone triages it.
    receipt = seen["tests/test_shop.py::test_BID_002_TENANT_002_receipt"]
    assert (receipt.scenario_id, receipt.invariant_id, receipt.failure_class) == ("BID-002", "TENANT-002", None)
    assert len(receipt.occurrences) == 1  # its teardown error is the fixture's incident, not this one

    # A fixture that fails in setup blocked two tests: one harness incident that names both.
    setup = seen["tests/test_shop.py::fixture database (setup)"]
    assert (setup.failure_class, setup.scenario_id, setup.invariant_id) == (HARNESS, None, None)
    assert setup.symptom == 'failed on setup with "ConnectionError: database refused the connection"'
    assert setup.occurrences[0][1] == (
        'failed on setup with "ConnectionError: database refused the connection"\n'
        "Blocked 2 tests: test_orders_listed, test_refunds_listed"
    )
    assert len(setup.occurrences) == 2

    # A teardown error is the harness's even when the test carries ids (BID-001/TENANT-001).
    teardown = seen["tests/test_shop.py::fixture scratch_dir (teardown)"]
    assert (teardown.failure_class, teardown.scenario_id) == (HARNESS, None)
    assert teardown.occurrences[0][1] == (
        'failed on teardown with "RuntimeError: scratch dir still busy"\n'
        "After: TestCheckout::test_BID_001_TENANT_001_no_cross_org, test_BID_002_TENANT_002_receipt"
    )

    collection = seen["tests/test_broken.py::tests.test_broken"]
    assert (collection.failure_class, collection.symptom) == (HARNESS, "collection failure")


# --- vitest ---------------------------------------------------------------------------------------


def test_vitest_hooks_import_failure_and_snapshot(vitest_xml: bytes, db: Engine, playbooks: Playbooks) -> None:
    seen = by_label(ingest(db, playbooks, vitest_xml, "vitest/dispatch"))
    assert sorted(seen) == [
        "tests/checkout.test.ts::BID-001 checkout > TENANT-001 org isolation",
        "tests/checkout.test.ts::TENANT-002 totals > BID-004 rounding",
        "tests/checkout.test.ts::TENANT-002 totals > BID-008 receipt layout",
        "tests/checkout.test.ts::refund",
        "tests/import-fails.test.ts::tests/import-fails.test.ts",
    ]
    # The failed beforeAll is the harness's (not BID-001/TENANT-001's) and names the tests it skipped.
    hook = seen["tests/checkout.test.ts::BID-001 checkout > TENANT-001 org isolation"]
    assert (hook.failure_class, hook.scenario_id, hook.invariant_id) == (HARNESS, None, None)
    assert hook.symptom == "database seed failed: connection refused"
    assert hook.occurrences[0][1] == (
        "database seed failed: connection refused\n"
        "Blocked 2 tests: BID-001 checkout > TENANT-001 org isolation > total is the sum of lines, "
        "BID-001 checkout > TENANT-001 org isolation > discount applies once"
    )
    after_all = seen["tests/checkout.test.ts::refund"]
    assert (after_all.failure_class, after_all.symptom) == (HARNESS, "cleanup failed: tmp dir busy")
    assert seen["tests/import-fails.test.ts::tests/import-fails.test.ts"].failure_class == HARNESS

    # A snapshot mismatch is the product's: a scenario incident with its ids.
    snapshot = seen["tests/checkout.test.ts::TENANT-002 totals > BID-008 receipt layout"]
    assert (snapshot.scenario_id, snapshot.invariant_id, snapshot.failure_class) == ("BID-008", "TENANT-002", None)
    assert snapshot.symptom == "Snapshot `TENANT-002 totals > BID-008 receipt layout 1` mismatched"


def test_vitest_3_leaves_unhandled_errors_out_of_its_junit_file(vitest_xml: bytes) -> None:
    # The sample's unhandled rejection fails the run (exit 1) but vitest 3 writes it nowhere in the
    # file: the bot cannot see it (vitest 5's "vitest unhandled errors" suite is read: test_junit.py).
    assert b"retry queue closed" not in vitest_xml
    assert b'name="BID-005 schedules a retry"' in vitest_xml


# --- jest + jest-junit ----------------------------------------------------------------------------


def test_jest_junit_defaults_keep_the_file_not_the_label(jest_xml: bytes, db: Engine, playbooks: Playbooks) -> None:
    assert b" file=" not in jest_xml  # jest-junit's default: no file attribute
    seen = by_label(ingest(db, playbooks, jest_xml, "jest/dispatch"))
    assert sorted(seen) == [
        "tests/broken.test.js::Test suite failed to run",
        "tests/checkout.test.js::BID-001 bidding TENANT-001 org isolation (hook)",
        "tests/checkout.test.js::Checkout total",
        "tests/checkout.test.js::Checkout total in USD",
        "tests/checkout.test.js::Refund total",
        "tests/refund.test.js::Refund total",
        "tests/refund.test.js::receipt layout",
    ]
    # The beforeAll failed each test of its block: one harness incident naming both.
    hook = seen["tests/checkout.test.js::BID-001 bidding TENANT-001 org isolation (hook)"]
    assert (hook.failure_class, hook.scenario_id, hook.invariant_id) == (HARNESS, None, None)
    assert hook.occurrences[0][1] == (
        "Error: database seed failed: connection refused\n"
        "Blocked 2 tests: BID-001 bidding TENANT-001 org isolation notifies only its org, "
        "BID-001 bidding TENANT-001 org isolation pages only its on-call"
    )
    assert seen["tests/broken.test.js::Test suite failed to run"].failure_class == HARNESS
