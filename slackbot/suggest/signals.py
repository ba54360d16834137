"""Evidence the bot gathers itself, each voting for the classes that claim it (``signals:``):
the test's history, the run's shape, and where the test lives (scope globs, id prefixes)."""

from __future__ import annotations

from dataclasses import dataclass

from slackbot.config import Playbook
from slackbot.history.summary import History, Seen
from slackbot.suggest.suggestion import Vote

FLAKE = 3.0
REGRESSION = 1.0
REGRESSION_PER_RUN = 0.5
REGRESSION_MAX = 2.5
INFRA_RUN = 3.0
SPANNING = 1.5
SHARED = 3.0
MISSING_IDS = 3.0
SCOPE = 1.0
PREFIX = 0.75
# "Many unrelated tests with one error": at least this many failing tests, most of them alike.
MANY = 5
MOST = 0.6


@dataclass(frozen=True)
class RunShape:
    """What the whole run looked like, from the report that carried the failure."""

    failing_tests: int = 1
    # The most common error among them (first line, numbers masked) and how many tests share it.
    common_error: str | None = None
    sharing: int = 0
    spans_prefixes: list[str] | None = None  # the run crosses the playbook's prefix threshold
    common_error_is_infra: bool = False


def _votes(playbook: Playbook, signal: str, weight: float, kind: str, reason: str) -> list[Vote]:
    return [Vote(key, weight, kind, reason) for key in playbook.classes_for(signal)]


def history_votes(playbook: Playbook, history: History | None) -> list[Vote]:
    if history is None or (len(history.seen) == 1 and not history.seen[0].passed):
        return []  # the usual new failure: only this run, failing once; nothing to say
    flaky = history.flaky
    if flaky is not None:
        return _votes(playbook, "flake", FLAKE, "history", flaky[0])
    streak, green = history.failing_streak, history.last_green
    if streak and green is not None:
        since = streak[0]
        weight = min(REGRESSION_MAX, REGRESSION + REGRESSION_PER_RUN * (len(streak) - 1))
        where = f"sha {since.sha[:8]}" if since.sha else f"run {since.run_id}"
        last = f"sha {green.sha[:8]}" if green.sha else f"run {green.run_id}"
        runs = f"{len(streak)} run" + ("s" if len(streak) > 1 else "")
        return _votes(
            playbook, "regression", weight, "history", f"failing on every run since {where} ({runs}); last green {last}"
        )
    return []


def rerun_votes(playbook: Playbook, failed: Seen, passed: Seen) -> list[Vote]:
    """The history vote a pass that came after the failure casts (a rerun attempt of the failing
    run, or another run of its sha): the same evidence ``History.flaky`` reads when the pass came
    first, worded the same."""
    if passed.passed and passed.run_id == failed.run_id and passed.attempt > failed.attempt:
        reason = f"passed on rerun attempt {passed.attempt} of run {passed.run_id}"
    elif passed.passed and passed.sha and passed.sha == failed.sha and passed.run_pk != failed.run_pk:
        reason = f"failed and passed on the same sha {passed.sha[:8]}"
    else:
        return []
    return _votes(playbook, "flake", FLAKE, "history", reason)


def shape_votes(playbook: Playbook, shape: RunShape, *, missing_ids: bool, shares_common_error: bool) -> list[Vote]:
    votes: list[Vote] = []
    many = shape.failing_tests >= MANY and shape.sharing >= MOST * shape.failing_tests
    if many and shape.common_error_is_infra and shares_common_error:
        reason = f"{shape.sharing} of {shape.failing_tests} failing tests in the run share one infrastructure error"
        votes += _votes(playbook, "infra", INFRA_RUN, "run", reason)
    elif shape.spans_prefixes:  # across prefixes, and not one infrastructure error: the harness
        prefixes = ", ".join(shape.spans_prefixes[:6])
        if many and shares_common_error:
            reason = f"{shape.sharing} failing tests across prefixes {prefixes} share one error: a shared cause"
            votes += _votes(playbook, "harness", SHARED, "run", reason)
        elif not (many and shape.common_error_is_infra):
            votes += _votes(playbook, "harness", SPANNING, "run", f"the run's failures span prefixes {prefixes}")
    if missing_ids:
        votes += _votes(playbook, "harness", MISSING_IDS, "run", "the failure lacks the contract's ids")
    return votes


def place_votes(
    playbook: Playbook, test_file: str | None, scenario_id: str | None, invariant_id: str | None
) -> list[Vote]:
    """The bot's first guess before this issue, kept as the weakest signals: the scope glob that
    holds the test file, else what the id's prefix usually means."""
    match = playbook.owner_for_path(test_file)
    if match:
        failure_class, pattern = match
        return [Vote(failure_class, SCOPE, "scope", f"test file {test_file} matches scope {pattern}")]
    for label, entry in (
        ("scenario", playbook.scenario_entry(scenario_id)),
        ("invariant", playbook.invariant_entry(invariant_id)),
    ):
        if entry is not None and entry.likely_class is not None:
            reason = f"{label} prefix {entry.prefix}-* is usually {entry.likely_class}"
            return [Vote(entry.likely_class, PREFIX, "prefix", reason)]
    return []
