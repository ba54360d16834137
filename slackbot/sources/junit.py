"""JUnit XML → Report v1 (DESIGN.md section 5, reference B4).

Read from the real tools' output (tests/ingest/test_junit_producers.py runs pytest, vitest 3 and
jest + jest-junit; tests/fixtures/junit holds real NUnit/JunitXml.TestLogger, gotestsum,
go-junit-report and Maven Surefire files; shared/fixtures/external vitest 5's snapshots).

Parsing goes through defusedxml: entity declarations (billion laughs), external entities and any
``<!DOCTYPE>`` are refused with a :class:`JUnitError` that says which one; malformed XML gives the
line and column. Everything after parsing is a single walk over the tree (linear time).

Per ``<testcase>``:

* **status** — ``failed`` when it has a ``<failure>`` child, else ``error`` when it has an
  ``<error>`` child, else ``skipped`` when it has ``<skipped>``, else ``passed``. When a case has both
  a failure and an error (an assertion failed *and* setup/teardown broke), the failure is the
  primary status — it is the product signal — and the error is kept in ``detail`` next to it.
* **message** — the primary element's ``message`` attribute, else the first non-blank line of its
  body, else its ``type``, else ``""``. **detail** — the body; with several failure/error elements,
  one section per element headed ``[failure] type: message``. Both are capped (20,000 chars) with a
  ``… [truncated]`` marker.
* **ids** — from ``<property>`` elements (``scenarioId``/``scenario_id``/``scenario``,
  ``invariantId``/``invariant_id``/``invariant``), else from the test name, else from the
  classname, else from ``<property>`` elements of the enclosing ``<testsuite>``\\ s. In a name the
  first id is the scenario and the second the invariant, except that an id whose prefix is in
  ``invariant_prefixes`` is always the invariant. pytest names cannot contain ``-``, so ``BID_001``
  is read as ``BID-001`` too. The ``vitest unhandled errors`` suite never yields ids.
* **testFile** — the ``file`` attribute, else the classname: vitest's is already a relative path,
  pytest's dotted ``tests.test_api.TestUsers`` becomes ``tests/test_api.py`` (class parts dropped;
  pytest's when the suite is ``pytest`` or the module is ``test_*``/``*_test``), a Go package, a
  Java or .NET class is kept as it is. jest-junit's default classname is a label (``Checkout
  total``), not a file: the first stack frame outside node_modules names the file, relative to the
  checkout (``…/<repo>/<repo>/`` on GitHub Actions). A pytest collection error (``classname=""``)
  takes the module path from its name; a vitest unhandled error takes the file its body says it
  originated in; gotestsum's ``TestMain`` (``classname=""``) takes its suite, the package.
* **testName** — one line; vitest's describe chain as ``a > b > c``; pytest's class as in its node
  id (``TestCheckout::test_total``) and ``[params]`` kept. Same-named cases (params, a call failure
  plus a teardown error) stay separate results.
* **Harness failures** — a failed hook (vitest's suite-named testcase, jest's ``_callCircusHook``
  stack, NUnit ``OneTimeSetUp:``/``SetUp``/``TearDown :``), a pytest setup/teardown error or
  collection error, a vitest file that did not load, jest's "Test suite failed to run", Go's
  ``[build failed]``/``[setup failed]``/``TestMain``, an unhandled error: no ids (the contract check
  presets the harness class), named after what broke (``fixture database (setup)``, the describe
  chain, ``OneTimeSetUp``) so the tests it blocked share one incident, and the message lists them
  (``Blocked 2 tests: …``, ``After: …`` for a teardown, ``Blocked every test in …``).
* **durationSeconds** — ``time`` when it is a non-negative number, else None (vitest snapshots: ``...``).
* Malformed-XML columns are 1-based.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.parsers import expat

from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser
from pydantic import ValidationError

from slackbot.sources.report import ID_PATTERN, MAX_RESULTS, Report, Result, ResultStatus, RunInfo

DEFAULT_INVARIANT_PREFIXES: frozenset[str] = frozenset({"TENANT", "IDEMP", "NOTIF", "ASSIGN", "STATE"})
# Upper-case tokens shaped like ids that are not ids (``UTF-8``, ``SHA-256``, ``RFC-7231`` …).
NON_ID_PREFIXES: frozenset[str] = frozenset(
    {"UTF", "UCS", "SHA", "MD", "ISO", "RFC", "HTTP", "HTTPS", "TLS", "SSL", "UTC", "GMT", "CVE", "ES", "ID"}
)
MESSAGE_LIMIT = 20_000
DETAIL_LIMIT = 20_000
TRUNCATED = "… [truncated]"
VITEST_UNHANDLED_SUITE = "vitest unhandled errors"
# expat is fed this much per call: one call holds the GIL, so a big document is fed in pieces.
_FEED = 64 * 1024

# ``BID_001`` as written in a pytest function name: an upper-case run of 2-16 that starts a word
# (or a camel-case hump: ``TestBID_001``), ``_``, 1-12 digits, then no letter/digit. Not the tail of
# an UPPER_SNAKE constant (``MAX_RETRIES_3``), not inside a longer upper-case run.
_UNDERSCORE_ID = re.compile(r"(?<![A-Z0-9])(?<![A-Z]_)([A-Z][A-Z0-9]{1,15})_([0-9]{1,12})(?![A-Za-z0-9])")
_CONTROL_WS = re.compile(r"[\r\n\t\f\v]+")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SOURCE_FILE = re.compile(r"\.(?:[cm]?[jt]sx?|vue|svelte|py)$")
_ORIGINATED_IN = re.compile(r'originated in "([^"\n]{1,1000})" test file')
_NON_BLANK = re.compile(r"\S")


class JUnitError(ValueError):
    """The body is not an acceptable JUnit XML document; the message says why."""


class TooManyTestcases(JUnitError):
    """More testcases than the caller's limit; raised at the first one past it."""


