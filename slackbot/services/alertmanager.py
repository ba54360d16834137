"""Operational alerts from Prometheus Alertmanager (webhook payload version 4) as incidents.

Seed 004 keeps alerting rules in the monitoring provider and asks for a runbook per failure mode;
``policy.alerts`` holds those runbooks. This service maps an alert group onto the incident model
without new tables:

* one **incident per alert group while it fires**: the fingerprint is derived from
  ``groupKey``, so the open-incident uniqueness rule (``open_key``) gives "one card per group";
  a group that fires again after it was resolved opens a new incident;
* ``repository`` is ``alertmanager``; ``scenarioId`` is the ``alertname`` (what responders search
  for); there is no invariant; ``keyEntityIds`` are the group's common labels; the suite is
  ``alerts``, so the card goes to ``routing.suites.alerts`` when configured, else the default
  channel;
* the alert's runbook entry (matched on ``alertname``) presets the class and severity, like the
  contract rule does for harness defects, and its detect → document steps are posted in the
  thread at once; the owner of that class is paged, and SEV-1 also pages whoever the severity
  policy names. An alert without a runbook entry is an ordinary unclassified incident (the
  20-minute rule applies) flagged as a documentation gap;
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
from slackbot.config.models import AlertRunbook, Runbook
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, ProcessedDelivery, Run
from slackbot.services.effects import Effects, utc
from slackbot.services.fingerprint import short_symptom
from slackbot.services.incidents import Actor, IncidentError, IncidentService
from slackbot.services.paging import enqueue_page, targets_for

REPOSITORY = "alertmanager"
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

    @property
    def notification_id(self) -> str:
        """Equal for the repeats and HA twins of one notification, different when anything
        a responder would notice changed (an alert started, resolved or joined)."""
        alerts = sorted((a.identity, a.status, a.starts_at) for a in self.alerts)
        basis = json.dumps([self.group_key, self.status, alerts], separators=(",", ":"))
        return hashlib.sha256(basis.encode()).hexdigest()[:40]


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
    def __init__(self, runbook: Runbook, clock: Clock) -> None:
        self.runbook = runbook
        self.clock = clock
        self.incidents = IncidentService(runbook, clock)

    def runbook_for(self, alertname: str | None) -> AlertRunbook | None:
        return next((a for a in self.runbook.policy.alerts if a.alertname == alertname), None)

    @property
    def channel(self) -> str:
        return self.runbook.routing.channel_for_suite(SUITE)

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
            return self._resolve(session, incident)
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
        """Add an occurrence for each alert instance this incident has not counted yet."""
        assert incident.id is not None and run.id is not None
        known = set(session.exec(select(Occurrence.occurrence_key).where(Occurrence.incident_id == incident.id)).all())
        fresh: list[AmAlert] = []
        for alert in alerts:
            key = self._occurrence_key(alert)
            if key in known:
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
        rule = self.runbook_for(alertname)
        policy = self.runbook.policy
        summary = payload.annotation("summary") or payload.annotation("description")
        starts = [s for a in firing if (s := a.started) is not None]
        first_seen = utc(min(starts)) if starts else utc(now)
        incident = Incident(
            fingerprint=fp,
            open_key=fp,
            repository=REPOSITORY,
            scenario_id=alertname,
            invariant_id=None,
            test_identity=f"alertmanager::{payload.group_key}"[:500],
            symptom=short_symptom(summary or (rule.detection if rule else alertname)),
            key_entity_ids={k: v for k, v in sorted(payload.common_labels.items()) if k != "alertname"},
            suite=SUITE,
            channel=self.channel,
            status="open",
            severity=(rule.severity if rule else policy.default_severity).value,
            failure_class=rule.failure_class.value if rule else None,
            class_source="rule" if rule else None,
            classified_at=utc(now) if rule else None,
            suggested_class=rule.failure_class.value if rule else None,
            suggested_reason=f"runbook for alert {alertname}" if rule else None,
            contract_violation=False,
            documentation_gap=None if rule else f"alert {alertname} has no runbook in policy.yml alerts",
            occurrence_count=0,
            first_seen=first_seen,
            last_seen=utc(now),
            first_run_pk=run.id,
            last_run_pk=run.id,
            classify_deadline=utc(now + policy.classify_within),
            created_at=utc(now),
            updated_at=utc(now),
        )
        session.add(incident)
        session.flush()
        assert incident.id is not None
        iid = incident.id
        fresh = self._occurrences(session, incident, run, firing, payload, now)
        incident.occurrence_count = len(fresh)
        session.add(incident)
        effects = Effects(now=now)
        effects.record(
            "created",
            f"{incident.key} opened by Alertmanager: {alertname} firing "
            f"({len(firing)} alert(s), group {payload.group_key})",
            incident_id=iid,
            run_pk=run.id,
            source="api",
            actor=ACTOR.user_id,
            data={"group_key": payload.group_key, "receiver": payload.receiver, "fingerprint": fp},
        )
        if rule is not None:
            effects.record(
                "classified",
                f"Classified {rule.failure_class.value} by the runbook for alert {alertname} ({rule.severity.value})",
                incident_id=iid,
                source="rule",
                data={"class": rule.failure_class.value, "rule": "alert_runbook", "alertname": alertname},
            )
        else:
            effects.record("documentation_gap", incident.documentation_gap or "", incident_id=iid, source="api")
            effects.new_timer(
                subject=f"incident:{iid}", kind="classify", due_at=incident.classify_deadline, incident_id=iid
            )
        effects.enqueue("card", f"card:{iid}:0", incident_id=iid, lane=incident.channel)
        effects.enqueue(
            "incident_note",
            f"alert-runbook:{iid}",
            {
                "template": "alert_runbook",
                "alertname": alertname,
                "summary": payload.annotation("summary"),
                "description": payload.annotation("description"),
                "detection": rule.detection if rule else "",
                "steps": [{"phase": s.phase, "text": s.text} for s in rule.steps] if rule else [],
                "runbook_url": payload.annotation("runbook_url"),
                "alerts": [a.describe() for a in firing][:20],
            },
            incident_id=iid,
            lane=incident.channel,
        )
        if rule is not None:
            roles: list[str] = ["owner", *policy.severities[rule.severity].pages]
            enqueue_page(
                effects,
                self.runbook,
                incident,
                targets_for(self.runbook, incident, roles),
                reason="alert",
                step="open",
                note=f"{alertname} firing" + (f": {summary}" if summary else ""),
                actor=ACTOR.user_id,
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
        if not fresh and not resolved:
            return AlertOutcome("unchanged", incident.id, f"{incident.key}: nothing new in this notification")
        effects = Effects(now=now)
        incident.occurrence_count += len(fresh)
        incident.last_seen = utc(now)
        incident.last_run_pk = run.id
        incident.updated_at = utc(now)
        incident.revision += 1
        session.add(incident)
        effects.record(
            "occurrence",
            f"Alertmanager: {len(fresh)} more firing, {len(resolved)} resolved ({incident.occurrence_count} in all)",
            incident_id=incident.id,
            run_pk=run.id,
            source="api",
            actor=ACTOR.user_id,
            data={"firing": [a.describe() for a in fresh], "resolved": resolved},
        )
        effects.enqueue(
            "incident_note",
            f"alert-update:{incident.id}:{run.id}",
            {
                "template": "alert_update",
                "firing": [a.describe() for a in fresh][:20],
                "resolved": resolved[:20],
                "note": "",
            },
            incident_id=incident.id,
            lane=incident.channel,
        )
        effects.enqueue(
            "card", f"card:{incident.id}:{incident.revision}", incident_id=incident.id, lane=incident.channel
        )
        effects.flush(session)
        return AlertOutcome("updated", incident.id, f"{incident.key}: {len(fresh)} more firing")

    # -- resolved ---------------------------------------------------------------------------------

    def _resolve(self, session: Session, incident: Incident | None) -> AlertOutcome:
        if incident is None:
            return AlertOutcome("not_open", message="no open incident for this group (already resolved?)")
        assert incident.id is not None
        try:
            self.incidents.resolve(session, incident.id, ACTOR, note=RESOLVED_NOTE)
        except IncidentError as exc:
            # e.g. someone classified it as a flake and no bead exists yet: the flake policy wins,
            # the incident stays open and the thread says why.
            effects = Effects(now=self.clock.now())
            effects.record(
                "alert_resolved",
                f"Alertmanager resolved the alert; still open: {exc}",
                incident_id=incident.id,
                source="api",
                actor=ACTOR.user_id,
            )
            effects.enqueue(
                "incident_note",
                f"alert-kept-open:{incident.id}:{incident.revision}",
                {
                    "template": "alert_update",
                    "firing": [],
                    "resolved": [],
                    "note": f"🟢 Alertmanager resolved the alert, but {exc}",
                },
                incident_id=incident.id,
                lane=incident.channel,
            )
            effects.flush(session)
            return AlertOutcome("kept_open", incident.id, str(exc))
        return AlertOutcome("resolved", incident.id, f"{incident.key} resolved by Alertmanager")


def open_alert_incidents(session: Session) -> list[Incident]:
    """Open incidents that came from Alertmanager (for listings and tests)."""
    return list(
        session.exec(
            select(Incident)
            .where(Incident.repository == REPOSITORY, Incident.status == "open")
            .order_by(col(Incident.id))
        )
    )
