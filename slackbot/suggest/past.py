"""The team's own past: how incidents with similar messages were finally classified by people,
so suggestions follow what responders confirmed or corrected."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from slackbot.config import Playbook
from slackbot.db.models import PAST_WHERE, Incident
from slackbot.suggest.suggestion import Vote
from slackbot.suggest.words import similarity, tokens

WEIGHT = 2.5
SIMILAR = 0.5  # token overlap (Jaccard) at which two messages count as the same kind of failure
RECENT = 500  # the newest classified incidents of the playbook read per ingest


@dataclass(frozen=True)
class Decided:
    words: frozenset[str]
    failure_class: str
    confirmed: bool  # people chose what the bot suggested; else they corrected it


@dataclass
class Past:
    decided: list[Decided] = field(default_factory=list)
    _memo: dict[frozenset[str], list[Vote]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, session: Session, playbook: str, *, limit: int = RECENT) -> Past:
        rows = session.exec(newest_decided(playbook, limit)).all()
        return cls([Decided(tokens(s), str(c), c == sug) for s, c, sug in rows if c])

    def learn(self, message: str, failure_class: str, confirmed: bool) -> None:
        self.decided.insert(0, Decided(tokens(message), failure_class, confirmed))
        self._memo.clear()

    def votes(self, playbook: Playbook, message: str) -> list[Vote]:
        words = tokens(message)
        if words not in self._memo:
            self._memo[words] = self._votes(playbook, words)
        return self._memo[words]

    def _votes(self, playbook: Playbook, words: frozenset[str]) -> list[Vote]:
        alike: dict[str, list[Decided]] = defaultdict(list)
        weight: dict[str, float] = defaultdict(float)
        for decided in self.decided:
            score = similarity(words, decided.words)
            if score >= SIMILAR:
                alike[decided.failure_class].append(decided)
                weight[decided.failure_class] += score
        votes = []
        for key, found in alike.items():
            confirmed = sum(d.confirmed for d in found)
            said = (
                f"{len(found)} similar incident{'s' if len(found) > 1 else ''} classified {playbook.class_label(key)}"
            )
            said += f" ({confirmed} confirmed, {len(found) - confirmed} corrected)"
            votes.append(Vote(key, min(WEIGHT, WEIGHT * weight[key]), "past", said))
        return votes


def newest_decided(playbook: str, limit: int = RECENT) -> Select[str, str | None, str | None]:
    """The playbook's newest incidents people classified: a range of ix_incidents_past, whose
    condition is written out here as in the index, so that the database can use it."""
    return (
        select(Incident.symptom, Incident.failure_class, Incident.suggested_class)
        .where(Incident.playbook == playbook, text(PAST_WHERE))
        .order_by(col(Incident.id).desc())
        .limit(limit)
    )
