"""POST /ingest/report and /ingest/junit over real HTTP: signatures, limits and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func
from sqlmodel import Session, select

from slackbot.app import build_asgi
from slackbot.db.migrate import alembic_config
from slackbot.db.models import Incident, Occurrence, Run
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from slackbot.signing import sign
from tests.conftest import FIXTURES, RUNBOOKS
from tests.factories import report, result

SECRET = "test-ingest-secret"


@pytest.fixture
def core(tmp_path: Path) -> Runtime:
    settings = Settings(
        TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'triage.db'}",
        TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
        TRIAGE_INGEST_SECRET=SECRET,
        TRIAGE_MAX_BODY_BYTES=5 * 1024 * 1024,
    )
    return build_runtime(settings)


@pytest.fixture
def base_url(core: Runtime) -> Iterator[str]:
    with serve(build_asgi(core)) as url:
        yield url


def post(base_url: str, path: str, body: bytes, *, signature: str | None = "auto", **kwargs: object) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature == "auto":
        headers["X-Triage-Signature"] = sign(body, SECRET)
    elif signature is not None:
        headers["X-Triage-Signature"] = signature
    return httpx.post(base_url + path, content=body, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def row_counts(core: Runtime) -> tuple[int, int, int]:
    with Session(core.engine) as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (Run, Incident, Occurrence))  # type: ignore[return-value]


def test_a_signed_report_is_accepted_and_grouped(base_url: str, core: Runtime) -> None:
    body = json.dumps(
        report(result("BID-001", "TENANT-001"), result("BID-001", "TENANT-001", test_name="other"))
    ).encode()
    response = post(base_url, "/ingest/report", body)
    assert response.status_code == 202, response.text
    data = response.json()
    assert [(i["id"], i["created"], i["occurrencesAdded"]) for i in data["incidents"]] == [("INC-1", True, 2)]
    listed = httpx.get(base_url + "/api/incidents", params={"status": "open"}).json()
    assert [i["id"] for i in listed["incidents"]] == ["INC-1"]
    again = post(base_url, "/ingest/report", body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert row_counts(core) == (1, 1, 2)


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (None, "missing X-Triage-Signature"),
        ("sha256=" + "0" * 64, "does not match"),
        ("garbage", "does not match"),
    ],
)
def test_wrong_or_missing_signature_is_401_and_stores_nothing(
    base_url: str, core: Runtime, signature: str | None, expected: str
) -> None:
    body = json.dumps(report(result())).encode()
    response = post(base_url, "/ingest/report", body, signature=signature)
    assert response.status_code == 401
    assert expected in response.json()["error"]
    assert row_counts(core) == (0, 0, 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"schemaVersion": 2, "run": {}, "results": []}).encode(), "unsupported version 2"),
        (json.dumps({"run": {}, "results": []}).encode(), "schemaVersion: required"),
        (json.dumps({"schemaVersion": 1, "results": []}).encode(), "run: Field required"),
        (
            json.dumps(report(result(status="exploded"))).encode(),
            "results[0].status: Input should be 'passed', 'failed', 'error' or 'skipped'",
        ),
        (
            json.dumps(report(result(), result(evidence="not-a-list"))).encode(),
            "results[1].evidence: Input should be a valid list",
        ),
    ],
)
def test_bad_reports_get_a_400_naming_the_field_and_store_nothing(
    base_url: str, core: Runtime, body: bytes, expected: str
) -> None:
    response = post(base_url, "/ingest/report", body)
    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert row_counts(core) == (0, 0, 0)


def test_bodies_over_the_cap_are_413(base_url: str, core: Runtime) -> None:
    body = b'{"schemaVersion": 1, "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = post(base_url, "/ingest/report", body)
    assert response.status_code == 413
    assert "5 MB" in response.json()["error"]
    assert row_counts(core) == (0, 0, 0)


def test_junit_is_ingested_with_run_metadata_from_the_query(base_url: str, core: Runtime) -> None:
    xml = (FIXTURES / "vitest-junit-snapshot-hook-failures.xml").read_bytes()
    params = {
        "repository": "acme/dispatch",
        "runId": "77",
        "suite": "smoke",
        "url": "https://github.com/acme/dispatch/actions/runs/77",
    }
    response = post(base_url, "/ingest/junit", xml, params=params)
    assert response.status_code == 202, response.text
    assert response.json()["failures"] >= 1
    assert row_counts(core)[0] == 1


def test_junit_entity_expansion_is_refused(base_url: str, core: Runtime) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<testsuites><testsuite name='x'><testcase name='&lol2;'/></testsuite></testsuites>"
    )
    response = post(base_url, "/ingest/junit", bomb, params={"repository": "acme/dispatch", "runId": "78"})
    assert response.status_code == 400
    assert "entit" in response.json()["error"].lower() or "dtd" in response.json()["error"].lower()
    assert row_counts(core) == (0, 0, 0)


def test_junit_without_run_metadata_names_the_missing_parameter(base_url: str) -> None:
    xml = (FIXTURES / "vitest-junit-snapshot-hook-failures.xml").read_bytes()
    response = post(base_url, "/ingest/junit", xml, params={"runId": "79"})
    assert response.status_code == 400
    assert "repository" in response.json()["error"]


def test_ingest_is_refused_when_the_server_has_no_secret(tmp_path: Path) -> None:
    settings = Settings(TRIAGE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", TRIAGE_RUNBOOKS_DIR=RUNBOOKS)
    with serve(build_asgi(build_runtime(settings))) as url:
        response = httpx.post(url + "/ingest/report", content=b"{}", headers={"X-Triage-Signature": "sha256=00"})
    assert response.status_code == 503
    assert "TRIAGE_INGEST_SECRET" in response.json()["error"]


# the schema a freshly migrated bot reports is the newest migration shipped, whichever that is
NEWEST_MIGRATION = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_health_and_readiness(base_url: str) -> None:
    assert httpx.get(base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(base_url + "/readyz").json()
    assert ready["status"] == "ready" and ready["database"] == "ok" and ready["schema"] == NEWEST_MIGRATION
