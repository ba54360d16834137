"""Operational alerts from Prometheus Alertmanager (webhook payload version 4) as incidents.

Seed 004 keeps alerting rules in the monitoring provider and asks for a runbook per failure mode;
a playbook's ``policy.alerts`` holds those runbooks. This maps an alert group onto the incident model
without new tables:

* one **incident per alert group while it fires**: the fingerprint is derived from
  ``groupKey``, so the open-incident uniqueness rule (``open_key``) gives "one card per group";
  a group that fires again after it was resolved opens a new incident;
* ``repository`` is ``alertmanager``; ``scenarioId`` is the ``alertname`` (what responders search
  for); there is no invariant; ``keyEntityIds`` are the group's common labels; the suite is
  ``alerts``, so the card goes to the playbook's ``suites.alerts`` channel when it has one, else
  its default channel;
* the playbook is the one routing picks for the alert (seed 004's ``operations`` playbook ships
  for them); the alert's runbook there (matched on ``alertname``) presets the failure mode (the
  class) and severity, its detect → document steps become the incident's checklist, its owner is
  paged and its severity pages whom the policy says (and files the bead it says). An alert
  without a runbook is an unclassified incident flagged as a documentation gap, and pages whoever
  owns unclassified incidents;
* every notification is a **run** (provider ``alertmanager``) and each newly firing alert (its
  ``fingerprint`` and ``startsAt``) an occurrence, so repeats are counted the same way as CI
  failures;
* ``status: resolved`` resolves the incident with the note "resolved by Alertmanager".

Alertmanager delivers at least once, repeats unchanged groups every ``repeat_interval``, and HA
pairs both send; a notification is identified by a hash of ``groupKey``, ``status`` and the sorted
alert fingerprints, statuses and start times, recorded in ``processed_deliveries`` in the same
transaction as its effects, so a duplicate changes nothing however it arrives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from slackbot.clock import Clock
from slackbot.config import FailureContext, Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, ProcessedDelivery, Run
from slackbot.domain.changes import Actor, IncidentError, Resolve
from slackbot.domain.effects import EffectKind, Event, Key
from slackbot.domain.ids import ALERTMANAGER_REPOSITORY, short_symptom
from slackbot.domain.states import IncidentStatus
from slackbot.incidents import opening, state
from slackbot.incidents.core import IncidentCore
from slackbot.incidents.effects import Effects, utc

REPOSITORY = ALERTMANAGER_REPOSITORY
SUITE = "alerts"
ACTOR = Actor(user_id="Alertmanager", source="api")
RESOLVED_NOTE = "resolved by Alertmanager"
_ZERO_TIME = "0001-01-01"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class AmAlert(_Model):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @field_validator("labels", "annotations", mode="before")
    @classmethod
    def _text_values(cls, value: object) -> object:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value

    @property
    def identity(self) -> str:
        """Stable per alert instance: Alertmanager's label hash, or the labels themselves."""
        return self.fingerprint or hashlib.sha256(json.dumps(self.labels, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def started(self) -> datetime | None:
        if not self.starts_at or self.starts_at.startswith(_ZERO_TIME):
            return None
        try:
            return datetime.fromisoformat(self.starts_at.replace("Z", "+00:00"))
        except ValueError:
            return None

    def describe(self) -> str:
        """``instance=db-1 job=api`` — the labels that tell alerts of one group apart."""
        shown = [f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname"]
        return " ".join(shown)[:200] or self.labels.get("alertname", "alert")


class AlertmanagerPayload(_Model):
    version: str
    group_key: str = Field(min_length=1, max_length=2000)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict)
    common_labels: dict[str, str] = Field(default_factory=dict)
    common_annotations: dict[str, str] = Field(default_factory=dict)
    external_url: str = Field(default="", alias="externalURL")
    truncated_alerts: int = 0
    alerts: list[AmAlert] = Field(default_factory=list, max_length=10000)

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if str(value) != "4":
            raise ValueError(f"unsupported webhook payload version {value!r}; this server reads version 4")
        return str(value)

    @field_validator("group_labels", "common_labels", "common_annotations", mode="before")
    @classmethod
    def _text_values(cls, value: object) -> object:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value

    @property
    def alertname(self) -> str:
        for labels in (self.common_labels, self.group_labels, *(a.labels for a in self.alerts)):
            if labels.get("alertname"):
                return labels["alertname"][:50]
        return "UnnamedAlert"

    def annotation(self, name: str) -> str:
        return self.common_annotations.get(name) or next(
            (a.annotations[name] for a in self.alerts if a.annotations.get(name)), ""
        )

    def snapshot(self, *, resolved_at: datetime | None = None) -> dict[str, Any]:
        """What the alert card shows, as this notification tells it (``Incident.alert``). Labels
        are the group's common ones: every alert of the group has them, so a silence matching
        them silences the group and nothing else."""
        firing = [a for a in self.alerts if a.status == "firing"]
        generator = next((a.generator_url for a in (*firing, *self.alerts) if a.generator_url), "")
        labels = dict(sorted(self.common_labels.items())[:_MAX_LABELS]) or {"alertname": self.alertname}
        return {
            "status": self.status,
            "alertname": self.alertname,
            "labels": {_cut(k, 100): _cut(v, _MAX_TEXT) for k, v in labels.items()},
            "summary": _cut(self.annotation("summary"), _MAX_TEXT),
            "description": _cut(self.annotation("description"), _MAX_TEXT),
            "value": _cut(self.annotation("value"), _MAX_TEXT),
            "runbook_url": _cut(self.annotation("runbook_url"), _MAX_URL),
            "dashboard_url": _cut(self.annotation("dashboard_url") or self.annotation("grafana_url"), _MAX_URL),
            "external_url": _cut(self.external_url, _MAX_URL),
            "generator_url": _cut(generator, _MAX_URL),
            "firing": len(firing),
            "alerts": [_cut(self._distinct(a), 200) for a in firing][:10],
            "firing_ids": sorted({a.identity for a in firing})[:_MAX_FIRING_IDS],
            "resolved_at": resolved_at.isoformat() if resolved_at else None,
        }

    def _distinct(self, alert: AmAlert) -> str:
        """``instance=db-1``: what tells this alert from the rest of its group (the card shows the
        labels they share once)."""
        own = [f"{k}={v}" for k, v in sorted(alert.labels.items()) if self.common_labels.get(k) != v]
        return " ".join(own) or alert.describe()

    @property
    def notification_id(self) -> str:
        """Equal for the repeats and HA twins of one notification, different when anything
        a responder would notice changed (an alert started, resolved or joined)."""
        alerts = sorted((a.identity, a.status, a.starts_at) for a in self.alerts)
        basis = json.dumps([self.group_key, self.status, alerts], separators=(",", ":"))
        return hashlib.sha256(basis.encode()).hexdigest()[:40]


_MAX_LABELS = 30
_MAX_TEXT = 500
_MAX_URL = 2000
_MAX_FIRING_IDS = 1000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def group_fingerprint(group_key: str) -> str:
    return hashlib.sha256(f"alertmanager|{group_key}".encode()).hexdigest()[:32]


@dataclass
class AlertOutcome:
    status: Literal["opened", "updated", "unchanged", "resolved", "not_open", "duplicate", "kept_open"]
    incident_id: int | None = None
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "incident": f"INC-{self.incident_id}" if self.incident_id else None,
            "message": self.message,
        }


class AlertmanagerService:
    def __init__(self, playbooks: Playbooks, clock: Clock) -> None:
        self.playbooks = playbooks
        self.clock = clock
        self.core = IncidentCore(playbooks, clock)

    def playbook_for(self, alertname: str) -> Playbook:
        return self.playbooks.select(FailureContext(source="alertmanager", alertname=alertname, suite=SUITE))

    def handle(self, engine: Engine, payload: AlertmanagerPayload, *, attempts: int = 3) -> AlertOutcome:
        """One transaction per notification. Two replicas (or an HA pair) racing on the same
        notification collide on the processed-delivery row; the loser retries, finds it and
        reports a duplicate. Two different notifications racing to open the same group collide on
        the open incident's key; the loser retries and joins the winner's incident."""
        for attempt in range(attempts):
            try:
                with session_scope(engine) as session:
                    return self._handle(session, payload)
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _handle(self, session: Session, payload: AlertmanagerPayload) -> AlertOutcome:
        now = self.clock.now()
        delivery = payload.notification_id
        seen = session.exec(
            select(ProcessedDelivery.id).where(
                ProcessedDelivery.source == "alertmanager", ProcessedDelivery.delivery_id == delivery
            )
        ).first()
        if seen is not None:
            return AlertOutcome("duplicate", message="this notification was already handled")
        session.add(ProcessedDelivery(source="alertmanager", delivery_id=delivery, received_at=utc(now)))
        session.flush()
        fp = group_fingerprint(payload.group_key)
        query = select(Incident).where(Incident.open_key == fp)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        incident = session.exec(query).first()
        if payload.status == "resolved":
            return self._resolve(session, payload, incident)
        firing = [a for a in payload.alerts if a.status == "firing"]
        if incident is None and not firing:
            return AlertOutcome("not_open", message="no firing alert and no open incident for this group")
        run = self._record_run(session, payload, delivery, len(firing), now)
        if incident is None:
            return self._open(session, payload, run, firing, fp, now)
        return self._update(session, payload, incident, run, firing, now)

    # -- firing -----------------------------------------------------------------------------------

    def _record_run(
        self, session: Session, payload: AlertmanagerPayload, delivery: str, firing: int, now: datetime
    ) -> Run:
        run = Run(
            provider="alertmanager",
            repository=REPOSITORY,
            run_id=delivery[:24],
            run_attempt=1,
            url=payload.external_url or None,
            workflow=payload.receiver[:200] or None,
            suite=SUITE,
            finished_at=utc(now),
            received_at=utc(now),
            results_total=len(payload.alerts),
            results_failed=firing,
            results_passed=len(payload.alerts) - firing,
        )
        session.add(run)
        session.flush()
        return run

    @staticmethod
    def _occurrence_key(alert: AmAlert) -> str:
        return hashlib.sha256(f"{alert.identity}|{alert.starts_at}".encode()).hexdigest()[:40]

    def _occurrences(
        self,
        session: Session,
        incident: Incident,
        run: Run,
        alerts: list[AmAlert],
        payload: AlertmanagerPayload,
        now: datetime,
    ) -> list[AmAlert]:
        """Add an occurrence for each alert instance this incident has not counted yet. An alert
        that was firing at the last notification is the same alert whatever its start time: the
        two instances of an HA pair each start an alert when they receive it (amtool without
        ``--start``, or a pair of Prometheus replicas), so their twins differ by milliseconds.
        Once an alert was notified resolved, firing again is a new occurrence."""
        assert incident.id is not None and run.id is not None
        known = set(session.exec(select(Occurrence.occurrence_key).where(Occurrence.incident_id == incident.id)).all())
        firing = set((incident.alert or {}).get("firing_ids") or [])
        fresh: list[AmAlert] = []
        for alert in alerts:
            key = self._occurrence_key(alert)
            if key in known or alert.identity in firing:
                continue
            known.add(key)
            fresh.append(alert)
            evidence = [{"kind": "alertmanager", "path": payload.external_url}] if payload.external_url else []
            if alert.generator_url:
                evidence.append({"kind": "graph", "path": alert.generator_url})
            if alert.annotations.get("runbook_url"):
                evidence.append({"kind": "runbook", "path": alert.annotations["runbook_url"]})
            session.add(
                Occurrence(
                    incident_id=incident.id,
                    run_pk=run.id,
                    occurrence_key=key,
                    status="failed",
                    scenario_id=incident.scenario_id,
                    test_name=alert.describe(),
                    message=alert.annotations.get("summary") or alert.annotations.get("description"),
                    detail=json.dumps({"labels": alert.labels, "annotations": alert.annotations}, sort_keys=True),
                    key_entity_ids={k: v for k, v in alert.labels.items() if k != "alertname"},
                    evidence=evidence,
                    occurred_at=utc(alert.started or now),
                )
            )
        return fresh

    def _open(
        self,
        session: Session,
        payload: AlertmanagerPayload,
        run: Run,
        firing: list[AmAlert],
        fp: str,
        now: datetime,
    ) -> AlertOutcome:
        alertname = payload.alertname
        playbook = self.playbook_for(alertname)
        rule = playbook.alert(alertname)
        summary = payload.annotation("summary") or payload.annotation("description")
        starts = [s for a in firing if (s := a.started) is not None]
        effects = Effects(now=now)
        planned = opening.Opening(
            playbook=playbook,
            fingerprint=fp,
            repository=REPOSITORY,
            test_identity=f"alertmanager::{payload.group_key}"[:500],
            suite=SUITE,
            symptom=short_symptom(summary or (rule.detection if rule else alertname)),
            first_seen=min(starts) if starts else now,
            last_seen=now,
            run_pk=run.id,
            occurrences=0,
            scenario_id=alertname,
            key_entity_ids={k: v for k, v in sorted(payload.common_labels.items()) if k != "alertname"},
            documentation_gap=None if rule else f"alert {alertname} has no runbook in the {playbook.name} playbook",
            preset_class=rule.failure_class if rule else None,
            preset_reason=f"the runbook for alert {alertname}" if rule else None,
            preset_severity=rule.severity if rule else None,
            page_owner=True,  # an alert fired: its owner (or whoever owns unrouted incidents) is paged
        )
        what = f"{alertname} firing ({len(firing)} alert(s), group {payload.group_key})"
        incident = opening.open_one(
            session,
            planned,
            effects,
            created=lambda key: f"{key} opened by Alertmanager: {what}",
            source="alertmanager",
            actor=ACTOR.user_id,
        )
        assert incident.id is not None
        iid = incident.id
        fresh = self._occurrences(session, incident, run, firing, payload, now)
        incident.occurrence_count = len(fresh)
        incident.alert = payload.snapshot()
        session.add(incident)
        effects.enqueue(
            EffectKind.INCIDENT_NOTE,
            Key.alert_runbook(iid),
            {
                "template": "alert_runbook",
                "alertname": alertname,
                "summary": payload.annotation("summary"),
                "description": payload.annotation("description"),
                "detection": rule.detection if rule else "",
                "has_runbook": rule is not None,
                "steps": [{"phase": s.phase or "", "text": s.text} for s in rule.steps] if rule else [],
                "runbook_url": payload.annotation("runbook_url") or "",
                "alerts": [a.describe() for a in firing][:20],
            },
            incident_id=iid,
            lane=incident.channel,
        )
        effects.flush(session)
        return AlertOutcome("opened", iid, f"{incident.key} opened for {alertname}")

    def _update(
        self,
        session: Session,
        payload: AlertmanagerPayload,
        incident: Incident,
        run: Run,
        firing: list[AmAlert],
        now: datetime,
    ) -> AlertOutcome:
        assert incident.id is not None
        fresh = self._occurrences(session, incident, run, firing, payload, now)
        resolved = [a.describe() for a in payload.alerts if a.status == "resolved"]
        snapshot = payload.snapshot()
        effects = Effects(now=now)
        if not fresh and not resolved:
            if snapshot != incident.alert:
                # No alert started or ended, but the group as this instance sends it differs from
                # what the card shows: each of an HA pair may first send the group with only the
                # alerts it had received, and the next notification has them all.
                incident.alert = snapshot
                state.changed(session, self.playbooks.get(incident.playbook), incident, effects, remind=False)
                effects.flush(session)
            return AlertOutcome("unchanged", incident.id, f"{incident.key}: nothing new in this notification")
        incident.alert = snapshot
        note = {
            "template": "alert_update",
            "firing": [a.describe() for a in fresh][:20],
            "resolved": resolved[:20],
            "note": "",
        }
        opening.recur(
            session,
            self.playbooks.get(incident.playbook),
            incident,
            run,
            len(fresh),
            effects,
            post=(EffectKind.INCIDENT_NOTE, Key.alert_update(incident.id, run.id), note),
            message=f"Alertmanager: {len(fresh)} more firing, {len(resolved)} resolved "
            f"({incident.occurrence_count + len(fresh)} in all)",
            source="alertmanager",
            actor=ACTOR.user_id,
        )
        effects.flush(session)
        return AlertOutcome("updated", incident.id, f"{incident.key}: {len(fresh)} more firing")

    # -- resolved ---------------------------------------------------------------------------------

    def _resolve(self, session: Session, payload: AlertmanagerPayload, incident: Incident | None) -> AlertOutcome:
        if incident is None:
            return AlertOutcome("not_open", message="no open incident for this group (already resolved?)")
        assert incident.id is not None
        # The card says the alert cleared whether or not the incident may close with it.
        incident.alert = payload.snapshot(resolved_at=self.clock.now())
        try:
            # The core validates before it changes anything: a refused resolve leaves nothing behind.
            self.core.apply(session, incident.id, ACTOR, Resolve(RESOLVED_NOTE))
        except IncidentError as exc:
            # e.g. a class that needs its bead before resolving and has none yet: the playbook
            # wins, the incident stays open and the thread says why.
            effects = Effects(now=self.clock.now())
            effects.record(
                Event.ALERT_RESOLVED,
                f"Alertmanager resolved the alert; still open: {exc}",
                incident_id=incident.id,
                source="alertmanager",
                actor=ACTOR.user_id,
            )
            effects.enqueue(
                EffectKind.INCIDENT_NOTE,
                Key.alert_kept_open(incident.id, incident.revision),
                {
                    "template": "alert_update",
                    "firing": [],
                    "resolved": [],
                    "note": f"🟢 Alertmanager resolved the alert, but {exc}",
                },
                incident_id=incident.id,
                lane=incident.channel,
            )
            state.changed(session, self.playbooks.get(incident.playbook), incident, effects)
            effects.flush(session)
            return AlertOutcome("kept_open", incident.id, str(exc))
        return AlertOutcome("resolved", incident.id, f"{incident.key} resolved by Alertmanager")


def open_alert_incidents(session: Session) -> list[Incident]:
    """Open incidents that came from Alertmanager (for listings and tests)."""
    return list(
        session.exec(
            select(Incident)
            .where(Incident.repository == REPOSITORY, Incident.status == IncidentStatus.OPEN.value)
            .order_by(col(Incident.id))
        )
    )
