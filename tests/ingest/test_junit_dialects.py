"""Real JUnit files from the producers this machine cannot run (.NET, Go, Maven), and vitest 5's
own snapshots, as a person sees them once ingested. Sources: tests/fixtures/junit/SOURCES.md."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from slackbot.config import Playbooks
from tests.conftest import FIXTURES
from tests.producers.tools import Seen, ingest, sqlite_db

JUNIT = Path(__file__).resolve().parent.parent / "fixtures" / "junit"
HARNESS = "harness_diagnostics"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    yield from sqlite_db(tmp_path_factory.mktemp("db"))


def seen(db: Engine, playbooks: Playbooks, path: Path) -> dict[str, Seen]:
    # Each file is sent as its own repository, so the module's one database keeps them apart.
    incidents = ingest(db, playbooks, path.read_bytes(), f"{path.stem}/dispatch")
    assert len({s.label for s in incidents}) == len(incidents)
    return {s.label: s for s in incidents}


def test_nunit_fixture_setup_and_teardown_are_harness_failures_naming_their_tests(
    db: Engine, playbooks: Playbooks
) -> None:
    found = seen(db, playbooks, JUNIT / "nunit" / "junitxml-testlogger-TestResults.xml")
    assert len(found) == 14
    fixture = "JUnit.Xml.TestLogger.NetFull.Tests"
    error = "System.InvalidOperationException : Operation is not valid due to the current state of the object."
    one_time = found[f"{fixture}.FailingOneTimeSetUp::OneTimeSetUp"]
    assert (one_time.failure_class, one_time.contract_violation) == (HARNESS, True)
    assert one_time.occurrences == (("OneTimeSetUp", f"OneTimeSetUp: {error}\nBlocked 1 test: TestA"),)
    assert found[f"{fixture}.FailingTestSetup::SetUp"].occurrences[0][1] == f"{error}\nBlocked 1 test: TestB"
    assert found[f"{fixture}.FailingTearDown::TearDown"].occurrences[0][1] == f"TearDown : {error}\nAfter: TestC"
    # NUnit's test cases keep their arguments: two incidents.
    assert f'{fixture}.ParametrizedTestCases::TestData(2,"A")' in found
    assert f'{fixture}.ParametrizedTestCases::TestData(2,"B")' in found
    # The same class name under two namespaces is two tests.
    assert "JUnit.Xml.TestLogger.Tests2.UnitTest1::FailTest11" in found
    assert f"{fixture}.UnitTest1::FailTest11" in found


def test_gotestsum_testmain_failure_is_its_packages_harness_failure(db: Engine, playbooks: Playbooks) -> None:
    found = seen(db, playbooks, JUNIT / "go" / "gotestsum-junitxml-report.golden.xml")
    package = "gotest.tools/gotestsum/testjson/internal"
    main = found[f"{package}/badmain::TestMain"]  # classname="": the suite names the package
    assert main.failure_class == HARNESS
    assert main.occurrences[0][1] == f"Failed\nBlocked every test of package {package}/badmain"
    assert f"{package}/parallelfails::TestNestedParallelFailures/a" in found
    assert f"{package}/withfails::TestNestedWithFailure/c" in found
    assert len(found) == 13


def test_go_junit_report_build_and_main_failures_block_their_package(db: Engine, playbooks: Playbooks) -> None:
    build = seen(db, playbooks, JUNIT / "go" / "go-junit-report-013-report.xml")
    assert sorted(build) == [
        "package/name/failing1::[build failed]",
        "package/name/failing2::[build failed]",
        "package/name/setupfailing1::[setup failed]",
    ]
    failing = build["package/name/failing1::[build failed]"]
    assert (failing.failure_class, failing.symptom) == (HARNESS, "Build error")
    assert failing.occurrences[0][1] == "Build error\nBlocked every test of package package/name/failing1"
    main = seen(db, playbooks, JUNIT / "go" / "go-junit-report-106-report.xml")
    assert main["package/name/main/fail::Failure"].occurrences[0][1] == (
        "Runtime error\nBlocked every test of package package/name/main/fail"
    )
    subtests = seen(db, playbooks, JUNIT / "go" / "go-junit-report-012-report.xml")
    assert "package/subtests::TestSubtests/Subtest#01" in subtests


def test_surefire_java_classes_stay_classes(db: Engine, playbooks: Playbooks) -> None:
    # A Java class is not a pytest module: no "org/apache/maven/surefire/test.py".
    failing = seen(db, playbooks, JUNIT / "surefire" / "TEST-org.apache.maven.surefire.test.FailingTest.xml")
    assert sorted(failing) == [
        "org.apache.maven.surefire.test.FailingTest::defaultTestValueIs_Value",
        "org.apache.maven.surefire.test.FailingTest::setTestAndRetrieveValue",
    ]
    error = seen(db, playbooks, JUNIT / "surefire" / "TEST-surefire.MyTest-nestedClass.xml")
    assert error["surefire.MyTest::test"].symptom == "java.lang.IndexOutOfBoundsException"
    # A test that passed on a rerun (<flakyFailure>) is not a failure.
    assert seen(db, playbooks, JUNIT / "surefire" / "TEST-org.acme.FlakyTest.xml") == {}


def test_vitest_5_hooks_and_unhandled_errors(db: Engine, playbooks: Playbooks) -> None:
    hooks = seen(db, playbooks, FIXTURES / "vitest-junit-snapshot-hook-failures.xml")
    assert sorted(hooks) == ["basic.test.ts::suite with afterAll", "basic.test.ts::suite with beforeAll"]
    before = hooks["basic.test.ts::suite with beforeAll"]
    assert before.failure_class == HARNESS
    assert before.occurrences[0][1] == (
        "beforeAll error\nBlocked 3 tests: suite with beforeAll > ok 1, suite with beforeAll > ok 2, "
        "suite with beforeAll > skip 1"
    )
    # Its tests ran, then the afterAll failed: it blocked none.
    assert hooks["basic.test.ts::suite with afterAll"].occurrences[0][1] == "afterAll error"

    errors = seen(db, playbooks, FIXTURES / "vitest-junit-snapshot-format-error-and-unhandled.xml")
    unhandled = errors["error.test.ts::Unhandled Rejection: throwSimple"]
    assert (unhandled.failure_class, unhandled.scenario_id, unhandled.symptom) == (HARNESS, None, "throwSimple")
    assert len(errors) == 9
