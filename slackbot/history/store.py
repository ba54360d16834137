"""Keeping and reading test history: one ``RunResults`` row per report, read a branch at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import exists
from sqlalchemy import select as select_columns  # six columns: more than sqlmodel.select types
from sqlmodel import Session, col, select

from slackbot.db.models import Incident, Run, RunResults
from slackbot.history.outcomes import ResultLike, failed_count, key_of, lookup, pack
from slackbot.history.summary import History, Seen

# How far back a test's history reaches: enough runs to see a flip or a streak, few enough that
# reading them stays a few milliseconds when an ingest opens incidents.
WINDOW = 60
_SEARCHES = 200


def record(
    session: Session, run: Run, results: Iterable[ResultLike], now: datetime, *, new_run: bool = False
) -> RunResults | None:
    """Every result of one report, passes included. The same report sent again adds nothing;
    a run reported in several files (one per shard) adds one row per file. ``new_run``: the run
    was created by this transaction, so it has no row yet to look for."""
    assert run.id is not None
    packed = pack(results)
    if not packed:
        return None
    content_key = hashlib.sha256(packed).hexdigest()[:32]
    if not new_run and session.scalar(
        select(exists().where(col(RunResults.run_pk) == run.id, col(RunResults.content_key) == content_key))
    ):
        return None
    failed = failed_count(packed)
    row = RunResults(
        run_pk=run.id,
        content_key=content_key,
        repository=run.repository,
        branch=run.branch or "",
        sha=run.sha,
        attempt=run.run_attempt,
        results=len(packed) // 9,
        failed=failed,
        outcomes=packed,
        recorded_at=now,
    )
    session.add(row)
    return row


class StoredReport(NamedTuple):
    """One stored report of a branch, with its run."""

    run_pk: int
    sha: str | None
    attempt: int
    outcomes: bytes
    run_id: str
    url: str | None


def recent(session: Session, repository: str, branch: str | None, *, window: int = WINDOW) -> list[StoredReport]:
    """The branch's last ``window`` reports, oldest first."""
    rows = session.execute(
        select_columns(
            col(RunResults.run_pk),
            col(RunResults.sha),
            col(RunResults.attempt),
            col(RunResults.outcomes),
            col(Run.run_id),
            col(Run.url),
        )
        .join(Run, col(Run.id) == col(RunResults.run_pk))
        .where(col(RunResults.repository) == repository, col(RunResults.branch) == (branch or ""))
        .order_by(col(RunResults.id).desc())
        .limit(window)
    ).all()
    return [StoredReport(*row) for row in reversed(rows)]


def histories(
    session: Session, repository: str, branch: str | None, keys: Sequence[bytes], *, window: int = WINDOW
) -> dict[bytes, History]:
    """Each test's history on the branch, oldest first, over the branch's last ``window`` reports."""
    return histories_in(recent(session, repository, branch, window=window), keys)


def histories_in(reports: Sequence[StoredReport], keys: Sequence[bytes]) -> dict[bytes, History]:
    """Each test's history in ``reports`` (``recent``'s)."""
    found: dict[bytes, list[Seen]] = {key: [] for key in keys}
    # A few tests: a binary search each per run. Thousands (a run that broke everything): one
    # pass over each run's records into a dict is cheaper than thousands of searches.
    many = len(found) > _SEARCHES
    for run_pk, sha, attempt, packed, run_id, url in reports:
        if many:
            table = {packed[i : i + 8]: packed[i + 8] for i in range(0, len(packed), 9)}
            outcomes = ((key, seen, table.get(key)) for key, seen in found.items())
        else:
            outcomes = ((key, seen, lookup(packed, key)) for key, seen in found.items())
        for _key, seen, flags in outcomes:
            if flags is None:
                continue
            if seen and seen[-1].run_pk == run_pk:  # another shard of the same run
                seen[-1] = seen[-1].also(flags)
            else:
                seen.append(Seen(run_pk, run_id, url, sha, attempt, flags))
    return {key: History(seen) for key, seen in found.items()}


def incident_history(session: Session, incident: Incident) -> tuple[str, History] | None:
    """The history of the test behind ``incident`` on the branch of its latest run, with the branch;
    None before test history was kept (or when the run carried no history)."""
    run = session.get(Run, incident.last_run_pk) if incident.last_run_pk is not None else None
    if run is None:
        return None
    key = key_of(incident.scenario_id, incident.invariant_id, incident.test_identity)
    found = histories(session, run.repository, run.branch, [key])[key]
    return (run.branch or "", found) if found.seen else None