def looks_like_junit(body: bytes) -> bool:
    """True when the first byte after a BOM and whitespace is ``<`` (XML), as opposed to JSON."""
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if body.startswith(bom):
            if bom != b"\xef\xbb\xbf":
                # UTF-16: compare the decoded start.
                head = body[:200].decode("utf-16", errors="ignore").lstrip()
                return head.startswith("<")
            body = body[len(bom) :]
            break
    return body[:4096].lstrip().startswith(b"<")


def parse_junit(
    xml: bytes,
    run: RunInfo,
    *,
    invariant_prefixes: frozenset[str] = DEFAULT_INVARIANT_PREFIXES,
    max_results: int = MAX_RESULTS,
) -> Report:
    """Parse a JUnit XML document into a Report for ``run``. Raises :class:`JUnitError`; a
    document with more than ``max_results`` testcases is refused before the extra ones are read."""
    root = _parse_xml(xml)
    root_tag = _local(root.tag)
    if root_tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"root element must be <testsuites> or <testsuite>, got <{root_tag}>")
    checkout = _checkout_dir(run.repository)
    entries: list[_Entry] = []
    for index, (case, suite) in enumerate(_testcases(root), start=1):
        if index > max_results:
            raise TooManyTestcases(f"the report has more than {max_results:,} testcases (the limit per report)")
        entries.append(_entry(case, suite, index, invariant_prefixes, checkout))
    try:
        results = _with_harness(entries)
    except ValidationError as exc:
        raise JUnitError(f"report is not valid: {_first_error(exc)}") from None
    try:
        return Report(schema_version=1, run=run, results=results)
    except ValidationError as exc:  # e.g. more results than the format allows
        raise JUnitError(f"report is not valid: {_first_error(exc)}") from None


# --- XML ------------------------------------------------------------------------------------------


