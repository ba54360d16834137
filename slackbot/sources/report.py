"""Report format v1: what the integration harness emits (DESIGN.md section 5).

The wire format is camelCase, as in the runbook glossary; Python code uses snake_case through
pydantic aliases. ``docs/report-v1.schema.json`` is generated from these models
(``triagebot report schema``), so the published schema and the validator cannot disagree.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

SCHEMA_VERSION = 1
ResultStatus = Literal["passed", "failed", "error", "skipped"]
# A stable id such as BID-001 or TENANT-001: an upper-case prefix, a dash, an alphanumeric tail.
ID_PATTERN = re.compile(r"\b([A-Z][A-Z0-9]{1,15})-([A-Z0-9]{1,12})\b")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )


class Evidence(_Model):
    kind: str = Field(min_length=1, max_length=100)
    path: str = Field(min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=2000)


class RunInfo(_Model):
    provider: str = Field(default="github", max_length=50)
    repository: str = Field(min_length=1, max_length=200)
    run_id: str = Field(min_length=1, max_length=100)
    run_attempt: int = Field(default=1, ge=1)
    url: str | None = Field(default=None, max_length=2000)
    workflow: str | None = Field(default=None, max_length=200)
    suite: str = Field(default="full", min_length=1, max_length=50)
    branch: str | None = Field(default=None, max_length=300)
    sha: str | None = Field(default=None, max_length=64)
    finished_at: datetime | None = None

    @field_validator("run_id", mode="before")
    @classmethod
    def _run_id_as_text(cls, value: object) -> object:
        # GitHub run ids are integers in the API; the report carries them as strings.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Result(_Model):
    scenario_id: str | None = Field(default=None, max_length=50)
    invariant_id: str | None = Field(default=None, max_length=50)
    status: ResultStatus
    organization_under_test: str | None = Field(default=None, max_length=200)
    key_entity_ids: dict[str, str] = Field(default_factory=dict)
    message: str | None = Field(default=None, max_length=20000)
    detail: str | None = Field(default=None, max_length=100000, description="the log or stack trace")
    command: str | None = Field(default=None, max_length=2000, description="the failing command or check")
    test_file: str | None = Field(default=None, max_length=1000)
    test_name: str | None = Field(default=None, max_length=2000)
    duration_seconds: float | None = Field(default=None, ge=0)
    evidence: list[Evidence] = Field(default_factory=list, max_length=1000)

    @field_validator("scenario_id", "invariant_id", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("key_entity_ids", mode="before")
    @classmethod
    def _entity_ids_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items() if v is not None}
        return value

    @property
    def is_failure(self) -> bool:
        return self.status in ("failed", "error")

    @property
    def test_identity(self) -> str:
        """What identifies the test when the harness emitted no ids (the fingerprint fallback)."""
        named = "::".join(part for part in (self.test_file, self.test_name) if part)
        return named or (self.command or "").strip()[:500] or "unknown-test"


class Report(_Model):
    schema_version: Literal[1] = Field(description="Report format version; only 1 exists.")
    run: RunInfo
    results: list[Result] = Field(default_factory=list, max_length=100000)


def report_json_schema() -> str:
    schema = Report.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://triagebot.dev/schemas/report-v1.schema.json"
    schema["title"] = "triagebot report v1"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
