"""Report format v1: what the integration harness emits (DESIGN.md section 5).

The wire format is camelCase, as in the runbook glossary; Python code uses snake_case through
pydantic aliases. ``docs/report-v1.schema.json`` is generated from these models
(``triagebot report schema``), so the published schema and the validator cannot disagree.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

SCHEMA_VERSION = 1
MAX_RESULTS = 100_000  # per report (and per GitHub run): counted before anything is validated
ResultStatus = Literal["passed", "failed", "error", "skipped"]
# GitHub's run_attempt is an int4; nothing stores a larger one (PostgreSQL's integer column).
MAX_RUN_ATTEMPT = 2**31 - 1
# finishedAt: CI runs of this century, at most a day ahead of the server's clock (clock skew and
# time zones, not a run that finishes next year).
EARLIEST_FINISHED_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FINISHED_AHEAD = timedelta(days=1)
# PostgreSQL refuses NUL in text and json, and no database stores a lone surrogate (invalid UTF-8):
# both become U+FFFD at this boundary, so one bad byte never loses a report on any database.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TEXT = {str}  # keyEntityIds already text (as JSON gives them) need no copy
# A stable id such as BID-001 or TENANT-001: an upper-case prefix, a dash, an alphanumeric tail.
ID_PATTERN = re.compile(r"\b([A-Z][A-Z0-9]{1,15})-([A-Z0-9]{1,12})\b")


def storable_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (see ``_UNSTORABLE``)."""
    if value.isascii() and "\x00" not in value:
        return value
    return _UNSTORABLE.sub("\ufffd", value)


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k) if isinstance(k, str) else k: _storable_leaf(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable_leaf(item) for item in value]
    return value


def _storable_leaf(value: Any) -> Any:
    return storable_text(value) if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any, info: ValidationInfo) -> Any:
        # Each model cleans its own fields (and the strings of a dict or list field such as
        # keyEntityIds); nested models clean theirs when they are validated. JSON read by
        # ``loads_json`` is clean already (context ``storable_text``): not walked twice.
        if isinstance(info.context, dict) and info.context.get("storable_text"):
            return data
        if isinstance(data, dict):
            return {key: _storable(value) for key, value in data.items()}
        return data


class Evidence(_Model):
    kind: str = Field(min_length=1, max_length=100)
    path: str = Field(min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=2000)


class RunInfo(_Model):
    provider: str = Field(default="github", max_length=50)
    repository: str = Field(min_length=1, max_length=200)
    run_id: str = Field(min_length=1, max_length=100)
    run_attempt: int = Field(default=1, ge=1, le=MAX_RUN_ATTEMPT, strict=True)
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

    @field_validator("run_attempt", mode="before")
    @classmethod
    def _attempt_from_text(cls, value: object) -> object:
        # Query parameters (/ingest/junit) are text; JSON must carry an integer (true and 1.5 are
        # refused by strict mode, which bool-as-int lax parsing would accept).
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
            return int(value)
        return value

    @field_validator("finished_at")
    @classmethod
    def _finished_in_range(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        try:
            utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
        if utc < EARLIEST_FINISHED_AT:
            raise ValueError("must be after 2000-01-01T00:00:00Z")
        # The server's clock comes in the validation context (the ingest routes pass it).
        now = (info.context or {}).get("now") if isinstance(info.context, dict) else None
        if isinstance(now, datetime) and utc > now + MAX_FINISHED_AHEAD:
            raise ValueError(f"is in the future: more than a day after the server's time ({now.isoformat()})")
        return value


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
            if {*map(type, value), *map(type, value.values())} <= _TEXT:  # types read in C
                return value
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
    results: list[Result] = Field(default_factory=list, max_length=MAX_RESULTS)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _exactly_the_integer(cls, value: object) -> object:
        # Literal[1] compares with ==, so true and 1.0 would pass for 1.
        if type(value) is not int:
            raise ValueError(f"must be the integer 1, not {value!r:.40}")
        return value


VALIDATE_CHUNK = 250
_RESULTS: TypeAdapter[list[Result]] = TypeAdapter(list[Result])


class InvalidReport(ValueError):
    """Every validation error of a report, as ``ValidationError.errors()`` lists them."""

    def __init__(self, errors: list[ErrorDetails]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} validation error(s)")


def validate_report(data: Any, context: dict[str, Any] | None = None, *, chunk: int = VALIDATE_CHUNK) -> Report:
    """``Report.model_validate(data)``, with the results validated ``chunk`` at a time: each
    validation is one C call holding the GIL, and in a worker thread a 10,000-result report in one
    call would stall the event loop for over 100 ms. The same errors, in the same order, as one
    call; raises InvalidReport."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or len(results) <= chunk or len(results) > MAX_RESULTS:
        try:
            return Report.model_validate(data, context=context)
        except ValidationError as exc:
            raise InvalidReport(exc.errors()) from None
    errors: list[ErrorDetails] = []
    report = None
    try:
        report = Report.model_validate({**data, "results": []}, context=context)
    except ValidationError as exc:
        errors.extend(exc.errors())
    validated: list[Result] = []
    for start in range(0, len(results), chunk):
        try:
            validated.extend(_RESULTS.validate_python(results[start : start + chunk], context=context))
        except ValidationError as exc:
            for error in exc.errors():
                index, *rest = error["loc"]
                errors.append({**error, "loc": ("results", start + int(index), *rest)})
    if errors or report is None:
        raise InvalidReport(errors)
    report.results = validated
    return report


def report_json_schema() -> str:
    schema = Report.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://triagebot.dev/schemas/report-v1.schema.json"
    schema["title"] = "triagebot report v1"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
