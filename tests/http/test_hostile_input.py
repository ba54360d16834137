"""Hostile input on every route: each answer is a 2xx or a precise 4xx, never a 5xx, never a partial
row, on SQLite and PostgreSQL (issue 18)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from handlers.http.body import loads_json
from slackbot.db.models import Incident, Occurrence
from slackbot.signing import sign
from tests.factories import report, result
from tests.http.conftest import INGEST_SECRET, Server
from tests.integrations.conftest import workflow_run_payload

CAP = 5 * 1024 * 1024


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def alert_payload(**labels: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="IngestionLag"}',
        "status": "firing",
        "receiver": "triagebot",
        "groupLabels": {"alertname": "IngestionLag"},
        "commonLabels": {"alertname": "IngestionLag", **labels},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "IngestionLag", "severity": "warning", **labels},
                "annotations": {"summary": "lag"},
                "startsAt": "2026-11-22T03:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "a1",
            }
        ],
    }


# -- bodies over the cap -------------------------------------------------------------------------


def test_a_report_over_the_cap_sent_with_urllib_reads_the_413(server: Server) -> None:
    body = b'{"schemaVersion": 1, "pad": "' + b"x" * (CAP + 1024) + b'"}'
    request = urllib.request.Request(
        server.url + "/ingest/report",
        data=body,
        headers={"Content-Type": "application/json", "X-Triage-Signature": sign(body, INGEST_SECRET)},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert "5 MB" in json.loads(caught.value.read())["error"]
    assert server.rows() == (0, 0, 0, 0)


@pytest.mark.parametrize("route", ["/webhooks/github", "/webhooks/alertmanager", "/ingest/junit", "/slack/events"])
def test_every_body_route_answers_413_over_the_cap_also_when_streamed(shared_server: Server, route: str) -> None:
    def chunks() -> Any:
        # No Content-Length: the cap must hold while reading, not only on the declared size.
        for _ in range(CAP // 65536 + 2):
            yield b"a" * 65536

    params = {"repository": "acme/dispatch", "runId": "1"} if route == "/ingest/junit" else {}
    response = httpx.post(shared_server.url + route, params=params, content=chunks(), timeout=30)
    assert response.status_code == 413, response.text
    assert "5 MB" in response.json()["error"]


# -- NUL bytes and lone surrogates: one behaviour on both databases ------------------------------


def test_a_nul_byte_in_a_message_or_id_is_stored_as_a_replacement_character(server: Server) -> None:
    body = report(
        result("BID-001", "TENANT-001", message="before\x00after", organization_under_test="org\x00a"),
        result("BID-002\x00", "TENANT-001", test_name="second\x00one", keyEntityIds={"org\x00Id": "a\x00b"}),
        result("BID-003", "TENANT-001", message="lone \ud800 surrogate"),
    )
    response = server.report(json.dumps(body).encode())
    assert response.status_code == 202, response.text
    with Session(server.core.engine) as session:
        incidents = list(session.exec(select(Incident)))
        occurrences = list(session.exec(select(Occurrence)))
    # every failure of the report is in, none lost for one bad byte
    assert len(occurrences) == 3
    text = json.dumps([i.model_dump(mode="json") for i in incidents], ensure_ascii=False)
    text += json.dumps([o.model_dump(mode="json") for o in occurrences], ensure_ascii=False)
    assert "\x00" not in text and "before\ufffdafter" in text and "lone \ufffd surrogate" in text


def test_a_nul_byte_in_an_alert_is_stored_as_a_replacement_character(server: Server) -> None:
    response = server.alertmanager(alert_payload(instance="db\x00-1"))
    assert response.status_code == 200, response.text
    assert server.rows()[1] == 1


# -- nesting depth -------------------------------------------------------------------------------


def test_json_nested_5000_deep_is_a_400_on_every_json_route(shared_server: Server) -> None:
    before = shared_server.rows()
    nested = ('{"schemaVersion": 1, "run": ' + deep(5000) + "}").encode()
    assert len(nested) < 11_000
    for response in (
        shared_server.report(nested),
        shared_server.alertmanager(nested),
        shared_server.github(nested),
        shared_server.report(json.dumps(report(result(keyEntityIds={"a": "b"}))).replace('"b"', deep(900)).encode()),
    ):
        assert response.status_code == 400, response.text
        assert "nested" in response.json()["error"]
    assert shared_server.rows() == before


def test_the_depth_limit_is_the_same_for_plain_bodies_and_bodies_whose_strings_are_mended() -> None:
    """Plain ASCII bodies take a faster depth check than bodies with escapes or non-ASCII text
    (whose strings are mended too): both accept 64 levels and refuse 65, in a list or a dict."""
    for text in ('"plain"', '"caf\u00e9"', '"\\u0000"'):
        for opener, closer in (("[", "]"), ('{"k": ', "}")):
            for depth, accepted in ((64, True), (65, False)):  # the outer object is one of them
                body = f'{{"a": {opener * (depth - 1)}{text}{closer * (depth - 1)}}}'.encode()
                if accepted:
                    assert loads_json(body) is not None
                else:
                    with pytest.raises(ValueError, match="nested deeper than 64 levels"):
                        loads_json(body)
    assert loads_json(b'{"a": ["\\u0000"]}') == {"a": ["\ufffd"]}


# -- run attempt, schema version, finishedAt -----------------------------------------------------


def with_run(**run: Any) -> dict[str, Any]:
    body = report(result())
    body["run"].update(run)
    return body


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"runAttempt": 2**63}, "run.runAttempt"),
        ({"runAttempt": 2**31}, "run.runAttempt"),
        ({"runAttempt": 0}, "run.runAttempt"),
        ({"runAttempt": True}, "run.runAttempt"),
        ({"runAttempt": 1.5}, "run.runAttempt"),
        ({"finishedAt": "9999-12-31T23:59:59-05:00"}, "run.finishedAt"),
        ({"finishedAt": "0001-01-01T00:00:00+05:00"}, "run.finishedAt"),
        ({"finishedAt": "9999-01-01T00:00:00Z"}, "run.finishedAt"),
        ({"finishedAt": "1900-01-01T00:00:00Z"}, "run.finishedAt"),
    ],
)
def test_run_fields_out_of_range_are_a_400_naming_the_field(
    shared_server: Server, run: dict[str, Any], expected: str
) -> None:
    before = shared_server.rows()
    response = shared_server.report(with_run(**run))
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    assert shared_server.rows() == before


def test_the_largest_run_attempt_and_a_finished_at_within_a_day_are_accepted(server: Server) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=12)).isoformat()
    response = server.report(with_run(runAttempt=2**31 - 1, finishedAt=soon))
    assert response.status_code == 202, response.text


def test_a_finished_at_more_than_a_day_ahead_is_refused(shared_server: Server) -> None:
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    response = shared_server.report(with_run(finishedAt=later))
    assert response.status_code == 400
    assert "run.finishedAt" in response.json()["error"] and "future" in response.json()["error"]


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_schema_version_must_be_the_integer_1(shared_server: Server, version: object) -> None:
    before = shared_server.rows()
    body = report(result())
    body["schemaVersion"] = version
    response = shared_server.report(body)
    assert response.status_code == 400
    assert "schemaVersion" in response.json()["error"]
    assert shared_server.rows() == before


# -- authentication headers that are not ASCII ---------------------------------------------------


def test_non_ascii_signatures_and_tokens_are_a_401_not_a_500(shared_server: Server) -> None:
    before = shared_server.rows()
    body = json.dumps(report(result())).encode()
    weird = "sha256=é€".encode()
    answers = [
        httpx.post(shared_server.url + "/ingest/report", content=body, headers={"X-Triage-Signature": weird}),
        httpx.post(
            shared_server.url + "/ingest/junit",
            params={"repository": "acme/dispatch", "runId": "1"},
            content=b"<testsuites/>",
            headers={"X-Triage-Signature": weird},
        ),
        httpx.post(
            shared_server.url + "/webhooks/github",
            content=body,
            headers={"X-Hub-Signature-256": weird, "X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d1"},
        ),
        httpx.post(
            shared_server.url + "/webhooks/alertmanager", content=body, headers={"Authorization": "Bearer é€".encode()}
        ),
        httpx.post(
            shared_server.url + "/slack/events",
            content=b"token=x",
            headers={"X-Slack-Signature": "v0=é".encode(), "X-Slack-Request-Timestamp": "1"},
        ),
    ]
    for response in answers:
        assert response.status_code == 401, (response.request.url, response.text)
        assert response.json()["error"]
    assert shared_server.rows() == before


def test_a_slack_request_with_a_non_numeric_timestamp_is_a_401(shared_server: Server) -> None:
    response = httpx.post(
        shared_server.url + "/slack/events",
        content=b"command=%2Ftriage&text=help",
        headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "soon"},
    )
    assert response.status_code == 401
    assert "X-Slack-Request-Timestamp" in response.json()["error"]


def test_a_nul_byte_in_a_github_webhook_is_stored_as_a_replacement_character(server: Server) -> None:
    payload = workflow_run_payload(head_branch="main\x00evil", name="nightly \ud800")
    response = server.github(json.dumps(payload).encode())
    assert response.status_code == 202, response.text
    assert server.rows()[3] == 1  # the github_run job