def _parse_xml(xml: bytes) -> Element:
    if not xml.removeprefix(b"\xef\xbb\xbf").strip():
        raise JUnitError("JUnit XML body is empty")
    parser = DefusedXMLParser(target=TreeBuilder(), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    # Entity declarations are refused one by one (with a message that names them) before a DTD is;
    # any DTD left is refused when its declaration ends — before the document body is read.
    parser.parser.EndDoctypeDeclHandler = _refuse_doctype
    try:
        for start in range(0, len(xml), _FEED):
            parser.feed(xml[start : start + _FEED])
        root: Element = parser.close()
    except EntitiesForbidden as exc:
        if exc.sysid or exc.pubid:
            raise JUnitError(
                f"XML external entity declarations are not allowed (possible XXE attack): "
                f"entity {exc.name!r} refers to {exc.sysid or exc.pubid!r}"
            ) from None
        raise JUnitError(
            f"XML entity declarations are not allowed (possible entity-expansion attack): entity {exc.name!r}"
        ) from None
    except ExternalReferenceForbidden as exc:
        raise JUnitError(
            f"XML external entity references are not allowed (possible XXE attack): {exc.sysid!r}"
        ) from None
    except DTDForbidden:
        raise JUnitError(
            "XML document type declarations (<!DOCTYPE …>, DTD) are not allowed in a JUnit report"
        ) from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, -1))
        code = getattr(exc, "code", None)
        reason = expat.ErrorString(code) if isinstance(code, int) else str(exc)
        raise JUnitError(f"XML is not well-formed: line {line}, column {column + 1}: {reason}") from None
    except LookupError as exc:  # <?xml encoding="x-unknown"?>: expat asks Python for the codec
        raise JUnitError(f"XML declares an encoding this server cannot read: {exc}") from None
    except ValueError as exc:  # e.g. a multi-byte encoding expat does not support
        raise JUnitError(f"XML cannot be read: {exc}") from None
    return root


def _refuse_doctype() -> None:
    raise DTDForbidden(None, None, None)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _text(element: Element) -> str:
    return "".join(element.itertext())


# --- walking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Meta:
    """What ``<property>`` elements say about a testcase (or, as defaults, about a suite)."""

    scenario: str | None = None
    invariant: str | None = None
    organization: str | None = None
    key_entity_ids: dict[str, str] = field(default_factory=dict)
    evidence: tuple[dict[str, Any], ...] = ()

    def under(self, outer: _Meta) -> _Meta:
        """This metadata with ``outer`` (an enclosing suite's) filling the gaps."""
        return _Meta(
            scenario=self.scenario or outer.scenario,
            invariant=self.invariant or outer.invariant,
            organization=self.organization or outer.organization,
            key_entity_ids={**outer.key_entity_ids, **self.key_entity_ids},
            evidence=outer.evidence + self.evidence,
        )


@dataclass(frozen=True)
class _Suite:
    name: str
    file: str | None
    meta: _Meta
    key: int = 0  # which <testsuite> element: vitest's hooks block the tests of their own suite


def _testcases(root: Element) -> Iterator[tuple[Element, _Suite]]:
    """Every ``<testcase>`` in document order with its innermost suite; iterative (no recursion limit)."""
    top = _suite_context(root, _Suite(name="", file=None, meta=_Meta()))
    stack: list[tuple[Iterator[Element], _Suite]] = [(iter(root), top)]
    while stack:
        children, suite = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        tag = _local(child.tag)
        if tag == "testsuite":
            stack.append((iter(child), _suite_context(child, suite)))
        elif tag == "testcase":
            yield child, suite
        # Anything else (properties, system-out, …) is not a test.


def _suite_context(element: Element, parent: _Suite) -> _Suite:
    name = element.get("name") or ""
    meta = _meta(_properties(element), f"testsuite {name!r}")
    return _Suite(name=name, file=element.get("file") or parent.file, meta=meta.under(parent.meta), key=id(element))


def _properties(element: Element) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for child in element:
        if _local(child.tag) != "properties":
            continue
        for prop in child:
            if _local(prop.tag) != "property":
                continue
            name = (prop.get("name") or "").strip()
            value = prop.get("value")
            if value is None:
                value = _text(prop)
            if name:
                found.append((name, value.strip()))
    return found


def _norm_key(name: str) -> str:
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


