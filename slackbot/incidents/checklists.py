"""Runbook checklists in the incident thread: posting them, and recording each step's click.

Seed 004 asks for an audit of runbook executions: every click is a ``RunbookExecution`` row (who,
which runbook and step, result, when, runbook version) plus a timeline row, written in one
transaction with the checklist redraw. Seed 004 also says silent failures are not allowed, so a
step marked Failed escalates at once and the thread says so.

A checklist is identified by the key of the outbox row that posts it (``checklist:<id>:<n>``);
the buttons carry that key, the class it was posted for and the runbook version, so a click on a
checklist that was superseded (reclassification) or drawn from an older runbook is refused rather
than recorded against the wrong step.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from slackbot.config import Playbook
from slackbot.config.targets import Role
from slackbot.db.models import Incident, RunbookExecution
from slackbot.domain.changes import Actor, IncidentError, Outcome
from slackbot.domain.checklists import Step, StepRef, runbook_title, steps_for
from slackbot.domain.effects import EffectKind, Event, Key
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY
from slackbot.domain.states import IncidentStatus, StepResult
from slackbot.incidents import reminders
from slackbot.incidents.effects import Effects, utc
from slackbot.incidents.paging import enqueue_page, targets_for
from slackbot.incidents.state import Turn, redraw
from slackbot.reads.checklists import latest_results, newest_checklist


def alertname_of(incident: Incident) -> str | None:
    """Operational alerts (Alertmanager) keep their alertname as the scenario id."""
    return incident.scenario_id if incident.repository == ALERTMANAGER_REPOSITORY else None


def enqueue_checklist(
    effects: Effects,
    incident: Incident,
    *,
    failure_class: str,
    reclassified: bool,
    not_before: datetime | None = None,
) -> str:
    """Post the class's checklist in the thread (after the card exists: the outbox handler waits
    for it). Called after the change that classified, so the revision names this classification.
    On reclassification the older checklist is redrawn as superseded, without buttons.
    Returns the new checklist's key."""
    assert incident.id is not None
    key = Key.checklist(incident.id, incident.revision)
    effects.enqueue(
        EffectKind.CHECKLIST,
        key,
        {"class": failure_class},
        incident_id=incident.id,
        lane=incident.channel,
        not_before=not_before,
    )
    if reclassified:
        effects.enqueue(
            EffectKind.CHECKLIST_UPDATE,
            Key.checklist_superseded(key),
            {"superseded_by": key},
            incident_id=incident.id,
            lane=incident.channel,
        )
    return key


def record_step(turn: Turn, ref: StepRef) -> Outcome:
    """Record one click. Validates everything first, so a refused click leaves no row behind."""
    session, playbook, incident, actor, effects = turn.session, turn.playbook, turn.incident, turn.actor, turn.effects
    assert incident.id is not None
    results = [r.value for r in StepResult]
    if ref.result not in results:
        raise IncidentError(f"unknown step result '{ref.result}'; use one of: {', '.join(results)}")
    if incident.failure_class != ref.failure_class or newest_checklist(session, incident.id) != ref.checklist:
        raise IncidentError(
            f"{incident.key} was reclassified since this checklist was posted; use the newer checklist in the thread"
        )
    steps = steps_for(playbook, ref.failure_class, alertname_of(incident))
    step = next((s for s in steps if s.runbook == ref.runbook and s.index == ref.index), None)
    if step is None or step.version != ref.version:
        raise IncidentError(
            "the runbook changed since this checklist was posted; "
            f"`/triage runbook` shows the current steps for {incident.key}"
        )
    if ref.result == StepResult.FAILED and incident.status != IncidentStatus.OPEN:
        raise IncidentError(
            f"{incident.key} is resolved, so a failed step cannot escalate it; "
            "if the failure is back, the next CI report reopens or opens an incident"
        )
    latest = latest_results(session, incident.id).get(step.key)
    if latest is not None and latest.result == ref.result and latest.actor == actor.user_id:
        return Outcome(incident.id, f"you already marked step {step.index} {ref.result}", changed=False)

    execution = RunbookExecution(
        incident_id=incident.id,
        runbook=step.runbook,
        runbook_version=step.version,
        step_index=step.index,
        step_text=step.text,
        result=ref.result,
        actor=actor.user_id,
        at=utc(effects.now),
    )
    session.add(execution)
    session.flush()  # the id makes the redraw and the page for this click unique
    title = runbook_title(playbook, step.runbook)
    effects.record(
        Event.RUNBOOK_STEP,
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
        EffectKind.CHECKLIST_UPDATE,
        Key.checklist_update(ref.checklist, execution.id),
        {"checklist": ref.checklist},
        incident_id=incident.id,
        lane=incident.channel,
    )
    if ref.result == StepResult.FAILED:
        _escalate(session, playbook, incident, step, execution, actor, effects)
    reminders.push_back(session, incident, effects.now, playbook.policy.status_update_every)
    return Outcome(incident.id, f"{incident.key}: step {step.index} {ref.result}")


def failed_step_roles(playbook: Playbook) -> list[Role]:
    """Who a failed step pages: the first escalation level, or the escalation target."""
    escalation = playbook.policy.escalation
    return list(escalation.levels[0].notify) if escalation else ["escalation"]


def _escalate(
    session: Session,
    playbook: Playbook,
    incident: Incident,
    step: Step,
    execution: RunbookExecution,
    actor: Actor,
    effects: Effects,
) -> None:
    """No silent failures (seed 004): page the first escalation level and say so in the thread."""
    if incident.escalation_level < 1:
        # the level moves, so the audit trail says so, as for every other escalation
        effects.record(
            Event.ESCALATED,
            f"Escalated by {actor.user_id}: runbook step {step.index} failed",
            incident_id=incident.id,
            actor=actor.user_id,
            source=actor.source,
            data={"reason": "runbook_step_failed", "level": 1},
        )
    incident.escalation_level = max(incident.escalation_level, 1)
    incident.revision += 1
    incident.updated_at = utc(effects.now)
    session.add(incident)
    enqueue_page(
        effects,
        incident,
        targets_for(playbook, incident, failed_step_roles(playbook)),
        reason="runbook_step_failed",
        step=f"{step.runbook}.{step.index}.{execution.id}",
        note=f"{runbook_title(playbook, step.runbook)}, step {step.index}: {step.text}",
        actor=actor.user_id,
    )
    redraw(incident, effects)
