"""JUnit XML → Report: the real vitest snapshots, a pytest-shaped document, ids, and hostile XML."""

from __future__ import annotations

from collections import Counter
from xml.sax.saxutils import quoteattr

import pytest

from slackbot.sources.junit import DETAIL_LIMIT, TRUNCATED, JUnitError, looks_like_junit, parse_junit
from slackbot.sources.report import Report, Result, RunInfo
from tests.conftest import FIXTURES

RUN = RunInfo(repository="acme/dispatch", run_id="9187", suite="nightly")
HOOKS = FIXTURES / "vitest-junit-snapshot-hook-failures.xml"
FORMAT_ERRORS = FIXTURES / "vitest-junit-snapshot-format-error-and-unhandled.xml"


def parse(xml: str | bytes, **kwargs: frozenset[str]) -> Report:
    return parse_junit(xml.encode() if isinstance(xml, str) else xml, RUN, **kwargs)


def by_name(report: Report) -> dict[str, Result]:
    return {r.test_name or "": r for r in report.results}


def one_case(name: str, classname: str = "tests/integration/bidding.test.ts", inner: str = "") -> str:
    return (
        f'<testsuites name="vitest tests"><testsuite name="s">'
        f'<testcase classname={quoteattr(classname)} name={quoteattr(name)} time="0.5">{inner}</testcase>'
        f"</testsuite></testsuites>"
    )


def ids(
    name: str, classname: str = "tests/integration/bidding.test.ts", **kwargs: frozenset[str]
) -> tuple[str | None, str | None]:
    result = parse(one_case(name, classname, "<failure/>"), **kwargs).results[0]
    return result.scenario_id, result.invariant_id


# --- real vitest output ---------------------------------------------------------------------------


def test_vitest_hook_failures_snapshot() -> None:
    report = parse(HOOKS.read_bytes())
    assert report.run == RUN
    assert len(report.results) == 8
    assert Counter(r.status for r in report.results) == {"skipped": 4, "passed": 2, "failed": 2}
    results = by_name(report)
    # A failed beforeAll/afterAll is a testcase named after the suite: a harness failure that
    # names the tests it skipped (an afterAll's tests ran: it blocked none).
    hook = results["suite with beforeAll"]
    assert hook.status == "failed"
    blocked = ["suite with beforeAll > ok 1", "suite with beforeAll > ok 2", "suite with beforeAll > skip 1"]
    assert hook.message == f"beforeAll error\nBlocked 3 tests: {', '.join(blocked)}"
    assert hook.detail == (
        "Harness failure: hook failed.\nBlocked tests:"
        + "".join(f"\n  - {name}" for name in blocked)
        + "\n\nError: beforeAll error\n ❯ basic.test.ts:10:11"
    )
    assert results["suite with afterAll"].message == "afterAll error"
    assert results["suite with beforeAll > ok 1"].status == "skipped"
    assert results["suite with afterAll > ok 1"].status == "passed"
    for r in report.results:
        assert r.test_file == "basic.test.ts"
        assert r.duration_seconds is None  # time="..."
        assert r.scenario_id is None and r.invariant_id is None


def test_vitest_format_errors_and_unhandled_snapshot() -> None:
    report = parse(FORMAT_ERRORS.read_bytes())
    assert len(report.results) == 10
    assert Counter(r.status for r in report.results) == {"failed": 8, "passed": 1, "error": 1}
    results = by_name(report)

    assert results["stack"].message == "throwSimple"
    assert results["stack"].detail is not None and results["stack"].detail.startswith("Error: throwSimple\n")
    assert results["diff"].message == "expected { hello: 'x' } to deeply equal { hello: 'y' }"
    assert '-   "hello": "y",' in (results["diff"].detail or "")
    assert results["xml"].message == "error message that has XML in it <div><input/></div>"
    assert results["unhandled"].status == "passed"
    # <failure> without message and type: the first line of the body.
    assert results["no name object"].message == "{ noName: 'hi', stacks: [] }"
    # message without type, type without message.
    assert results["string"].message == "hi"
    assert results["number name object"].message == "{ name: 1234, stacks: [] }"
    # A file-level (suite) hook failure is named after the file.
    assert results["error.test.ts"].status == "failed"
    assert results["error.test.ts"].message == "throwSuite"

    unhandled = results["Unhandled Rejection: throwSimple"]
    assert unhandled.status == "error"
    assert unhandled.message == "throwSimple"
    assert unhandled.scenario_id is None and unhandled.invariant_id is None
    assert unhandled.test_file == "error.test.ts"  # from "This error originated in "error.test.ts" test file"
    assert "originated in" in (unhandled.detail or "")
    assert all(r.duration_seconds is None for r in report.results)


