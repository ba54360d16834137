"""Suggestions for the failures one report opens, with what they share read once: the run's
shape, the tests' history on the branch (one query for all of them) and each playbook's past."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from sqlmodel import Session

from slackbot.config import Playbook
from slackbot.domain.ids import prefix_of
from slackbot.history.outcomes import ResultLike, key_for
from slackbot.history.store import StoredReport, histories_in, recent
from slackbot.history.summary import History
from slackbot.suggest.failure import Failure, suggest
from slackbot.suggest.past import Past
from slackbot.suggest.patterns import Memo, pattern_votes
from slackbot.suggest.signals import RunShape, history_votes
from slackbot.suggest.suggestion import Suggestion
from slackbot.suggest.words import masked_line


class FailedResult(ResultLike, Protocol):  # what it reads of sources.report.Result
    @property
    def test_file(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def command(self) -> str | None: ...


def run_shape(playbook: Playbook, firsts: Sequence[FailedResult]) -> RunShape:
    """``firsts``: one result per failing test of the run."""
    if not firsts:
        return RunShape()
    lines = Counter(masked_line(r.message or r.command) for r in firsts)
    common, sharing = lines.most_common(1)[0]
    example = next(r for r in firsts if masked_line(r.message or r.command) == common)
    infra = set(playbook.classes_for("infra"))
    is_infra = any(v.failure_class in infra for v in pattern_votes(playbook, example.message or example.command or ""))
    return RunShape(len(firsts), common or None, sharing, None, is_infra)


class Advice:
    """``firsts``: one result per failing test of the run (its shape)."""

    def __init__(self, session: Session, repository: str, branch: str | None, firsts: Sequence[FailedResult]) -> None:
        self.session = session
        self.repository, self.branch = repository, branch
        self.firsts = list(firsts)
        self._by_result: dict[int, History | None] = {}  # by id(result): the ingest holds every result
        self._pasts: dict[str, Past] = {}
        self._shapes: dict[str, RunShape] = {}
        self._patterns: dict[str, Memo] = {}
        self._memo: dict[tuple[object, ...], Suggestion | None] = {}
        self._recent: list[StoredReport] | None = None

    def prepare(self, opening: Sequence[FailedResult]) -> None:
        """Read the history of the tests about to open incidents, in one query."""
        keys = [key_for(r) for r in opening]
        if keys:
            self._recent = recent(self.session, self.repository, self.branch)
            found = histories_in(self._recent, keys)
            for result, key in zip(opening, keys, strict=True):
                self._by_result[id(result)] = found.get(key)

    def may_rerun(self, run_pk: int, run_id: str, sha: str | None, attempt: int) -> bool:
        """Whether this run may be a rerun of an earlier failure: the branch's recent reports hold
        another run of its sha or an earlier attempt of it (what ``incidents.suggestions`` looks
        for). True when ``prepare`` read none of them (it had nothing to open): ask the database."""
        if self._recent is None:
            return True
        return any(
            r.run_pk != run_pk and ((sha and r.sha == sha) or (r.run_id == run_id and r.attempt < attempt))
            for r in self._recent
        )

    def history(self, result: FailedResult) -> History | None:
        """The history ``prepare`` read for this result (the ingest asks several times per result)."""
        return self._by_result.get(id(result))

    def suggest(self, playbook: Playbook, result: FailedResult, spans: list[str] | None) -> Suggestion | None:
        if playbook.name not in self._pasts:
            self._pasts[playbook.name] = Past.load(self.session, playbook.name)
            self._shapes[playbook.name] = run_shape(playbook, self.firsts)
            self._patterns[playbook.name] = Memo(playbook)
        history = self.history(result)
        scenario, invariant = result.scenario_id, result.invariant_id
        # Thousands of failures of one run mostly repeat a few messages, files and prefixes: the
        # same inputs give the same suggestion, so each distinct one is worked out once.
        key = (
            playbook.name,
            result.message,
            result.detail,
            result.command,
            result.test_file,
            prefix_of(scenario) if scenario else None,
            prefix_of(invariant) if invariant else None,
            bool(scenario),
            bool(invariant),
            tuple(spans or ()),
            tuple(history_votes(playbook, history)),
        )
        if key in self._memo:
            return self._memo[key]
        shape = self._shapes[playbook.name]
        if spans:
            shape = RunShape(shape.failing_tests, shape.common_error, shape.sharing, spans, shape.common_error_is_infra)
        failure = Failure(
            message=result.message or "",
            detail=result.detail or "",
            command=result.command or "",
            test_file=result.test_file,
            scenario_id=result.scenario_id,
            invariant_id=result.invariant_id,
            history=history,
            shape=shape,
        )
        found = self._memo[key] = suggest(playbook, failure, self._pasts[playbook.name], self._patterns[playbook.name])
        return found

    def suspect_range(self, result: FailedResult) -> tuple[str, str] | None:
        """(last green sha, first failing sha) when the test failed since a green run on this
        branch at another sha: the changes between them are the suspects."""
        history = self.history(result)
        if history is None or len(history.seen) < 2:  # a green run and a failing one: two at least
            return None
        first, green = history.first_failing, history.last_green
        if first is None or green is None or not first.sha or not green.sha or first.sha == green.sha:
            return None
        return green.sha, first.sha