def _meta(properties: list[tuple[str, str]], where: str) -> _Meta:
    scenario = invariant = organization = None
    key_entity_ids: dict[str, str] = {}
    evidence: list[dict[str, Any]] = []
    for name, value in properties:
        head, dot, tail = name.partition(".")
        key = _norm_key(head)
        if dot:
            if key == "keyentityids" and tail and value:
                key_entity_ids.setdefault(tail, value)
            elif key == "evidence" and tail and value:
                evidence.append({"kind": tail, "path": value})
            continue
        if not value:
            continue
        if key in ("scenarioid", "scenario"):
            scenario = scenario or value
        elif key in ("invariantid", "invariant"):
            invariant = invariant or value
        elif key == "organizationundertest":
            organization = organization or value
        elif key == "keyentityids":
            for k, v in _json_object(value, name, where).items():
                if v is not None:
                    key_entity_ids.setdefault(str(k), str(v))
        elif key == "evidence":
            evidence.extend(_json_evidence(value, name, where))
    return _Meta(scenario, invariant, organization, key_entity_ids, tuple(evidence))


def _json(value: str, name: str, where: str) -> Any:
    try:
        return json.loads(value)
    except RecursionError:
        raise JUnitError(f"{where}: property {name!r} is JSON nested too deeply") from None
    except ValueError as exc:
        raise JUnitError(f"{where}: property {name!r} is not valid JSON: {exc}") from None


def _json_object(value: str, name: str, where: str) -> dict[str, Any]:
    data = _json(value, name, where)
    if not isinstance(data, dict):
        raise JUnitError(f"{where}: property {name!r} must be a JSON object, got {type(data).__name__}")
    return data


def _json_evidence(value: str, name: str, where: str) -> list[dict[str, Any]]:
    data = _json(value, name, where)
    items = [data] if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise JUnitError(
            f"{where}: property {name!r} must be a JSON list of objects like "
            '{"kind": "db_snapshot", "path": "evidence/…"}'
        )
    return items


# --- one testcase ---------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One testcase as parsed, before the harness pass decides whether it blocked other tests."""

    result: Result
    suite: int
    name: str  # the test name as shown (class prefix included)
    shape: str  # "vitest" (classname is the file), "jest" (classname is a label), "" otherwise
    harness: str | None = None  # what broke, for a failure of the harness rather than of a test
    label: str | None = None  # the harness failure's own name: tests it blocked share it
    blocks_itself: bool = True  # the test itself did not run (a setup, a beforeAll failed)
    after: bool = False  # the test ran, then its teardown failed
    stopped: str | None = None  # what did not run at all: "every test in tests/test_x.py"
    blocked: list[str] = field(default_factory=list)


