"""Validation by evidence (issue 16): after the fix, the test's next green runs close the loop.

When an incident reaches the milestone its playbook's ``validation`` starts at (``fix_merged``), it
awaits its test's next ``green_runs`` green runs on the branch it failed on (the test as
``slackbot.history`` keys it). Every report's outcomes pass by ``witness`` after its history is
written: a green run is counted (audited, shown on the card), a failure interrupts the count (the
thread says by which run, and it starts again), and the last green run reaches the milestone
through the core like any milestone, the runs' links as its proof. A person may still post the
milestone by hand; any milestone that moves the incident on stops the count.

What an ingest pays when nothing awaits on its branch: one indexed lookup of ``validation_scope``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from slackbot.config.policy import Milestone
from slackbot.db.models import Incident, Run
from slackbot.domain.changes import Actor
from slackbot.domain.effects import EffectKind, Event
from slackbot.history.outcomes import FAILED, PASSED, key_of, lookup
from slackbot.incidents.effects import BOT_ACTOR
from slackbot.incidents.state import Turn

ACTOR = Actor(BOT_ACTOR, "ingest")
AWAITING, COMPLETE, STOPPED = "awaiting", "complete", "stopped"


def scope(repository: str, branch: str | None) -> str:
    return f"{repository}\n{branch or ''}"


@dataclass(frozen=True)
class Reached:
    """What the last green run asks of the core: the milestone, with the runs' links as its proof."""

    milestone: Milestone
    fields: dict[str, str]


def follow(turn: Turn, milestone: str) -> None:
    """The incident's milestone moved (or it resolved): at the playbook's ``after``, await green
    runs from now on; at anything else, stop awaiting (the progress stays for the card)."""
    incident, rule = turn.incident, turn.playbook.policy.validation
    if rule is not None and milestone == rule.after and incident.is_open:
        run = turn.session.get(Run, incident.first_run_pk) if incident.first_run_pk else None
        if run is None:  # an alert's incident has no test history to watch
            return
        incident.validation_scope = scope(run.repository, run.branch)
        incident.validation = {
            "state": AWAITING,
            "key": key_of(incident.scenario_id, incident.invariant_id, incident.test_identity).hex(),
            "branch": run.branch or "",
            "needed": rule.green_runs,
            "green": [],
            "interrupted": None,
        }
    elif incident.validation_scope is not None:
        incident.validation_scope = None
        incident.validation = {**(incident.validation or {}), "state": STOPPED}


def awaiting(session: Session, run: Run, outcomes: bytes) -> Iterator[tuple[int, int]]:
    """(incident id, the test's outcome flags in this report) for each incident awaiting green runs
    on this run's branch whose test the report carried, in id order (the lock order)."""
    rows = session.exec(
        select(Incident.id, Incident.validation)
        .where(Incident.validation_scope == scope(run.repository, run.branch))
        .order_by(col(Incident.id))
    ).all()
    for incident_id, progress in rows:
        flags = lookup(outcomes, bytes.fromhex(str((progress or {}).get("key", ""))))
        if incident_id is not None and flags and flags & (PASSED | FAILED):
            yield incident_id, flags


def _seen(run: Run) -> dict[str, Any]:
    return {"runId": run.run_id, "attempt": run.run_attempt, "url": run.url, "sha": run.sha}


def _label(seen: dict[str, Any]) -> str:
    attempt = int(seen.get("attempt") or 1)
    return f"run {seen['runId']}" + (f" (attempt {attempt})" if attempt > 1 else "")


def witness(turn: Turn, run: Run, flags: int) -> Reached | None:
    """One report's outcome of the awaited test. Returns the milestone to reach when this green run
    is the last one needed; the core reaches it."""
    incident, rule = turn.incident, turn.playbook.policy.validation
    progress = dict(incident.validation or {})
    # Checked again under the incident's lock: a concurrent ingest may have finished it meanwhile.
    if (
        rule is None
        or progress.get("state") != AWAITING
        or incident.validation_scope != scope(run.repository, run.branch)
    ):
        return None
    needed, green, seen = int(progress["needed"]), list(progress["green"]), _seen(run)
    if flags & FAILED:
        progress.update(green=[], interrupted=seen)
        incident.validation = progress
        turn.record(
            Event.VALIDATION_EVIDENCE,
            f"Validation interrupted by {_label(seen)}: the test failed again after {len(green)}/{needed} "
            "green runs; the count starts again",
            outcome="failed",
            run=seen,
            counted=len(green),
        )
        assert incident.id is not None and run.id is not None
        turn.effects.enqueue(
            EffectKind.INCIDENT_NOTE,
            f"validation-interrupted:{incident.id}:{run.id}",
            {
                "template": "validation_interrupted",
                "url": run.url,
                "label": f"{run.repository} #{run.run_id} attempt {run.run_attempt}",
                "counted": len(green),
                "needed": needed,
                "branch": progress.get("branch", ""),
            },
            incident_id=incident.id,
            lane=incident.channel,
        )
        turn.changed()
        return None
    # Each CI run counts once: a report sent again, another shard or a rerun attempt of a run
    # already counted is not new evidence.
    if any(g["runId"] == seen["runId"] for g in green):
        return None
    green.append(seen)
    progress["green"] = green
    turn.record(
        Event.VALIDATION_EVIDENCE,
        f"Validation {len(green)}/{needed}: {_label(seen)} passed",
        outcome="passed",
        run=seen,
        counted=len(green),
    )
    if len(green) < needed:
        incident.validation = progress
        turn.changed()
        return None
    incident.validation = {**progress, "state": COMPLETE}
    incident.validation_scope = None  # done: the milestone it reaches does not stop it
    milestone = turn.playbook.policy.milestone(rule.reaches)
    assert milestone is not None and milestone.asks  # policy.Validation checked both
    links = " · ".join(f"{g['url'] or _label(g)}" + (f" ({g['sha'][:12]})" if g.get("sha") else "") for g in green)
    where = progress.get("branch") or "its branch"
    proof = f"{needed} green run{'s' if needed != 1 else ''} in a row on {where}: {links}"
    return Reached(milestone, {milestone.asks[0].key: proof})
