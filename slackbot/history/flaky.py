"""The flakiest tests: which recently failing tests also keep passing, from their test history.

Test history stores digests, not names, so the candidates are the tests behind recent incidents
(a test that flipped has failed, and every failure has an incident): those opened in the window
and those still open, each read by its own index and capped, so 100,000 incidents cost what a
few hundred do. Their histories are then read a branch at a time (``store.histories``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select as select_columns
from sqlmodel import Session, col

from slackbot.db.models import Incident, Run
from slackbot.history.outcomes import key_of
from slackbot.history.store import histories
from slackbot.slack.digest import FlakyTest

CANDIDATES = 200  # per query: within store.histories' binary-search range
MIN_FLIPS = 2  # one flip is a test that broke and stays broken; flaky goes back and forth


def flakiest(session: Session, *, since: datetime, channel: str | None = None, limit: int = 5) -> list[FlakyTest]:
    """The tests with the highest flake rate (then most flips) among those behind incidents opened
    since ``since`` or still open, in ``channel`` if given. A test counts when it flipped at least
    ``MIN_FLIPS`` times in its branch's recent runs, or history shows it failed and passed on one
    sha (or on a rerun)."""
    columns = (
        col(Incident.repository),
        col(Run.branch),
        col(Incident.scenario_id),
        col(Incident.invariant_id),
        col(Incident.test_identity),
    )
    recent = select_columns(*columns).join(Run, col(Run.id) == col(Incident.last_run_pk))
    if channel is not None:
        recent = recent.where(col(Incident.channel) == channel)
    opened = recent.where(col(Incident.created_at) >= since).order_by(col(Incident.created_at).desc())
    still_open = recent.where(col(Incident.status) == "open").order_by(col(Incident.created_at).desc())
    tests: dict[tuple[str, str], dict[bytes, str]] = {}
    for query in (opened, still_open):
        for repository, branch, scenario, invariant, identity in session.execute(query.limit(CANDIDATES)):
            name = f"{scenario} / {invariant}" if scenario and invariant else identity
            tests.setdefault((repository, branch or ""), {})[key_of(scenario, invariant, identity)] = name
    found: list[FlakyTest] = []
    for (repository, branch), names in tests.items():
        for key, history in histories(session, repository, branch, list(names)).items():
            evidence = history.flaky
            if history.flips < MIN_FLIPS and evidence is None:
                continue
            known = [s for s in history.seen if s.failed or s.passed]
            found.append(
                FlakyTest(
                    name=names[key],
                    repository=repository,
                    branch=branch,
                    runs=len(known),
                    failed=sum(1 for s in known if s.failed),
                    flips=history.flips,
                    evidence=evidence[0] if evidence else None,
                )
            )
    found.sort(key=lambda t: (-t.flake_rate, -t.flips, -t.fail_rate, t.name))
    return found[:limit]