def _entry(
    case: Element, suite: _Suite, index: int, invariant_prefixes: frozenset[str], checkout: str | None
) -> _Entry:
    raw_name = case.get("name") or ""
    raw_classname = case.get("classname") or ""
    classname = raw_classname.strip()
    where = f"testcase #{index} {raw_name!r}"

    failures: list[tuple[str, Element]] = []
    skipped: Element | None = None
    for child in case:
        tag = _local(child.tag)
        if tag in ("failure", "error"):
            failures.append((tag, child))
        elif tag == "skipped" and skipped is None:
            skipped = child

    status: ResultStatus
    message: str | None = None
    detail: str | None = None
    if failures:
        kinds = {kind for kind, _ in failures}
        status = "failed" if "failure" in kinds else "error"
        primary_kind = "failure" if status == "failed" else "error"
        primary = next(element for kind, element in failures if kind == primary_kind)
        message = _message(primary)
        detail = _detail(failures)
    elif skipped is not None:
        status = "skipped"
        body = _body(skipped)
        message = skipped.get("message") or _first_line(body) or None
        detail = body or None
    else:
        status = "passed"

    unhandled = suite.name == VITEST_UNHANDLED_SUITE
    meta = _Meta() if unhandled else _meta(_properties(case), where)
    if unhandled:
        scenario = invariant = None  # not a test: the contract check flags it
    else:
        name_ids = _ids_in(raw_name, invariant_prefixes)
        class_ids = _ids_in(classname, invariant_prefixes)
        scenario = meta.scenario or name_ids[0] or class_ids[0] or suite.meta.scenario
        invariant = meta.invariant or name_ids[1] or class_ids[1] or suite.meta.invariant
        meta = meta.under(suite.meta)

    # jest-junit's defaults: classname and name are both "<describe chain> <title>", and no file.
    label_classname = bool(classname) and _is_label(raw_classname, raw_name)
    test_file = case.get("file")
    if not test_file and unhandled and detail:
        origin = _ORIGINATED_IN.search(detail)  # "This error originated in "x.test.ts" test file."
        test_file = origin.group(1) if origin else None
    if not test_file and classname == _JEST_SUITE_FAILED and _is_source_path(raw_name):
        test_file = raw_name  # jest-junit's reportTestSuiteErrors: the name is the file
    if not test_file and label_classname:
        # The label is not a file, and two files may hold the same describe and test names: the
        # failure's own stack names the file.
        test_file = _file_from_stack(detail, checkout) or suite.file
    python = _python_classname(classname, suite.name)
    if not test_file and not label_classname:
        test_file = _file_from_classname(classname, python) or suite.file
    if not test_file and not classname and _DOTTED.fullmatch(raw_name):
        test_file = _module_to_path(raw_name)  # pytest collection error: name = the module path
    if not test_file and not classname and suite.name:
        test_file = suite.name  # gotestsum's TestMain: the suite is the Go package

    name = _test_name(raw_name)
    if python:
        name = _pytest_class(classname) + name
    shape = "vitest" if classname and _is_source_path(classname) else "jest" if label_classname else ""
    try:
        result = Result(
            scenario_id=scenario,
            invariant_id=invariant,
            status=status,
            organization_under_test=meta.organization,
            key_entity_ids=meta.key_entity_ids,
            message=_cap(message, MESSAGE_LIMIT) if message is not None else None,
            detail=_cap(detail, DETAIL_LIMIT) if detail is not None else None,
            test_file=_cap(test_file, 1000) if test_file else None,
            test_name=_cap(name, 2000) or None,
            duration_seconds=_duration(case.get("time")),
            evidence=list(meta.evidence),
        )
    except ValidationError as exc:
        raise JUnitError(f"{where}: {_first_error(exc)}") from None
    entry = _Entry(result, suite.key, name, shape)
    if failures:
        _classify_harness(entry, classname, raw_name, message or "", detail or "", unhandled, failures)
    return entry


# --- harness failures -----------------------------------------------------------------------------
#
# A hook, a fixture, a setup or teardown, a module that does not import, an unhandled error: the
# harness broke, not the product. Such a failure carries no scenario or invariant (the contract
# check then presets it to the harness class), is named after what broke (the tests it blocked
# share that name, so they are one incident) and its message names the tests it blocked.

_PYTEST_PHASE = re.compile(r"^failed on (setup|teardown) with ")
_PYTEST_FIXTURE = re.compile(r"^\s*(?:async\s+)?def ([A-Za-z_][A-Za-z0-9_]*)\(", re.MULTILINE)
_NUNIT_PHASE = re.compile(r"^(OneTimeSetUp|OneTimeTearDown|SetUp|TearDown)\s*:")
_NUNIT_SETUP_FRAME = re.compile(r"^\s*at [^\n(]*\.(SetUp|OneTimeSetUp)\(\)", re.MULTILINE)
_GO_PACKAGE_FAILURES = frozenset({"[build failed]", "[setup failed]", "Failure"})
_JEST_SUITE_FAILED = "Test suite failed to run"
_BLOCKED_SHOWN = 20


