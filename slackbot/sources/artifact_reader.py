"""Reading one CI artifact (a zip) into results, in the child process that
:mod:`slackbot.clients.isolated` forks for it: unzip with the archive's caps, then every Report v1
JSON and JUnit XML inside. Whatever is wrong with the artifact or a file in it becomes a
*problem* (a sentence naming the file and the reason), never an exception: a failed run whose
report cannot be read is still a failed run, and its problems are what its harness card shows.

The number of results is capped (:data:`MAX_RESULTS` across the whole run, the format's own
limit) before anything is validated: a JSON report's list is counted before its items are, a
JUnit file stops at the first testcase past the cap. A run over the cap yields no results at all,
only the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from slackbot.clients.artifacts import ArchiveLimits, UnsafeArchive, extract
from slackbot.sources.junit import JUnitError, TooManyTestcases, parse_junit
from slackbot.sources.report import MAX_RESULTS, Report, Result, RunInfo


@dataclass
class RunReports:
    """What a run's artifacts yielded: results, the files they came from, and every problem
    (expired, rejected, unparsable) so a responder can see why a report is missing."""

    results: list[Result] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    suite: str | None = None
    over_cap: bool = False  # more results than a run may have: none of them are used

    def add(self, other: RunReports) -> None:
        self.results.extend(other.results)
        self.files.extend(other.files)
        self.problems.extend(other.problems)
        self.suite = self.suite or other.suite
        if other.over_cap:
            self.refuse()

    def refuse(self) -> None:
        """A run over the cap is judged by its harness card alone: ingesting the first 100,000
        results would pass off part of a run as the whole of it."""
        self.over_cap = True
        self.results.clear()
        self.files.clear()


def _wanted(path: str) -> bool:
    return path.lower().endswith((".json", ".xml"))


def read_artifact(
    name: str,
    data: bytes,
    run: RunInfo,
    invariant_prefixes: frozenset[str],
    limits: ArchiveLimits,
    max_results: int = MAX_RESULTS,
) -> RunReports:
    """The results of every report in the zip ``data``; problems instead of exceptions."""
    found = RunReports()
    try:
        members = extract(data, wanted=_wanted, limits=limits)
    except UnsafeArchive as exc:
        found.problems.append(f"artifact {name} was rejected: {exc}")
        return found
    for member in members:
        budget = max_results - len(found.results)
        _read_member(f"{name}/{member.path}", member.data, run, invariant_prefixes, budget, found)
        if found.over_cap:
            break
    return found


def _too_many(where: str, limit: int) -> str:
    return f"{where}: the run has more than {limit:,} results (the limit per run); none of them were used"


def _read_member(
    where: str, data: bytes, run: RunInfo, invariant_prefixes: frozenset[str], budget: int, found: RunReports
) -> None:
    if where.lower().endswith(".json"):
        try:
            raw = json.loads(data)
        except RecursionError:
            found.problems.append(f"{where}: JSON is nested too deeply to read")
            return
        except (ValueError, UnicodeDecodeError):
            return  # not a report (evidence files are JSON too, and need not parse)
        if not isinstance(raw, dict) or "schemaVersion" not in raw:
            return
        version = raw.get("schemaVersion")
        if type(version) is not int or version != 1:
            found.problems.append(f"{where}: unsupported schemaVersion {version!r}")
            return
        results = raw.get("results")
        if isinstance(results, list) and len(results) > budget:
            found.problems.append(_too_many(where, MAX_RESULTS))
            found.refuse()
            return
        try:
            report = Report.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            path = ".".join(str(p) for p in error["loc"])
            found.problems.append(f"{where}: {path}: {error['msg']}")
            return
        except RecursionError:
            found.problems.append(f"{where}: JSON is nested too deeply to read")
            return
        if isinstance(raw.get("run"), dict) and raw["run"].get("suite"):
            found.suite = found.suite or report.run.suite
        found.results.extend(report.results)
        found.files.append(where)
        return
    try:
        parsed = parse_junit(data, run, invariant_prefixes=invariant_prefixes, max_results=budget)
    except TooManyTestcases:
        found.problems.append(_too_many(where, MAX_RESULTS))
        found.refuse()
        return
    except JUnitError as exc:
        if not str(exc).startswith("root element"):  # other XML (coverage, …) is not ours to judge
            found.problems.append(f"{where}: {exc}")
        return
    found.results.extend(parsed.results)
    found.files.append(where)