def test_unhandled_errors_never_carry_ids() -> None:
    doc = (
        '<testsuites><testsuite name="vitest unhandled errors">'
        '<testcase classname="vitest unhandled errors" name="Unhandled Rejection: BID-001 TENANT-001 boom">'
        '<error message="boom" type="Error">Error: boom</error></testcase></testsuite></testsuites>'
    )
    result = parse(doc).results[0]
    assert (result.status, result.scenario_id, result.invariant_id) == ("error", None, None)
    assert result.test_file is None  # the suite's name is a label, not a file


# --- pytest shape ---------------------------------------------------------------------------------

PYTEST = (
    '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
    '<testsuite name="pytest" errors="3" failures="2" skipped="2" tests="9" time="1.234" '
    'timestamp="2026-11-22T03:10:00.000000+00:00" hostname="ci-runner">'
    '<testcase classname="tests.integration.test_bidding.TestWindow" '
    'name="test_BID_001_TENANT_001_no_cross_org" time="0.101">'
    '<failure message="AssertionError: notification for org-b visible to org-a&#10;assert 1 == 0">'
    "self = &lt;TestWindow&gt;&#10;&#10;    def test_BID_001_TENANT_001_no_cross_org(self):&#10;"
    "&gt;       assert leaked == 0&#10;E       AssertionError: notification for org-b visible to org-a"
    "</failure></testcase>"
    '<testcase classname="tests.integration.test_bidding.TestWindow" '
    'name="test_BID_001_TENANT_001_no_cross_org" time="0.002">'
    '<error message="failed on teardown with &quot;RuntimeError: db gone&quot;">'
    "def teardown(): ...&#10;E   RuntimeError: db gone</error></testcase>"
    '<testcase classname="tests.test_api" name="test_users[a-1]" time="0.000">'
    "<error message='failed on setup with \"ConnectionError: refused\"'>"
    "conn = connect()&#10;E   ConnectionError: refused</error></testcase>"
    '<testcase classname="tests.test_api" name="test_users[b-2]" time="0.010" />'
    '<testcase classname="tests.test_api" name="test_skip" time="0.000">'
    '<skipped type="pytest.skip" message="no database">/repo/tests/test_api.py:20: no database</skipped>'
    "</testcase>"
    '<testcase classname="tests.test_api" name="test_xfail" time="0.001">'
    '<skipped type="pytest.xfail" message="known bug" /></testcase>'
    '<testcase classname="tests.test_api" name="test_xpass" time="0.001">'
    '<failure message="[XPASS(strict)] known bug" /></testcase>'
    '<testcase classname="" name="tests.test_broken" time="0.000">'
    '<error message="collection failure">ImportError while importing test module.</error></testcase>'
    '<testcase classname="tests.test_api" name="test_DISPATCH_004_STATE_002[org-a]" time="0.020">'
    "<failure message=\"assert 'open' == 'closed'\">E   AssertionError</failure></testcase>"
    "</testsuite></testsuites>"
)


