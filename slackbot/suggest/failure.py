"""One failure as the suggestion sees it, and the suggestion for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slackbot.config import Playbook
from slackbot.history.summary import History
from slackbot.suggest.past import Past
from slackbot.suggest.patterns import pattern_votes
from slackbot.suggest.signals import RunShape, history_votes, place_votes, shape_votes
from slackbot.suggest.suggestion import Suggestion, Vote, combine
from slackbot.suggest.words import masked_line


@dataclass(frozen=True)
class Failure:
    message: str = ""
    detail: str = ""  # the stack or the log excerpt
    command: str = ""
    test_file: str | None = None
    scenario_id: str | None = None
    invariant_id: str | None = None
    history: History | None = None
    shape: RunShape = field(default_factory=RunShape)

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.message, self.command, self.detail) if part)


def suggest(
    playbook: Playbook,
    failure: Failure,
    past: Past | None = None,
    patterns: Callable[[str], list[Vote]] | None = None,
) -> Suggestion | None:
    shape = failure.shape
    shares = shape.common_error is not None and masked_line(failure.message or failure.command) == shape.common_error
    votes = [
        *(patterns(failure.text) if patterns is not None else pattern_votes(playbook, failure.text)),
        *history_votes(playbook, failure.history),
        *shape_votes(
            playbook,
            shape,
            missing_ids=playbook.contract_violation(failure.scenario_id, failure.invariant_id),
            shares_common_error=shares,
        ),
        *place_votes(playbook, failure.test_file, failure.scenario_id, failure.invariant_id),
        *(past.votes(playbook, failure.message or failure.command) if past is not None else []),
    ]
    return combine(playbook, votes)
