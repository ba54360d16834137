"""The playbook's per-class message and log patterns: each class the text matches votes once,
a little more for each further pattern of its own that matches."""

from __future__ import annotations

from slackbot.config import Playbook
from slackbot.suggest.suggestion import Vote

WEIGHT = 2.0
EACH_MORE = 0.5
# A log can be megabytes; its head names the error and its tail the last step. Regexes over the
# whole of it would cost more than the rest of the suggestion.
_HEAD, _TAIL = 3000, 2000


def clip(text: str) -> str:
    return text if len(text) <= _HEAD + _TAIL else text[:_HEAD] + "\n" + text[-_TAIL:]


def pattern_votes(playbook: Playbook, text: str) -> list[Vote]:
    text = clip(text)
    matched: dict[str, list[str]] = {}
    for failure_class, pattern in playbook.class_patterns:
        found = pattern.search(text)
        if found:
            matched.setdefault(failure_class, []).append(found.group(0).strip()[:60])
    return [
        Vote(
            key, WEIGHT + EACH_MORE * (len(hits) - 1), "pattern", "log matches " + ", ".join(f"“{h}”" for h in hits[:3])
        )
        for key, hits in matched.items()
    ]


class Memo:
    """Pattern votes per distinct text, for one ingest: thousands of failures of one run usually
    repeat a handful of messages."""

    def __init__(self, playbook: Playbook) -> None:
        self.playbook = playbook
        self._seen: dict[str, list[Vote]] = {}

    def __call__(self, text: str) -> list[Vote]:
        found = self._seen.get(text)
        if found is None:
            if len(self._seen) >= 10_000:
                self._seen.clear()
            found = self._seen[text] = pattern_votes(self.playbook, text)
        return found