def test_pytest_document() -> None:
    report = parse(PYTEST)
    assert len(report.results) == 9
    assert [r.status for r in report.results] == [
        "failed",
        "error",
        "error",
        "passed",
        "skipped",
        "skipped",
        "failed",
        "error",
        "failed",
    ]
    call, teardown, setup, passed, skip, xfail, xpass, collection, param = report.results

    # Call failure + teardown error: two results, both kept. The class is part of the name, as in
    # pytest's node id (two classes may share a test name). The teardown error is the harness's:
    # no ids, named after the fixture its traceback starts in, and it names the test it ran after.
    assert call.test_name == "TestWindow::test_BID_001_TENANT_001_no_cross_org"
    assert teardown.test_name == "fixture teardown (teardown)"
    assert (call.scenario_id, call.invariant_id) == ("BID-001", "TENANT-001")
    assert (teardown.scenario_id, teardown.invariant_id) == (None, None)
    assert call.test_file == "tests/integration/test_bidding.py"
    assert call.message == "AssertionError: notification for org-b visible to org-a\nassert 1 == 0"
    assert call.detail is not None and "E       AssertionError" in call.detail
    assert call.duration_seconds == pytest.approx(0.101)
    assert teardown.message == (
        'failed on teardown with "RuntimeError: db gone"\nAfter: TestWindow::test_BID_001_TENANT_001_no_cross_org'
    )

    assert setup.test_name == "test_users[a-1] (setup)"  # no fixture in the traceback: the test's own
    assert setup.test_file == "tests/test_api.py"
    assert setup.message == 'failed on setup with "ConnectionError: refused"\nBlocked 1 test: test_users[a-1]'
    assert setup.scenario_id is None and setup.invariant_id is None
    assert passed.test_name == "test_users[b-2]"
    assert passed.message is None and passed.detail is None
    assert skip.message == "no database"
    assert xfail.message == "known bug"
    assert xpass.message == "[XPASS(strict)] known bug"

    assert collection.message == "collection failure\nBlocked every test in tests/test_broken.py"
    assert collection.scenario_id is None and collection.invariant_id is None
    assert collection.test_name == "tests.test_broken"
    assert collection.test_file == "tests/test_broken.py"

    assert param.test_name == "test_DISPATCH_004_STATE_002[org-a]"
    assert (param.scenario_id, param.invariant_id) == ("DISPATCH-004", "STATE-002")


def test_pytest_tests_of_the_same_name_in_two_classes_stay_two_tests() -> None:
    report = parse(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_shop.TestCheckout" name="test_total"><failure message="a"/></testcase>'
        '<testcase classname="tests.test_shop.TestRefund" name="test_total"><failure message="b"/></testcase>'
        '<testcase classname="tests.test_shop.TestRefund.TestPartial" name="test_total"><failure/></testcase>'
        '<testcase classname="tests.test_shop" name="test_total"><failure message="c"/></testcase>'
        '<testcase classname="CBDD.Tests.Storage.RecoveryTests" name="Recover"><failure/></testcase>'
        "</testsuite></testsuites>"
    )
    assert [(r.test_file, r.test_name) for r in report.results] == [
        ("tests/test_shop.py", "TestCheckout::test_total"),
        ("tests/test_shop.py", "TestRefund::test_total"),
        ("tests/test_shop.py", "TestRefund::TestPartial::test_total"),
        ("tests/test_shop.py", "test_total"),
        ("CBDD.Tests.Storage.RecoveryTests", "Recover"),  # .NET: not a module path, the label stays whole
    ]


def test_bare_testsuite_root_and_file_attribute() -> None:
    doc = (
        '<testsuite name="pytest" tests="1">'
        '<testcase classname="tests.test_api.TestUsers" name="test_x" file="tests/test_api.py" time="1.5"/>'
        '<testcase classname="tests.test_api.TestUsers.TestNested" name="test_y" time="2"/>'
        "</testsuite>"
    )
    first, second = parse(doc).results
    assert first.test_file == "tests/test_api.py"
    assert first.duration_seconds == 1.5
    assert second.test_file == "tests/test_api.py"


