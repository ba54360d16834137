"""Outbox handlers for pages: DMs to on-call people, PagerDuty Events v2, run-level escalations.

A page that is no longer wanted when its turn comes (the incident was classified or resolved
while the page waited) is dropped: PagerDuty's and Grafana OnCall's users still report pages
after acknowledge, and we must not send one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from slackbot.clients.tls import tls_context
from slackbot.config import PageTarget, Playbook, Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem, Run
from slackbot.domain.effects import EffectKind
from slackbot.domain.ids import identity
from slackbot.domain.states import DeliveryState, IncidentStatus
from slackbot.incidents.effects import Effects
from slackbot.incidents.paging import enqueue_page
from slackbot.outbox.slack_deliveries import find_posted, post_metadata
from slackbot.outbox.worker import Handler, PermanentFailure
from slackbot.reads.cardview import load_incident_and_run
from slackbot.reads.snapshot import read_session
from slackbot.slack.escape import escape, link
from slackbot.slack.posts import Mrkdwn, render_named


class PagerDutyError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class PagingDeliveries:
    def __init__(
        self,
        engine: Engine,
        slack: AsyncWebClient,
        playbooks: Playbooks,
        *,
        pagerduty_url: str,
        public_url: str,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.slack = slack
        self.playbooks = playbooks
        self.pagerduty_url = pagerduty_url
        self.public_url = public_url.rstrip("/")
        self.http = http or httpx.AsyncClient(timeout=10, verify=tls_context())

    def handlers(self) -> dict[str, Handler]:
        return {
            EffectKind.DM: self.dm,
            EffectKind.PAGERDUTY: self.pagerduty,
            EffectKind.PAGERDUTY_FOLLOW: self.pagerduty_follow,
            EffectKind.RUN_ESCALATION: self.run_escalation,
        }

    def dead_hooks(self) -> dict[str, Any]:
        return {EffectKind.DM: self.page_failed, EffectKind.PAGERDUTY: self.page_failed}

    # -- state ------------------------------------------------------------------------------------

    def _load(self, item: OutboxItem) -> tuple[Incident | None, Run | None]:
        run_pk = item.payload.get("run_pk")
        if item.incident_id:
            # An incident's page (nearly all of them): it and its last run in one Core statement,
            # without the ORM's identity map and per-row events, which cost more than the read.
            loaded = load_incident_and_run(self.engine, item.incident_id)
            if loaded is not None and (not run_pk or run_pk == loaded[0].last_run_pk):
                return loaded
        # A read: on SQLite it neither waits for the write lock nor holds up the deliveries that write.
        with read_session(self.engine) as session:
            incident = session.get(Incident, item.incident_id) if item.incident_id else None
            run_pk = item.payload.get("run_pk") or (incident.last_run_pk if incident else None)
            run = session.get(Run, run_pk) if run_pk else None
            return incident, run

    @staticmethod
    def still_wanted(incident: Incident | None, payload: dict[str, Any]) -> bool:
        if incident is None:
            return True  # run-level pages have no incident
        if incident.status == IncidentStatus.RESOLVED:
            return False
        return not (payload.get("reason") == "unclassified" and incident.failure_class is not None)

    def _playbook(self, incident: Incident | None, payload: dict[str, Any]) -> Playbook:
        return self.playbooks.get(incident.playbook if incident else payload.get("playbook"))

    def _target(self, playbook: Playbook, payload: dict[str, Any]) -> PageTarget:
        found = playbook.target(payload["role"], payload.get("class"))
        if found is None:
            raise PermanentFailure(f"the {playbook.name} playbook no longer names a {payload['role']} to page")
        return found

    # -- DM ---------------------------------------------------------------------------------------

    async def dm(self, item: OutboxItem) -> dict[str, Any]:
        incident, run = await asyncio.to_thread(self._load, item)
        if not self.still_wanted(incident, item.payload):
            return {"skipped": "no longer needed (classified or resolved)"}
        user = item.payload["user"]
        opened = await self.slack.conversations_open(users=user)
        channel = opened["channel"]["id"]
        if item.result.get("takeover"):
            # a worker died delivering this page: it may have reached the person already
            existing = await find_posted(self.slack, channel, item.id or 0)
            if existing:
                return {"channel": channel, "ts": existing, "recovered": True}
        if incident is not None:
            where = f" in <#{incident.channel}>" if incident.channel else ""
            ids = identity(incident)
            text = (
                f"📟 You are paged for *{incident.key}* {escape(ids)}{where}: {escape(incident.symptom)}\n"
                f"Reason: {escape(item.payload.get('reason', ''))}. Classify or acknowledge it from the card, "
                f"or `/triage ack {incident.key}`."
            )
        else:
            label = f"{run.repository} #{run.run_id}" if run else "a CI run"
            text = (
                f"📟 You are paged: {link(run.url if run else None, label)} failed across several scenario classes "
                "(likely harness or shared-service regression)."
            )
        response = await self.slack.chat_postMessage(channel=channel, text=text, metadata=post_metadata(item))
        return {"channel": channel, "ts": str(response["ts"])}

    # -- PagerDuty --------------------------------------------------------------------------------

    def _pd_body(
        self, routing_key: str, action: str, incident: Incident | None, run: Run | None, dedup: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup}
        if action != "trigger":
            return body
        playbook = self._playbook(incident, {})
        rule = playbook.severity_rule(incident.severity) if incident else None
        summary = (
            f"{incident.key} {identity(incident)}: {incident.symptom}"
            if incident
            else f"CI run {run.repository}#{run.run_id} failed across several scenario classes"
            if run
            else "CI failure"
        )
        links = []
        if run and run.url:
            links.append({"href": run.url, "text": "Alertmanager" if run.provider == "alertmanager" else "CI run"})
        if incident:
            links.append(
                {
                    "href": f"{self.public_url}/api/incidents?status=open",
                    "text": f"{incident.key} in triagebot",
                }
            )
        body["payload"] = {
            "summary": summary[:1024],
            "source": (incident.repository if incident else run.repository if run else "ci"),
            "severity": rule.pagerduty_severity if rule else "error",
            "component": incident.scenario_id if incident else None,
            "group": incident.suite if incident else (run.suite if run else None),
            "class": (incident.failure_class or "unclassified") if incident else "multi_prefix",
            "custom_details": self._details(incident, playbook.name),
        }
        body["client"] = "triagebot"
        body["client_url"] = self.public_url
        body["links"] = links
        return body

    async def _send_pd(self, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(self.pagerduty_url, json=body)
        if response.status_code == 202 or response.status_code == 200:
            return {"status": response.status_code, "dedup_key": body["dedup_key"]}
        message = response.text[:300]
        if response.status_code == 429 or response.status_code >= 500:
            raise PagerDutyError(f"PagerDuty HTTP {response.status_code}: {message}", retryable=True)
        raise PagerDutyError(f"PagerDuty rejected the event (HTTP {response.status_code}): {message}", retryable=False)

    @staticmethod
    def _details(incident: Incident | None, playbook: str) -> dict[str, Any]:
        """What the responder's phone shows beside the summary: only what this incident has (an
        alert has an alertname and labels, never an invariant id)."""
        details: dict[str, Any] = {"playbook": playbook}
        if incident is None:
            return details
        details |= {"occurrences": incident.occurrence_count, "severity": incident.severity}
        if incident.alert:
            details |= {"alertname": incident.scenario_id, "labels": incident.alert.get("labels", {})}
        elif incident.invariant_id:
            details["invariantId"] = incident.invariant_id
        return details

    @staticmethod
    def _dedup(incident: Incident | None, payload: dict[str, Any]) -> str:
        return incident.key if incident else f"run-{payload.get('run_pk')}"

    async def pagerduty(self, item: OutboxItem) -> dict[str, Any]:
        incident, run = await asyncio.to_thread(self._load, item)
        if not self.still_wanted(incident, item.payload):
            return {"skipped": "no longer needed (classified or resolved)"}
        key = self._target(self._playbook(incident, item.payload), item.payload).target.pagerduty_routing_key
        if not key:
            raise PermanentFailure("the routing entry no longer has a PagerDuty routing key")
        return await self._send_pd(self._pd_body(key, "trigger", incident, run, self._dedup(incident, item.payload)))

    async def pagerduty_follow(self, item: OutboxItem) -> dict[str, Any]:
        """Acknowledge/resolve every PagerDuty service we triggered for this incident."""
        incident, run = await asyncio.to_thread(self._load, item)

        def triggered() -> list[dict[str, Any]]:
            with session_scope(self.engine) as session:
                rows = session.exec(
                    select(OutboxItem.payload).where(
                        OutboxItem.incident_id == item.incident_id,
                        OutboxItem.kind == EffectKind.PAGERDUTY.value,
                        OutboxItem.state == DeliveryState.DONE.value,
                    )
                )
                return [dict(row) for row in rows]

        sent: dict[str, Any] = {}
        playbook = self._playbook(incident, item.payload)
        for payload in await asyncio.to_thread(triggered):
            found = playbook.target(payload["role"], payload.get("class"))
            key = found.target.pagerduty_routing_key if found else None
            if key and key not in sent:
                sent[key] = await self._send_pd(
                    self._pd_body(key, item.payload["action"], incident, run, self._dedup(incident, payload))
                )
        return {"events": len(sent)}

    # -- run-level escalation ---------------------------------------------------------------------

    async def run_escalation(self, item: OutboxItem) -> dict[str, Any]:
        if item.result.get("takeover"):
            existing = await find_posted(self.slack, item.lane, item.id or 0)
            if existing:
                return {"posted": existing, "recovered": True}
        _, run = await asyncio.to_thread(self._load, item)
        playbook = self._playbook(None, item.payload)
        found = playbook.target("escalation", playbook.run_escalation_class)
        prefixes = item.payload.get("prefixes", [])
        label = f"{run.repository} #{run.run_id}" if run else "?"
        text = render_named(
            playbook,
            "run_escalation",
            run_link=Mrkdwn(link(run.url if run else None, label)),
            prefix_count=len(prefixes),
            prefixes=", ".join(f"{p}-*" for p in prefixes),
            mentions=Mrkdwn(found.target.mention() if found else "nobody configured"),
            incidents=", ".join(f"INC-{i}" for i in item.payload.get("incident_ids", [])),
        )
        response = await self.slack.chat_postMessage(
            channel=item.lane, text=text, unfurl_links=False, metadata=post_metadata(item)
        )
        return {"posted": str(response["ts"])}

    # -- when a page finally fails ----------------------------------------------------------------

    def page_failed(self, session: Session, item: OutboxItem, effects: Effects, error: str) -> None:
        """Say so in the thread and page the fallback target (once; a failing fallback stops)."""
        if item.payload.get("reason") == "fallback" or item.incident_id is None:
            return
        incident = session.get(Incident, item.incident_id)
        if incident is None or incident.status == IncidentStatus.RESOLVED:
            return
        playbook = self._playbook(incident, item.payload)
        failed = playbook.target(item.payload["role"], item.payload.get("class"))
        fallback = playbook.target("fallback", item.payload.get("class"))
        if fallback is None:
            return
        channel = "DM" if item.kind == EffectKind.DM else "PagerDuty"
        who = failed.target.describe() if failed else item.payload["role"]
        note = f"paging {who} by {channel} failed ({error})"
        enqueue_page(effects, incident, [fallback], reason="fallback", step=f"{item.id}", note=note)
