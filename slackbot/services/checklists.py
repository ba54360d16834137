"""Runbook checklists: the class's first-response steps and the detect → diagnose → recover →
verify → document steps, posted in the incident thread with Done / Failed / Skip per step.

Seed 004 asks for an audit of runbook executions: every click is a ``RunbookExecution`` row (who,
which runbook and step, result, when, runbook version) plus a timeline row, written in one
transaction with the checklist redraw. Seed 004 also says silent failures are not allowed, so a
step marked Failed escalates at once: the first escalation level is paged and the thread says so.

A checklist is identified by the dedup key of the outbox row that posts it (``checklist:<id>:<n>``);
the buttons carry that key, the class it was posted for and the runbook version, so a click on a
checklist that was superseded (reclassification) or drawn from an older runbook is refused rather
than recorded against the wrong step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config.models import FailureClass, Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem, RunbookExecution
from slackbot.services import reminders
from slackbot.services.effects import Effects, utc
from slackbot.services.incidents import Actor, IncidentError, Outcome
from slackbot.services.paging import enqueue_page, targets_for

RESULTS = ("done", "failed", "skipped")
RESPONSE = "response"  # the runbook name of policy.response_steps (class checklists use the class key)


@dataclass(frozen=True)
class Step:
    runbook: str  # a class key (first response) or "response" (detect → … → document)
    index: int  # 1-based within its runbook, as people say "step 3"
    text: str
    phase: str | None
    version: int  # routing.yml's version for class steps, policy.yml's for response steps

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.runbook, self.index, self.version)


def steps_for(runbook: Runbook, failure_class: str) -> list[Step]:
    """What the checklist of a class lists: its first-response steps, then the response steps."""
    route = runbook.routing.route(FailureClass(failure_class))
    steps = [
        Step(failure_class, n, text, None, runbook.routing.version) for n, text in enumerate(route.first_response, 1)
    ]
    steps += [
        Step(RESPONSE, n, s.text, s.phase, runbook.policy.version)
        for n, s in enumerate(runbook.policy.response_steps, 1)
    ]
    return steps


def runbook_title(runbook: Runbook, name: str) -> str:
    if name == RESPONSE:
        return "Detect → diagnose → recover → verify → document"
    return f"First response — {runbook.routing.route(FailureClass(name)).label}"


@dataclass(frozen=True)
class StepRef:
    """What one button says: which checklist, which step, which result. Compact JSON in ``value``."""

    incident: int
    checklist: str
    failure_class: str
    runbook: str
    index: int
    version: int
    result: str

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> StepRef:
        try:
            data = json.loads(raw)
            return cls(
                incident=int(data["incident"]),
                checklist=str(data["checklist"]),
                failure_class=str(data["failure_class"]),
                runbook=str(data["runbook"]),
                index=int(data["index"]),
                version=int(data["version"]),
                result=str(data["result"]),
            )
        except (ValueError, KeyError, TypeError):
            raise IncidentError("this checklist button is from an older version of the bot") from None


def enqueue_checklist(
    effects: Effects, *, incident_id: int, channel: str, revision: int, failure_class: str, reclassified: bool
) -> str:
    """Post the class's checklist in the thread (after the card exists: the outbox handler waits
    for it). Called after the change that classified, so ``revision`` names this classification.
    On reclassification the older checklists are redrawn as superseded, without buttons.
    Returns the new checklist's key."""
    key = f"checklist:{incident_id}:{revision}"
    effects.enqueue("checklist", key, {"class": failure_class}, incident_id=incident_id, lane=channel)
    if reclassified:
        effects.enqueue(
            "checklist_update",
            f"checklist-supersede:{key}",
            {"superseded_by": key},
            incident_id=incident_id,
            lane=channel,
        )
    return key


def latest_results(session: Session, incident_id: int) -> dict[tuple[str, int, int], RunbookExecution]:
    """Each step's latest execution (what the checklist shows), keyed like ``Step.key``."""
    rows = session.exec(
        select(RunbookExecution)
        .where(RunbookExecution.incident_id == incident_id)
        .order_by(col(RunbookExecution.at), col(RunbookExecution.id))
    )
    return {(r.runbook, r.step_index, r.runbook_version): r for r in rows}


