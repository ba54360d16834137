"""``taxonomy.yml``: what a failing ``scenarioId`` / ``invariantId`` prefix means (optional per playbook)."""

from __future__ import annotations

from datetime import date

from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from slackbot.config.base import Key, Prefix, SeverityName, Strict


class TaxonomyEntry(Strict):
    prefix: Prefix
    meaning: str = Field(min_length=3)
    failure_surface: str = Field(min_length=3, description="where failures of this kind typically show")
    evidence: list[str] = Field(min_length=1, description="evidence a responder must capture")
    likely_class: Key | None = Field(default=None, description="a hint for the suggested owner (a class key)")
    default_severity: SeverityName | None = Field(default=None, description="severity a new incident starts with")
    repro: str | None = Field(default=None, description="repro command for this prefix (overrides the playbook's)")


class Taxonomy(Strict):
    version: int = Field(ge=1)
    updated: date
    id_format: str = Field(default="<PREFIX>-<NNN>", description="how scenario and invariant ids look")
    scenarios: list[TaxonomyEntry] = Field(default_factory=list)
    invariants: list[TaxonomyEntry] = Field(default_factory=list)

    @field_validator("scenarios", "invariants")
    @classmethod
    def _unique_prefixes(cls, entries: list[TaxonomyEntry]) -> list[TaxonomyEntry]:
        # Located at the repeated entry's prefix (e.g. scenarios[3].prefix), so `triagebot check`
        # names the line to edit, not the top of the file.
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if entry.prefix in seen:
                error = PydanticCustomError(
                    "duplicate_prefix",
                    "prefix {prefix} is listed twice (first at [{first}])",
                    {"prefix": entry.prefix, "first": seen[entry.prefix]},
                )
                raise ValidationError.from_exception_data(
                    "Taxonomy", [InitErrorDetails(type=error, loc=(index, "prefix"), input=entry.prefix)]
                )
            seen[entry.prefix] = index
        return entries

    def scenario(self, prefix: str | None) -> TaxonomyEntry | None:
        return next((s for s in self.scenarios if s.prefix == prefix), None)

    def invariant(self, prefix: str | None) -> TaxonomyEntry | None:
        return next((i for i in self.invariants if i.prefix == prefix), None)

    def entries(self) -> list[TaxonomyEntry]:
        return [*self.scenarios, *self.invariants]


EMPTY_TAXONOMY = Taxonomy(version=1, updated=date(2026, 1, 1))