def _classify_harness(
    entry: _Entry,
    classname: str,
    raw_name: str,
    message: str,
    detail: str,
    unhandled: bool,
    failures: list[tuple[str, Element]],
) -> None:
    kinds = {kind for kind, _ in failures}
    phase = _PYTEST_PHASE.match(message)
    nunit = _NUNIT_PHASE.match(message)
    if unhandled:
        entry.harness, entry.label, entry.blocks_itself = "unhandled error", entry.name, False
    elif kinds == {"error"} and not classname and message == "collection failure":
        entry.harness, entry.label = "collection error (the module did not import)", entry.name
        entry.blocks_itself, entry.stopped = False, f"every test in {entry.result.test_file or entry.name}"
    elif kinds == {"error"} and phase:
        fixture = _PYTEST_FIXTURE.search(detail)
        what = f"fixture {fixture.group(1)}" if fixture else entry.name
        entry.harness, entry.label = f"{phase.group(1)} error", f"{what} ({phase.group(1)})"
        entry.blocks_itself = phase.group(1) == "setup"
        entry.after = not entry.blocks_itself
    elif nunit or _NUNIT_SETUP_FRAME.match(detail):
        hook = nunit.group(1) if nunit else _NUNIT_SETUP_FRAME.match(detail).group(1)  # type: ignore[union-attr]
        entry.harness, entry.label = f"{hook} failed", hook
        entry.blocks_itself = "SetUp" in hook
        entry.after = not entry.blocks_itself
    elif kinds == {"error"} and raw_name in _GO_PACKAGE_FAILURES and message in ("Build error", "Runtime error"):
        entry.harness, entry.label = f"package failure ({message.lower()})", raw_name
        entry.blocks_itself, entry.stopped = False, f"every test of package {entry.result.test_file}"
    elif not classname and raw_name == "TestMain":
        entry.harness, entry.label, entry.blocks_itself = "package failure (TestMain)", raw_name, False
        entry.stopped = f"every test of package {entry.result.test_file}"
    elif entry.shape == "jest" and classname == _JEST_SUITE_FAILED:
        entry.harness, entry.label, entry.blocks_itself = "test file failed to run", _JEST_SUITE_FAILED, False
        entry.stopped = f"every test in {entry.result.test_file or raw_name}"
    elif entry.shape == "jest" and "_callCircusHook" in detail:
        entry.harness, entry.label = "hook failed", None  # named after its tests, once they are known


def _with_harness(entries: list[_Entry]) -> list[Result]:
    """Results in document order, harness failures marked (see above)."""
    by_suite: dict[int, list[_Entry]] = {}
    for entry in entries:
        by_suite.setdefault(entry.suite, []).append(entry)
    scopes: dict[int, dict[str, list[_Entry]]] = {}
    for entry in entries:
        if entry.shape == "vitest" and entry.harness is None and entry.result.is_failure:
            if entry.suite not in scopes:
                scopes[entry.suite] = _describe_scopes(by_suite[entry.suite])
            _vitest_hook(entry, by_suite[entry.suite], scopes[entry.suite])

    groups: dict[tuple[object, ...], list[_Entry]] = {}
    for entry in entries:
        if entry.harness is None:
            continue
        if entry.label is None:  # jest: one hook failure per suite and error
            key: tuple[object, ...] = (entry.suite, entry.harness, _first_line(entry.result.message or ""))
        else:
            key = (entry.result.test_file, entry.harness, entry.label)
        groups.setdefault(key, []).append(entry)
    for members in groups.values():
        label = members[0].label or _hook_label([m.name for m in members])
        blocked = list(dict.fromkeys(name for m in members for name in m.blocked))
        blocked += [m.name for m in members if m.blocks_itself and m.name not in blocked]
        ran = list(dict.fromkeys(m.name for m in members if m.after))
        stopped = members[0].stopped
        for member in members:
            member.result = _as_harness(member, label, blocked, ran, stopped)
    return [entry.result for entry in entries]


def _describe_scopes(suite: list[_Entry]) -> dict[str, list[_Entry]]:
    """Each describe block of a vitest file, by its whole chain (``a > b``) and by its own name
    (``b``), with the testcases under it: one pass, so a big file is not scanned per failure."""
    found: dict[str, list[_Entry]] = {}
    for entry in suite:
        parts = entry.name.split(" > ")
        for depth in range(1, len(parts)):
            for key in {" > ".join(parts[:depth]), parts[depth - 1]}:
                found.setdefault(key, []).append(entry)
    return found


