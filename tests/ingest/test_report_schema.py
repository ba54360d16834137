"""The published report schema is generated from the models and validates real reports."""

from __future__ import annotations

import json

import jsonschema

from handlers.http.ingest import parse_report_json
from slackbot.sources.report import Report, report_json_schema
from tests.conftest import REPO, RUNBOOKS
from tests.factories import report, result

SCHEMA = REPO / "docs" / "report-v1.schema.json"


def test_the_committed_schema_matches_the_models() -> None:
    assert SCHEMA.read_text() == report_json_schema(), (
        "docs/report-v1.schema.json is stale: run `.venv/bin/triagebot report schema --out docs/report-v1.schema.json`"
    )


def test_the_schema_accepts_the_shipped_examples_and_rejects_bad_reports() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for example in sorted((RUNBOOKS / "examples").glob("*.json")):
        assert list(validator.iter_errors(json.loads(example.read_text()))) == [], example.name
    bad = report(result(status="exploded"))
    errors = [e.message for e in validator.iter_errors(bad)]
    assert any("exploded" in message for message in errors)
    missing_run = {"schemaVersion": 1, "results": []}
    assert any("'run' is a required property" in e.message for e in validator.iter_errors(missing_run))


def test_key_entity_ids_are_kept_as_text_whatever_json_carried() -> None:
    """Numbers become their text and a null is left out; ids already text arrive as they were,
    over HTTP as through the model."""
    mixed = report(result(keyEntityIds={"orgId": "org-a", "driverId": 3, "ratio": 0.5, "gone": None}))
    plain = report(result(keyEntityIds={"orgId": "org-a", "bidWindowId": "bw-17"}))
    for data in (mixed, plain):
        over_http = parse_report_json(json.dumps(data).encode()).results[0].key_entity_ids
        assert over_http == Report.model_validate(data).results[0].key_entity_ids
    assert parse_report_json(json.dumps(mixed).encode()).results[0].key_entity_ids == {
        "orgId": "org-a",
        "driverId": "3",
        "ratio": "0.5",
    }
    assert Report.model_validate(plain).results[0].key_entity_ids == {"orgId": "org-a", "bidWindowId": "bw-17"}
