"""A suggestion worked out again when evidence arrives after the incident opened (issue 16).

An incident's suggestion is computed when it opens, from what was known then. Two signals often
arrive later: the changes since the last green sha (GitHub's compare, ``outbox.suspect_deliveries``)
and, in real CI, the pass that shows a flake: a rerun attempt of the failing run, or another run of
its sha, reported after the failure opened the incident. ``again`` is the one transition for both:
while nobody has classified the incident, the new votes join the ones it was opened with (taking
the place of their own signal's earlier votes: the history read again no longer says "failing on
every run since"), and the timeline says why the suggestion moved. A classified incident keeps its
class and its suggestion.

What an ingest pays when no incident awaits its passes: nothing for a report without passes, or
without a sha and not a rerun attempt; else one indexed query for the failing runs (the branch's
last reports by ``ix_run_results_branch``, runs by primary key), and only when one matches, their
occurrences by ``ix_occurrences_run_pk`` and the incidents by primary key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import and_, or_
from sqlalchemy import select as select_columns  # more columns than sqlmodel.select types
from sqlmodel import Session, col, select

from slackbot.config import Playbook, Playbooks
from slackbot.db.models import Incident, Occurrence, Run, RunResults
from slackbot.domain.effects import Event
from slackbot.domain.states import IncidentStatus
from slackbot.history.outcomes import FAILED, PASSED, key_of, lookup
from slackbot.history.store import WINDOW
from slackbot.history.summary import Seen
from slackbot.incidents.effects import Effects
from slackbot.incidents.state import changed
from slackbot.suggest.signals import rerun_votes
from slackbot.suggest.suggestion import Vote, revise

_CHUNK = 500


def again(incident: Incident, playbook: Playbook, votes: list[Vote], why: str, effects: Effects) -> bool:
    """Work the suggestion out again with ``votes`` (one signal's, read again); ``why`` ends the
    timeline row. False when the incident is classified, predates suggestions, or nothing moved.
    The caller makes the change visible (one redraw)."""
    if incident.failure_class or incident.suggestion_votes is None:
        return False
    suggestion = revise(playbook, incident.suggestion_votes, votes)
    if suggestion is None:
        return False
    before = incident.suggested_class
    incident.suggested_class = suggestion.failure_class
    incident.suggested_reason = suggestion.reason(playbook)
    incident.suggested_confidence = suggestion.confidence
    incident.suggestion_votes = suggestion.as_json()
    label = playbook.class_label
    moved = "" if not before else " again" if before == suggestion.failure_class else f" instead of {label(before)}"
    effects.record(
        Event.ROUTED,
        f"Suggested class {label(suggestion.failure_class)} ({round(100 * suggestion.confidence)}% confident)"
        + moved
        + why,
        incident_id=incident.id,
        data={"class": suggestion.failure_class, "previous": before, "confidence": suggestion.confidence},
    )
    return True


@dataclass(frozen=True)
class _Failed:
    incident_id: int
    playbook: str
    key: bytes  # the test, as ``history.outcomes`` keys it
    seen: Seen  # the run it failed in


def _failed_earlier(session: Session, run: Run) -> list[_Failed]:
    """Each open, unclassified incident with a failure in an earlier attempt of this run or in
    another run of its sha on its branch, in id order (the lock order). The failing run is looked
    for among the branch's last ``WINDOW`` reports: a rerun comes soon after, and the lookup stays a
    short index range however long the branch's history. Runs first, then their occurrences: asked
    in one query, SQLite may start from every open incident instead."""
    matches = [and_(col(Run.run_id) == run.run_id, col(Run.run_attempt) < run.run_attempt)]
    if run.sha:
        matches.append(col(Run.sha) == run.sha)
    recent = (
        select(col(RunResults.run_pk))
        .where(col(RunResults.repository) == run.repository, col(RunResults.branch) == (run.branch or ""))
        .order_by(col(RunResults.id).desc())
        .limit(WINDOW)
    )
    runs = {
        pk: Seen(pk, run_id, url, sha, attempt, FAILED)
        for pk, run_id, url, sha, attempt in session.execute(
            select_columns(col(Run.id), col(Run.run_id), col(Run.url), col(Run.sha), col(Run.run_attempt)).where(
                col(Run.id).in_(recent), col(Run.id) != run.id, or_(*matches)
            )
        ).all()
    }
    if not runs:
        return []
    rows = session.execute(
        select_columns(
            col(Incident.id),
            col(Incident.playbook),
            col(Incident.scenario_id),
            col(Incident.invariant_id),
            col(Incident.test_identity),
            col(Occurrence.run_pk),
        )
        .join(Incident, col(Incident.id) == col(Occurrence.incident_id))
        .where(
            col(Occurrence.run_pk).in_(list(runs)),
            col(Incident.status) == IncidentStatus.OPEN,
            col(Incident.failure_class).is_(None),
        )
        .distinct()
        .order_by(col(Incident.id), col(Occurrence.run_pk))
    ).all()
    return [
        _Failed(incident_id, playbook, key_of(scenario, invariant, test), runs[pk])
        for incident_id, playbook, scenario, invariant, test, pk in rows
        if incident_id is not None
    ]


def _rerun_votes(session: Session, playbooks: Playbooks, run: Run, outcomes: RunResults) -> dict[int, list[Vote]]:
    """The flake votes this report's passes cast, by incident."""
    if outcomes.results == outcomes.failed or (not run.sha and run.run_attempt <= 1):
        return {}  # no pass in the report, or nothing it could be a rerun of: not even a query
    assert run.id is not None
    found: dict[int, list[Vote]] = {}
    for failed in _failed_earlier(session, run):
        flags = lookup(outcomes.outcomes, failed.key)
        if not flags or not flags & PASSED:
            continue
        passed = Seen(run.id, run.run_id, run.url, run.sha, run.run_attempt, flags)
        votes = rerun_votes(playbooks.get(failed.playbook), failed.seen, passed)
        # a rerun of the very run it failed in says more than another run of its sha
        if votes and (failed.incident_id not in found or passed.run_id == failed.seen.run_id):
            found[failed.incident_id] = votes
    return found


def _load_many(session: Session, ids: list[int]) -> Iterator[Incident]:
    """``state.load_for_change`` for many at once, in id order (the lock order): a rerun after an
    outage may speak for thousands of incidents, and one query per incident (each autoflushing the
    last one's change) would hold the ingest for seconds."""
    for start in range(0, len(ids), _CHUNK):
        query = select(Incident).where(col(Incident.id).in_(ids[start : start + _CHUNK])).order_by(col(Incident.id))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        yield from session.exec(query).all()


def resuggest(session: Session, playbooks: Playbooks, run: Run, outcomes: RunResults, effects: Effects) -> None:
    """The report's passes, seen by the open incidents that failed before on its sha or run: their
    suggestions are worked out again with the history vote they cast. Called by an ingest in its
    transaction, after the report's own incidents are written."""
    found = _rerun_votes(session, playbooks, run, outcomes)
    for incident in _load_many(session, sorted(found)):
        assert incident.id is not None
        votes, playbook = found[incident.id], playbooks.get(incident.playbook)
        claimed = {v.failure_class for v in votes}
        if any(v["signal"] == "history" and v["class"] in claimed for v in incident.suggestion_votes or []):
            continue  # its history already says so (another shard, a later attempt): nothing new
        if incident.is_open and again(incident, playbook, votes, f": {votes[0].reason}", effects):
            changed(session, playbook, incident, effects, remind=False)