def _vitest_hook(entry: _Entry, suite: list[_Entry], scopes: dict[str, list[_Entry]]) -> None:
    """vitest reports a failed beforeAll/afterAll as a testcase named after its describe block (the
    whole chain in vitest 5, the innermost name in vitest 3), and a file that failed to load (or
    whose top-level hook failed) as one named after the file; the tests under it are the ones it
    skipped. The hook is named by its whole chain, as its tests are."""
    whole_file = entry.name == entry.result.test_file
    under = [o for o in suite if o is not entry] if whole_file else scopes.get(entry.name, [])
    if not under and not whole_file:
        return  # an ordinary test
    entry.harness = "file failed to load or its hook failed" if whole_file else "hook failed"
    entry.label, entry.blocks_itself = entry.name, False
    if under and not whole_file:
        scope = f" > {entry.name} > "
        chain = f" > {under[0].name}"
        entry.label = chain[3 : chain.index(scope) + len(scope) - 3]
    # Tests that ran (passed or failed) were not blocked: an afterAll failed, after them. Those
    # skipped by a beforeAll cannot be told from those skipped on their own.
    if all(o.result.status == "skipped" for o in under):
        entry.blocked = [o.name for o in under]
    if whole_file and not under:
        entry.stopped = f"every test in {entry.name}"  # the file did not load: none was collected


