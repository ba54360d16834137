"""Property tests (issue 18): random and mutated JUnit XML and zips never make the JUnit parser or
the artifact reader raise anything but their documented errors (JUnitError, UnsafeArchive: both
ValueErrors with a message), and a signed ``/ingest/junit`` never answers 5xx to a mutated body."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slackbot.app import build_asgi
from slackbot.clients.artifacts import ArchiveLimits, UnsafeArchive, extract
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from slackbot.sources.artifact_reader import read_artifact
from slackbot.sources.junit import JUnitError, parse_junit
from slackbot.sources.report import RunInfo
from tests.conftest import FIXTURES, RUNBOOKS

RUN = RunInfo(repository="acme/dispatch", run_id="9187", suite="nightly")
SEEDS = [
    (FIXTURES / "vitest-junit-snapshot-hook-failures.xml").read_bytes(),
    (FIXTURES / "vitest-junit-snapshot-format-error-and-unhandled.xml").read_bytes(),
    b'<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="t" file="tests/a.py">'
    b'<properties><property name="scenarioId" value="BID-001"/></properties>'
    b'<testcase classname="tests.test_api.TestUsers" name="test_BID_001_TENANT_001[x]" time="0.1">'
    b'<properties><property name="keyEntityIds" value="{&quot;bid&quot;: &quot;b-1&quot;}"/>'
    b'<property name="evidence" value="[{&quot;kind&quot;: &quot;db&quot;, &quot;path&quot;: &quot;e/x&quot;}]"/>'
    b'</properties><failure message="boom" type="AssertionError">trace</failure><error/></testcase>'
    b"</testsuite></testsuites>",
]
# Fragments an attacker (or a broken harness) would splice in.
HOSTILE = [
    b'<?xml version="1.0" encoding="x-unknown"?>',
    b'<?xml version="1.0" encoding="utf-16"?>',
    b'<!DOCTYPE x [<!ENTITY a "aaaa">]>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd">',
    b"&a;",
    b"<![CDATA[",
    b"\xff\xfe",
    b"\x00",
    b"<a>" * 300,
    b'<property name="keyEntityIds" value="' + b"[" * 3000 + b'"/>',
    b'<property name="evidence" value="{&quot;kind&quot;: 1}"/>',
    b'<testcase name="BID-001 TENANT-001" time="NaN"><failure message="' + b"x" * 30000 + b'"/></testcase>',
    b"</testsuite>",
    b"<testsuite>",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "hostile", "cut"]))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "hostile":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


JUNIT = st.one_of(mutated(SEEDS), st.binary(max_size=200))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JUNIT)
def test_the_junit_parser_raises_only_junit_errors(xml: bytes) -> None:
    try:
        report = parse_junit(xml, RUN)
    except JUnitError as exc:
        assert str(exc)
        return
    assert report.run == RUN


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


ZIP_SEEDS = [
    zipped({"report.json": b'{"schemaVersion": 1, "run": {"repository": "a/b", "runId": "1"}, "results": []}'}),
    zipped({"junit.xml": SEEDS[0], "evidence/x.json": b"{}"}),
    zipped({"a/junit.xml": SEEDS[2], "b/report.json": b"[" * 2000}),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(ZIP_SEEDS), st.binary(max_size=300)))
def test_the_archive_reader_raises_only_unsafe_archive(data: bytes) -> None:
    limits = ArchiveLimits(max_members=50, max_member_bytes=1024 * 1024, max_total_bytes=2 * 1024 * 1024)
    try:
        files = extract(data, limits=limits)
    except UnsafeArchive as exc:
        assert str(exc)
    else:
        assert all(len(f.data) <= limits.max_member_bytes for f in files)
    # The whole artifact path (unzip, then every report in it) turns everything into problems.
    found = read_artifact("integration-report", data, RUN, frozenset({"TENANT"}), limits)
    assert all(isinstance(p, str) and p for p in found.problems)


SECRET = "property-ingest-secret"


@pytest.fixture
def ingest_url(tmp_path: Path) -> Iterator[str]:
    settings_ = Settings(
        TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
        TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
        TRIAGE_INGEST_SECRET=SECRET,
    )
    core = build_runtime(settings_)
    with serve(build_asgi(core)) as url:
        yield url
    core.engine.dispose()


def test_a_signed_junit_body_never_gets_a_5xx(ingest_url: str) -> None:
    client = httpx.Client(timeout=60)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(JUNIT)
    def post(body: bytes) -> None:
        response = client.post(
            ingest_url + "/ingest/junit",
            content=body,
            params={"repository": "acme/dispatch", "runId": "1", "suite": "nightly"},
            headers={"Content-Type": "application/xml", "X-Triage-Signature": sign(body, SECRET)},
        )
        assert response.status_code in (202, 400), response.text
        if response.status_code == 400:
            assert response.json()["error"]

    with client:
        post()