def test_nested_testsuites_are_walked() -> None:
    depth = 3000  # deeper than Python's recursion limit
    doc = (
        "<testsuites>"
        + '<testsuite name="outer"><testcase classname="a.test.ts" name="A-1 first"/>'
        + "<testsuite>" * depth
        + '<testcase classname="b.test.ts" name="deep"><failure message="m"/></testcase>'
        + "</testsuite>" * depth
        + '<testcase classname="a.test.ts" name="last"/></testsuite></testsuites>'
    )
    report = parse(doc)
    assert [r.test_name for r in report.results] == ["A-1 first", "deep", "last"]
    assert report.results[1].status == "failed"


# --- statuses and text ----------------------------------------------------------------------------


def test_failure_wins_over_error_and_both_are_in_the_detail() -> None:
    inner = (
        '<failure message="expected 1" type="AssertionError">AssertionError: expected 1</failure>'
        '<failure message="expected 2">second</failure>'
        '<error message="teardown broke" type="Error">Error: teardown broke</error>'
        "<skipped/>"
    )
    result = parse(one_case("BID-001 x", inner=inner)).results[0]
    assert result.status == "failed"
    assert result.message == "expected 1"
    assert result.detail == (
        "[failure] AssertionError: expected 1\nAssertionError: expected 1\n\n"
        "[failure] expected 2\nsecond\n\n"
        "[error] Error: teardown broke\nError: teardown broke"
    )


def test_error_then_skipped_statuses() -> None:
    assert parse(one_case("a", inner='<error message="m"/><skipped/>')).results[0].status == "error"
    skipped = parse(one_case("a", inner="<skipped/>")).results[0]
    assert (skipped.status, skipped.message, skipped.detail) == ("skipped", None, None)


def test_missing_attributes_and_empty_failure() -> None:
    doc = '<testsuites><testsuite><testcase><failure/></testcase><testcase time="abc"/></testsuite></testsuites>'
    failed, passed = parse(doc).results
    assert (failed.status, failed.message, failed.detail) == ("failed", "", None)
    assert failed.test_name is None and failed.test_file is None
    assert passed.duration_seconds is None


def test_unknown_children_are_ignored() -> None:
    inner = "<system-out>log</system-out><flakyFailure message='x'/><rerunFailure/>"
    assert parse(one_case("a", inner=inner)).results[0].status == "passed"


def test_detail_is_capped() -> None:
    body = "x" * 30_000
    result = parse(one_case("a", inner=f'<failure message="{"m" * 25_000}">{body}</failure>')).results[0]
    assert result.detail is not None and len(result.detail) == DETAIL_LIMIT
    assert result.detail.endswith(TRUNCATED)
    assert result.message is not None and result.message.endswith(TRUNCATED)


def test_test_name_chain_is_normalised() -> None:
    doc = one_case("suite  >  inner >   case\nwith\tnewline")  # quoteattr writes &gt; &#10; &#9;
    assert parse(doc).results[0].test_name == "suite > inner > case with newline"


# --- ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BID-001 competitive window > TENANT-001 no cross-org notification", ("BID-001", "TENANT-001")),
        ("TENANT-001 no leak > BID-001 window", ("BID-001", "TENANT-001")),
        ("BID-001 window > DISPATCH-002 reassign", ("BID-001", "DISPATCH-002")),
        ("BID-001 > DISPATCH-002 > IDEMP-003", ("BID-001", "IDEMP-003")),
        ("BID-001 then BID-001 again", ("BID-001", None)),
        ("TENANT-001 only", (None, "TENANT-001")),
        ("no ids here", (None, None)),
        ("parses UTF-8 and SHA-256 input", (None, None)),
        ("test_BID_001_TENANT_001", ("BID-001", "TENANT-001")),
        ("test_window[BID_001-x]", ("BID-001", None)),
        ("test_retry[MAX_RETRIES_3]", (None, None)),
        ("test_user_1", (None, None)),
        ("test_v2_api_10", (None, None)),
        ("test_limit[TIMEOUT_MS]", (None, None)),
        ("test_x[BID_001abc]", (None, None)),
    ],
)
def test_ids_from_names(name: str, expected: tuple[str | None, str | None]) -> None:
    assert ids(name) == expected


