"""Adding votes up into one suggestion, keeping every reason."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from slackbot.config import Playbook

# Above this the suggestion says it is confident: tuned on the labelled corpus (bench/suggest.py)
# so that confident suggestions are right at least 95% of the time.
CONFIDENT = 0.7
# Evidence nobody gave: a lone weak vote must not look certain.
_PRIOR = 0.5
# A message pattern or where the test lives, alone, is a hint: it is confident only when another
# kind of signal (history, the run, the team's past) agrees.
_HINTS = frozenset({"pattern", "scope", "prefix"})
_HINT_ONLY = 0.65


@dataclass(frozen=True)
class Vote:
    failure_class: str
    weight: float
    signal: str  # pattern | history | run | scope | prefix | past | changes
    reason: str


@dataclass(frozen=True)
class Suggestion:
    failure_class: str
    confidence: float
    votes: tuple[Vote, ...]  # every vote, the suggested class's first
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT

    def as_json(self) -> list[dict[str, Any]]:
        """The votes as the incident keeps them (``Incident.suggestion_votes``)."""
        if "json" not in self._memo:  # one suggestion may open thousands of incidents
            self._memo["json"] = [
                {"class": v.failure_class, "weight": v.weight, "signal": v.signal, "reason": v.reason}
                for v in self.votes
            ]
        found: list[dict[str, Any]] = self._memo["json"]
        return found

    def reason(self, playbook: Playbook) -> str:
        """Which signals voted, for the suggested class and then for the others."""
        if ("reason", playbook.name) in self._memo:  # one suggestion may open thousands of incidents
            return str(self._memo["reason", playbook.name])
        mine = [v.reason for v in self.votes if v.failure_class == self.failure_class]
        others: dict[str, list[str]] = defaultdict(list)
        for vote in self.votes:
            if vote.failure_class != self.failure_class:
                others[vote.failure_class].append(vote.reason)
        text = "; ".join(mine)
        if others:
            text += " — against: " + "; ".join(f"{playbook.class_label(k)} ({', '.join(r)})" for k, r in others.items())
        self._memo["reason", playbook.name] = text
        return text


def combine(playbook: Playbook, votes: list[Vote]) -> Suggestion | None:
    """The class with the most weight; confidence is its share of all the weight given, plus a
    prior, so agreeing signals make it sure and disagreeing ones make it doubt. Ties go to the
    class listed first in the playbook (its order is the team's)."""
    votes = [v for v in votes if v.failure_class in playbook.classes and v.weight > 0]
    if not votes:
        return None
    scores: dict[str, float] = defaultdict(float)
    for vote in votes:
        scores[vote.failure_class] += vote.weight
    order = {key: n for n, key in enumerate(playbook.classes)}
    best = max(scores, key=lambda k: (scores[k], -order[k]))
    confidence = scores[best] / (sum(scores.values()) + _PRIOR)
    if {v.signal for v in votes if v.failure_class == best} <= _HINTS:
        confidence = min(confidence, _HINT_ONLY)
    ranked = sorted(votes, key=lambda v: (v.failure_class != best, -scores[v.failure_class], -v.weight))
    return Suggestion(best, round(confidence, 2), tuple(ranked))


def from_json(votes: list[dict[str, Any]]) -> list[Vote]:
    return [Vote(str(v["class"]), float(v["weight"]), str(v["signal"]), str(v["reason"])) for v in votes]


def revise(playbook: Playbook, kept: list[dict[str, Any]], new: list[Vote]) -> Suggestion | None:
    """A suggestion worked out again when later evidence arrives: the new votes take the place of
    their signal's earlier ones (a signal read again says what it now sees: a test that passed on a
    rerun no longer fails "on every run since" a sha) and join every other vote. None when they
    change nothing, so the same evidence seen twice leaves no trace."""
    if not new:
        return None
    signals = {v.signal for v in new}
    suggestion = combine(playbook, [v for v in from_json(kept) if v.signal not in signals] + new)
    if suggestion is None or sorted(map(_row, suggestion.as_json())) == sorted(map(_row, kept)):
        return None
    return suggestion


def _row(vote: dict[str, Any]) -> tuple[str, float, str, str]:
    return str(vote["class"]), float(vote["weight"]), str(vote["signal"]), str(vote["reason"])
