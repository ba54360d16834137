"""JUnit XML (vitest and pytest shapes) → Report v1 (DESIGN.md section 5, reference B4).

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
  pytest's dotted ``tests.test_api.TestUsers`` becomes ``tests/test_api.py`` (class parts dropped),
  any other label is kept as it is. A pytest collection error (``classname=""``) takes the module
  path from its name; a vitest unhandled error takes the file its body says it originated in.
* **testName** — one line; vitest's describe chain as ``a > b > c``; pytest ``[params]`` kept.
  Same-named cases (params, a call failure plus a teardown error) stay separate results.
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
    results: list[Result] = []
    for index, (case, suite) in enumerate(_testcases(root), start=1):
        if index > max_results:
            raise TooManyTestcases(f"the report has more than {max_results:,} testcases (the limit per report)")
        results.append(_result(case, suite, index, invariant_prefixes))
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
    return _Suite(name=name, file=element.get("file") or parent.file, meta=meta.under(parent.meta))


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


def _result(case: Element, suite: _Suite, index: int, invariant_prefixes: frozenset[str]) -> Result:
    raw_name = case.get("name") or ""
    classname = case.get("classname") or ""
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

    test_file = case.get("file")
    if not test_file and unhandled and detail:
        origin = _ORIGINATED_IN.search(detail)  # "This error originated in "x.test.ts" test file."
        test_file = origin.group(1) if origin else None
    test_file = test_file or _file_from_classname(classname) or suite.file
    if not test_file and not classname.strip() and _DOTTED.fullmatch(raw_name):
        test_file = _module_to_path(raw_name)  # pytest collection error: name = the module path

    try:
        return Result(
            scenario_id=scenario,
            invariant_id=invariant,
            status=status,
            organization_under_test=meta.organization,
            key_entity_ids=meta.key_entity_ids,
            message=_cap(message, MESSAGE_LIMIT) if message is not None else None,
            detail=_cap(detail, DETAIL_LIMIT) if detail is not None else None,
            test_file=_cap(test_file, 1000) if test_file else None,
            test_name=_cap(_pytest_class(classname) + _test_name(raw_name), 2000) or None,
            duration_seconds=_duration(case.get("time")),
            evidence=list(meta.evidence),
        )
    except ValidationError as exc:
        raise JUnitError(f"{where}: {_first_error(exc)}") from None


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


def _file_from_classname(classname: str) -> str | None:
    classname = classname.strip()
    if not classname:
        return None
    if "/" in classname or "\\" in classname or _SOURCE_FILE.search(classname):
        return classname  # vitest: the file path relative to the project root
    if _DOTTED.fullmatch(classname):
        return _module_to_path(classname) or classname  # pytest: tests.test_api.TestUsers
    return classname  # some other tool's label: still the best identity there is


def _pytest_class(classname: str) -> str:
    """``TestCheckout::`` for pytest's ``tests.test_shop.TestCheckout`` (nested classes joined the
    same way), as in pytest's node id: the file alone does not tell ``TestCheckout::test_total``
    from ``TestRefund::test_total``, and two tests must never become one incident."""
    classname = classname.strip()
    if not _DOTTED.fullmatch(classname) or _SOURCE_FILE.search(classname):
        return ""
    parts = classname.split(".")
    classes: list[str] = []
    while len(parts) > 1 and parts[-1][:1].isupper():
        classes.insert(0, parts.pop())
    if not parts[-1][:1].islower():
        return ""  # not a Python module path (.NET's CBDD.Tests.Storage.RecoveryTests): the label stays whole
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