def test_ids_from_classname_when_the_name_has_none() -> None:
    assert ids("leak check", classname="tests/integration/BID-007.test.ts") == ("BID-007", None)
    assert ids("TENANT-001 leak", classname="tests/integration/BID-007.test.ts") == ("BID-007", "TENANT-001")
    assert ids("test_leak", classname="tests.test_bidding.TestBID_009") == ("BID-009", None)


def test_invariant_prefixes_are_a_parameter() -> None:
    assert ids("PRIV-002 > BID-001") == ("PRIV-002", "BID-001")
    assert ids("PRIV-002 > BID-001", invariant_prefixes=frozenset({"PRIV"})) == ("BID-001", "PRIV-002")


def test_properties_win_over_the_name() -> None:
    inner = (
        "<properties>"
        '<property name="scenario_id" value="PAY-010"/>'
        '<property name="invariant" value="NOTIF-004"/>'
        '<property name="organizationUnderTest" value="org-a"/>'
        '<property name="keyEntityIds" value=\'{"orgId": "org-a", "driverId": 3}\'/>'
        '<property name="keyEntityIds.bidWindowId" value="bw-17"/>'
        '<property name="evidence" value=\'[{"kind": "db_snapshot", "path": "evidence/rows.json"}]\'/>'
        '<property name="evidence.screenshot" value="evidence/shot.png"/>'
        "</properties>"
        '<failure message="m"/>'
    )
    result = parse(one_case("BID-001 > TENANT-001", inner=inner)).results[0]
    assert (result.scenario_id, result.invariant_id) == ("PAY-010", "NOTIF-004")
    assert result.organization_under_test == "org-a"
    assert result.key_entity_ids == {"orgId": "org-a", "driverId": "3", "bidWindowId": "bw-17"}
    assert [(e.kind, e.path) for e in result.evidence] == [
        ("db_snapshot", "evidence/rows.json"),
        ("screenshot", "evidence/shot.png"),
    ]


def test_one_property_and_the_name_fill_each_other_in() -> None:
    inner = '<properties><property name="scenarioId" value="PAY-010"/></properties>'
    result = parse(one_case("TENANT-001 leak", inner=inner)).results[0]
    assert (result.scenario_id, result.invariant_id) == ("PAY-010", "TENANT-001")


def test_suite_properties_are_defaults() -> None:
    doc = (
        '<testsuites><testsuite name="pytest"><properties>'
        '<property name="organizationUnderTest" value="org-b"/>'
        '<property name="scenarioId" value="BID-100"/>'
        '<property name="keyEntityIds.orgId" value="org-b"/>'
        "</properties>"
        '<testcase classname="tests.test_a" name="test_plain"/>'
        '<testcase classname="tests.test_a" name="test_BID_002">'
        '<properties><property name="keyEntityIds.driverId" value="drv-1"/></properties></testcase>'
        "</testsuite></testsuites>"
    )
    plain, named = parse(doc).results
    assert (plain.scenario_id, plain.organization_under_test) == ("BID-100", "org-b")
    assert named.scenario_id == "BID-002"  # the test's own name is more specific than its suite
    assert named.key_entity_ids == {"orgId": "org-b", "driverId": "drv-1"}


@pytest.mark.parametrize(
    ("prop", "reason"),
    [
        ('<property name="keyEntityIds" value="{oops"/>', "is not valid JSON"),
        ('<property name="keyEntityIds" value="[1]"/>', "must be a JSON object"),
        ('<property name="evidence" value=\'["a"]\'/>', "must be a JSON list of objects"),
        ('<property name="scenarioId" value="' + "X" * 60 + '"/>', "scenario_id"),
    ],
)
def test_bad_properties_are_reported(prop: str, reason: str) -> None:
    with pytest.raises(JUnitError, match=reason) as info:
        parse(one_case("named", inner=f"<properties>{prop}</properties>"))
    assert "testcase #1 'named'" in str(info.value)


