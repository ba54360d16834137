"""What a test's history says: derived on read from its outcomes, oldest first."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from slackbot.history.outcomes import FAILED, PASSED


@dataclass(frozen=True)
class Seen:
    """One run's outcome of one test (flags: a retried test may have failed and passed)."""

    run_pk: int
    run_id: str
    url: str | None
    sha: str | None
    attempt: int
    outcome: int  # ``outcomes.Outcome`` flags

    @property
    def failed(self) -> bool:
        return bool(self.outcome & FAILED)

    @property
    def passed(self) -> bool:
        return bool(self.outcome & PASSED)

    @property
    def green(self) -> bool:
        return self.passed and not self.failed

    def also(self, outcome: int) -> Seen:
        return dataclasses.replace(self, outcome=self.outcome | outcome)

    def as_json(self) -> dict[str, Any]:
        return {"runId": self.run_id, "attempt": self.attempt, "sha": self.sha, "url": self.url}


@dataclass(frozen=True)
class History:
    seen: list[Seen]  # oldest first; runs that did not carry the test are not in it

    @property
    def runs(self) -> int:
        return len([s for s in self.seen if s.failed or s.passed])

    @property
    def fail_rate(self) -> float:
        known = [s for s in self.seen if s.failed or s.passed]
        return sum(s.failed for s in known) / len(known) if known else 0.0

    @property
    def flips(self) -> int:
        """How often the test changed between failing and passing, run to run."""
        states = [s.failed for s in self.seen if s.failed or s.passed]
        return sum(1 for a, b in itertools.pairwise(states) if a != b)

    @property
    def failing_streak(self) -> list[Seen]:
        """The failing runs since it last passed, oldest first (empty if its last run passed)."""
        streak: list[Seen] = []
        for seen in reversed(self.seen):
            if seen.passed or not seen.failed:
                break
            streak.append(seen)
        return streak[::-1]

    @property
    def first_failing(self) -> Seen | None:
        streak = self.failing_streak
        return streak[0] if streak else None

    @property
    def last_green(self) -> Seen | None:
        """The newest run it passed in without failing (the sha to compare the failure with)."""
        return next((s for s in reversed(self.seen) if s.green), None)

    @property
    def flaky(self) -> tuple[str, Seen] | None:
        """Why the test looks flaky, with the run that shows it: it failed and passed within one run
        (retried), on one sha, or passed on a rerun attempt of a run it failed in."""
        by_sha: dict[str, list[Seen]] = {}
        for seen in self.seen:
            if seen.failed and seen.passed:
                return f"failed and passed within run {seen.run_id}", seen
            if seen.sha:
                by_sha.setdefault(seen.sha, []).append(seen)
        for sha, runs in by_sha.items():
            failed = [s for s in runs if s.failed]
            passed = [s for s in runs if s.passed]
            if failed and passed:
                rerun = next((p for p in passed if p.attempt > 1 and any(f.attempt < p.attempt for f in failed)), None)
                if rerun is not None:
                    return f"passed on rerun attempt {rerun.attempt} of run {rerun.run_id}", rerun
                return f"failed and passed on the same sha {sha[:8]}", passed[-1]
        return None

    def as_json(self) -> dict[str, Any]:
        first, green = self.first_failing, self.last_green
        return {
            "runs": self.runs,
            "failed": sum(1 for s in self.seen if s.failed),
            "failRate": round(self.fail_rate, 3),
            "flips": self.flips,
            "firstFailing": first.as_json() if first else None,
            "lastGreen": green.as_json() if green else None,
        }