def _hook_label(names: list[str]) -> str:
    """jest names no hook: what its tests' names share is the describe block it belongs to."""
    words = [name.split() for name in names]
    common: list[str] = []
    for column in zip(*words, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    shared = " ".join(common) if len(names) > 1 and common else names[0]
    return f"{shared} (hook)"


def _as_harness(entry: _Entry, label: str, blocked: list[str], ran: list[str], stopped: str | None) -> Result:
    result = entry.result
    lines: list[str] = [f"Blocked {stopped}"] if stopped else []
    if blocked:
        shown = ", ".join(blocked[:_BLOCKED_SHOWN])
        more = f" and {len(blocked) - _BLOCKED_SHOWN} more" if len(blocked) > _BLOCKED_SHOWN else ""
        lines.append(f"Blocked {len(blocked)} test{'s' if len(blocked) != 1 else ''}: {shown}{more}")
    if ran:
        lines.append(f"After: {', '.join(ran[:_BLOCKED_SHOWN])}")
    message = "\n".join([result.message or entry.harness or "", *lines])
    listing = "".join(f"\n  - {name}" for name in blocked)
    header = f"Harness failure: {entry.harness}." + (f"\nBlocked tests:{listing}" if blocked else "")
    header += f"\nBlocked {stopped}." if stopped else ""
    detail = f"{header}\n\n{result.detail}" if result.detail else header
    return result.model_copy(
        update={
            "scenario_id": None,
            "invariant_id": None,
            "test_name": _cap(label, 2000),
            "message": _cap(message, MESSAGE_LIMIT),
            "detail": _cap(detail, DETAIL_LIMIT),
        }
    )


def _body(element: Element) -> str:
    """The element's text without the leading blank lines and trailing whitespace vitest adds."""
    text = _text(element)
    first = _NON_BLANK.search(text)
    if first is None:
        return ""
    start = text.rfind("\n", 0, first.start()) + 1
    return text[start:].rstrip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _message(element: Element) -> str:
    return element.get("message") or _first_line(_body(element)) or (element.get("type") or "").strip() or ""


def _detail(failures: list[tuple[str, Element]]) -> str | None:
    if len(failures) == 1:
        return _body(failures[0][1]) or None
    sections: list[str] = []
    for kind, element in failures:
        label = ": ".join(part for part in (element.get("type"), element.get("message")) if part)
        header = f"[{kind}] {label}".rstrip()
        body = _body(element)
        sections.append(f"{header}\n{body}" if body else header)
    return "\n\n".join(sections)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _test_name(name: str) -> str:
    """Single-line, with vitest's describe chain as ``a > b > c``; pytest ``[params]`` kept as they are."""
    one_line = _CONTROL_WS.sub(" ", name)
    if " > " in one_line:
        one_line = " > ".join(part.strip() for part in one_line.split(" > "))  # linear, unlike a regex
    return one_line.strip()


def _ids_in(text: str, invariant_prefixes: frozenset[str]) -> tuple[str | None, str | None]:
    """(scenario, invariant) named in a test name or classname, as described in the module doc."""
    if not text:
        return None, None
    found: list[tuple[int, int, str, str]] = []
    for match in ID_PATTERN.finditer(text):
        found.append((match.start(), match.end(), match.group(1), match.group(2)))
    for match in _UNDERSCORE_ID.finditer(text):
        found.append((match.start(), match.end(), match.group(1), match.group(2)))
    found.sort()
    others: list[str] = []
    invariants: list[str] = []
    end = -1
    for start, stop, prefix, tail in found:
        if start < end:
            continue  # overlaps an id already taken
        end = stop
        if prefix in invariant_prefixes:
            bucket = invariants
        elif prefix in NON_ID_PREFIXES:
            continue
        else:
            bucket = others
        ident = f"{prefix}-{tail}"
        if ident not in bucket:
            bucket.append(ident)
    scenario = others[0] if others else None
    invariant = invariants[0] if invariants else (others[1] if len(others) > 1 else None)
    return scenario, invariant


def _is_source_path(text: str) -> bool:
    return "/" in text or "\\" in text or bool(_SOURCE_FILE.search(text))


def _is_label(raw_classname: str, raw_name: str) -> bool:
    """A classname that is a human label rather than a file, module or class: jest-junit's default
    ``{classname} {title}`` (the describe chain and the title, with spaces; the same as the name)."""
    classname = raw_classname.strip()
    if _is_source_path(classname):
        return False
    return raw_classname == raw_name or any(ch.isspace() for ch in raw_classname)


def _python_classname(classname: str, suite_name: str) -> bool:
    """pytest's ``tests.test_api.TestUsers``, as opposed to a Java or .NET class
    (``org.acme.FailingTest``): pytest's suite is named ``pytest`` unless configured otherwise,
    and its modules are ``test_*`` or ``*_test`` unless configured otherwise."""
    if not _DOTTED.fullmatch(classname) or _SOURCE_FILE.search(classname):
        return False
    parts = classname.split(".")
    while len(parts) > 1 and parts[-1][:1].isupper():
        parts.pop()
    module = parts[-1]
    if not module[:1].islower():
        return False  # .NET: CBDD.Tests.Storage.RecoveryTests
    return suite_name == "pytest" or module.startswith("test_") or module.endswith("_test")


def _file_from_classname(classname: str, python: bool) -> str | None:
    if not classname:
        return None
    if python:
        return _module_to_path(classname) or classname  # pytest: tests.test_api.TestUsers
    return classname  # a file (vitest), a package (Go), a class (Java, .NET): the identity there is


# A stack frame's file: ``at fn (/abs/or/rel/path.test.js:12:3)`` or ``at /path.test.js:12:3``.
_STACK_FILE = re.compile(r"^\s*at (?:[^\n(]*\()?((?:[A-Za-z]:)?[^\s():]+\.[cm]?[jt]sx?):\d+:\d+\)?\s*$", re.MULTILINE)


def _file_from_stack(detail: str | None, checkout: str | None) -> str | None:
    """The test file in a JavaScript stack: the first frame outside node_modules and Node itself,
    relative to the checkout (GitHub Actions checks ``owner/name`` out in ``…/name/name/``)."""
    if not detail:
        return None
    for match in _STACK_FILE.finditer(detail[:DETAIL_LIMIT]):
        path = match.group(1)
        if "/node_modules/" in path or "\\node_modules\\" in path or path.startswith("node:"):
            continue
        if checkout and path.startswith("/"):
            cut = path.rfind(checkout)
            if cut >= 0 and len(path) > cut + len(checkout):
                path = path[cut + len(checkout) :]
        return path
    return None


def _checkout_dir(repository: str) -> str | None:
    name = repository.rstrip("/").rsplit("/", 1)[-1]
    return f"/{name}/" if name else None


def _pytest_class(classname: str) -> str:
    """``TestCheckout::`` for pytest's ``tests.test_shop.TestCheckout`` (nested classes joined the
    same way), as in pytest's node id: the file alone does not tell ``TestCheckout::test_total``
    from ``TestRefund::test_total``, and two tests must never become one incident."""
    parts = classname.split(".")
    classes: list[str] = []
    while len(parts) > 1 and parts[-1][:1].isupper():
        classes.insert(0, parts.pop())
    return "".join(f"{name}::" for name in classes)


def _module_to_path(dotted: str) -> str | None:
    parts = dotted.split(".")
    while parts and parts[-1][:1].isupper():
        parts.pop()  # class (and nested class) names
    return "/".join(parts) + ".py" if parts else None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg", "invalid"))