# --- hostile and broken input ---------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuites><testsuite><testcase name="&lol9;"/></testsuite></testsuites>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<testsuites><testsuite><testcase name="&x;"/></testsuite></testsuites>
"""
DTD_ONLY = b'<?xml version="1.0"?>\n<!DOCTYPE testsuites SYSTEM "junit.dtd">\n<testsuites/>'


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(JUnitError, match=r"entity declarations are not allowed \(possible entity-expansion"):
        parse(BILLION_LAUGHS)


def test_external_entity_is_refused() -> None:
    with pytest.raises(JUnitError, match=r"external entity.*file:///etc/passwd"):
        parse(EXTERNAL_ENTITY)


def test_dtd_is_refused() -> None:
    with pytest.raises(JUnitError, match=r"DTD\) are not allowed"):
        parse(DTD_ONLY)


def test_malformed_xml_names_line_and_column() -> None:
    doc = b'<testsuites>\n  <testsuite name="a">\n    <testcase name="b"></testsuite>\n</testsuites>'
    with pytest.raises(JUnitError, match=r"^XML is not well-formed: line 3, column \d+: mismatched tag$"):
        parse(doc)
    with pytest.raises(JUnitError, match=r"XML is not well-formed: line 1, column \d+: no element found"):
        parse(b"<testsuites>")


def test_wrong_root_is_named() -> None:
    with pytest.raises(JUnitError, match=r"^root element must be <testsuites> or <testsuite>, got <html>$"):
        parse(b"<html><body/></html>")


@pytest.mark.parametrize("body", [b"", b"  \n\t", b"\xef\xbb\xbf"])
def test_empty_body_is_refused(body: bytes) -> None:
    with pytest.raises(JUnitError, match="empty"):
        parse(body)


def test_junit_error_is_a_value_error() -> None:
    assert issubclass(JUnitError, ValueError)


# --- size and routing -----------------------------------------------------------------------------


def test_ten_thousand_testcases() -> None:
    failure = '<failure message="boom">stack</failure>'
    cases = "".join(
        f'<testcase classname="tests/integration/t{i % 50}.test.ts" name="BID-{i:05d} case > TENANT-001 x" '
        f'time="0.01">{failure if i % 10 == 0 else ""}</testcase>'
        for i in range(10_000)
    )
    report = parse(f'<testsuites><testsuite name="big">{cases}</testsuite></testsuites>')
    assert len(report.results) == 10_000
    assert sum(r.status == "failed" for r in report.results) == 1_000
    assert report.results[9_999].scenario_id == "BID-09999"
    assert report.results[9_999].invariant_id == "TENANT-001"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'<?xml version="1.0"?><testsuites/>', True),
        (b"\xef\xbb\xbf\n  <testsuites/>", True),
        ("<testsuites/>".encode("utf-16"), True),
        (b'{"schemaVersion": 1}', False),
        (b"  \n", False),
        (b"", False),
    ],
)
def test_looks_like_junit(body: bytes, expected: bool) -> None:
    assert looks_like_junit(body) is expected


# -- hostile input (issue 18) ----------------------------------------------------------------------


def test_an_unknown_xml_encoding_is_a_junit_error() -> None:
    with pytest.raises(JUnitError, match="encoding this server cannot read: unknown encoding: x-unknown"):
        parse(b'<?xml version="1.0" encoding="x-unknown"?><testsuites/>')


def test_property_json_nested_5000_deep_is_a_junit_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    inner = f'<properties><property name="keyEntityIds" value="{deep}"/></properties><failure/>'
    with pytest.raises(JUnitError, match="property 'keyEntityIds' is JSON nested too deeply"):
        parse(one_case("BID-001 TENANT-001", inner=inner))


def test_testcases_past_the_cap_are_refused_before_they_are_read() -> None:
    cases = "".join(f'<testcase classname="a" name="c{i}"/>' for i in range(11))
    xml = f"<testsuites><testsuite>{cases}</testsuite></testsuites>"
    assert len(parse_junit(xml.encode(), RUN, max_results=11).results) == 11
    with pytest.raises(JUnitError, match="more than 10 testcases"):
        parse_junit(xml.encode(), RUN, max_results=10)