class ChecklistService:
    def __init__(self, runbook: Runbook, clock: Clock) -> None:
        self.runbook = runbook
        self.clock = clock

    def run(self, engine: Engine, ref: StepRef, actor: Actor) -> Outcome:
        with session_scope(engine) as session:
            return self.record(session, ref, actor)

    def record(self, session: Session, ref: StepRef, actor: Actor) -> Outcome:
        """Record one click. Validates everything first, so a refused click leaves no row behind."""
        if ref.result not in RESULTS:
            raise IncidentError(f"unknown step result '{ref.result}'; use one of: {', '.join(RESULTS)}")
        incident = self._load(session, ref.incident)
        if incident.failure_class != ref.failure_class or newest_checklist(session, ref.incident) != ref.checklist:
            raise IncidentError(
                f"{incident.key} was reclassified since this checklist was posted; "
                "use the newer checklist in the thread"
            )
        steps = steps_for(self.runbook, ref.failure_class)
        step = next((s for s in steps if s.runbook == ref.runbook and s.index == ref.index), None)
        if step is None or step.version != ref.version:
            raise IncidentError(
                "the runbook changed since this checklist was posted; "
                f"`/triage runbook` shows the current steps for {incident.key}"
            )
        if ref.result == "failed" and incident.status != "open":
            raise IncidentError(
                f"{incident.key} is resolved, so a failed step cannot escalate it; "
                "if the failure is back, the next CI report reopens or opens an incident"
            )
        latest = latest_results(session, ref.incident).get(step.key)
        if latest is not None and latest.result == ref.result and latest.actor == actor.user_id:
            return Outcome(incident.id or 0, f"you already marked step {step.index} {ref.result}", changed=False)

        now = self.clock.now()
        effects = Effects(now=now)
        execution = RunbookExecution(
            incident_id=ref.incident,
            runbook=step.runbook,
            runbook_version=step.version,
            step_index=step.index,
            step_text=step.text,
            result=ref.result,
            actor=actor.user_id,
            at=utc(now),
        )
        session.add(execution)
        session.flush()  # the id makes the redraw and the page for this click unique
        title = runbook_title(self.runbook, step.runbook)
        effects.record(
            "runbook_step",
            f"{title}, step {step.index} {ref.result} by {actor.user_id} (runbook v{step.version})",
            incident_id=incident.id,
            actor=actor.user_id,
            source=actor.source,
            data={
                "runbook": step.runbook,
                "step": step.index,
                "result": ref.result,
                "version": step.version,
                "execution": execution.id,
            },
        )
        effects.enqueue(
            "checklist_update",
            f"checklist-update:{ref.checklist}:{execution.id}",
            {"checklist": ref.checklist},
            incident_id=incident.id,
            lane=incident.channel,
        )
        if ref.result == "failed":
            self._escalate(session, incident, step, execution, actor, effects)
        reminders.push_back(session, incident, now, self.runbook.policy.status_update_every)
        effects.flush(session)
        return Outcome(incident.id or 0, f"{incident.key}: step {step.index} {ref.result}")

    def _escalate(
        self,
        session: Session,
        incident: Incident,
        step: Step,
        execution: RunbookExecution,
        actor: Actor,
        effects: Effects,
    ) -> None:
        """No silent failures (seed 004): page the first escalation level and say so in the thread."""
        level = self.runbook.policy.escalation.levels[0]
        incident.escalation_level = max(incident.escalation_level, 1)
        incident.revision += 1
        incident.updated_at = utc(effects.now)
        session.add(incident)
        enqueue_page(
            effects,
            self.runbook,
            incident,
            targets_for(self.runbook, incident, list(level.notify)),
            reason="runbook_step_failed",
            step=f"{step.runbook}.{step.index}.{execution.id}",
            note=f"{runbook_title(self.runbook, step.runbook)}, step {step.index}: {step.text}",
            actor=actor.user_id,
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )

    @staticmethod
    def _load(session: Session, incident_id: int) -> Incident:
        query = select(Incident).where(Incident.id == incident_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()  # incident first, like every other change (lock order)
        incident = session.exec(query).first()
        if incident is None:
            raise IncidentError(f"no incident INC-{incident_id}")
        return incident


Results = dict[tuple[str, int, int], RunbookExecution]


def newest_checklist(session: Session, incident_id: int) -> str | None:
    """The key of the incident's newest checklist: the live one (older ones are superseded)."""
    query = (
        select(OutboxItem.dedup_key)
        .where(OutboxItem.incident_id == incident_id, OutboxItem.kind == "checklist")
        .order_by(col(OutboxItem.id).desc())
        .limit(1)
    )
    return session.exec(query).first()


def checklist_state(engine: Engine, incident_id: int) -> tuple[Incident, Results, str | None] | None:
    """The incident, its steps' latest results and its newest checklist: the renderer's input."""
    with session_scope(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return None
        return incident, latest_results(session, incident_id), newest_checklist(session, incident_id)
