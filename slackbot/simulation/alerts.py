"""Operational alerts for the simulation: every playbook's ``policy.alerts`` (seed 004's alerting
rules) fire once over the period through the real ``/webhooks/alertmanager`` route, as Alertmanager
0.25 sends them (payload version 4, bearer token), and resolve 20-90 minutes later.

The schedule comes from its own seeded generator, so adding alerts leaves the CI stories of a seed
unchanged. Each alert rule fires at most once (one incident per alert group while it fires), in
the order the playbook lists them, one every few hours from the first morning on.

With responders, ops on call works each alert's runbook (``operator.py``): the metric recovers
because ops recovered it, so the resolution is held back until the operator's Recover steps are
done (``hold_resolutions`` / ``release``) and its Verify step can see "Alertmanager: resolved".
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slackbot.config import Playbook

EXTERNAL_URL = "http://alertmanager.example:9093"


@dataclass
class AlertSend:
    """One webhook Alertmanager sends: the alert firing, or its resolution."""

    at: datetime
    playbook: str
    alertname: str
    severity: str | None
    failure_class: str | None
    summary: str
    status: str  # firing | resolved
    starts_at: datetime
    payload: dict[str, Any]


def _payload(
    alertname: str, severity: str | None, summary: str, status: str, starts: datetime, ends: datetime | None
) -> dict[str, Any]:
    labels = {"alertname": alertname, "job": "dispatch", "instance": "app-1:9100"}
    if severity:
        labels["severity"] = severity
    fingerprint = hashlib.sha256(alertname.encode()).hexdigest()[:16]
    group_key = '{}:{alertname="' + alertname + '"}'
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "triagebot",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": {"summary": summary},
        "externalURL": EXTERNAL_URL,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": starts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "endsAt": ends.strftime("%Y-%m-%dT%H:%M:%S.000Z") if ends else "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus.example:9090/graph?g0.expr={alertname}",
                "fingerprint": fingerprint,
            }
        ],
    }


class Alerts:
    def __init__(self, playbooks: list[Playbook], *, days: int, seed: int, start: datetime) -> None:
        rng = random.Random(f"alerts:{seed}")
        self.schedule: list[AlertSend] = []
        self.sent: list[AlertSend] = []
        self.held: dict[str, AlertSend] = {}  # alertname -> its resolution, waiting for ops' recovery
        moment = start + timedelta(hours=9)
        end = start + timedelta(days=days) - timedelta(hours=2)
        for playbook in playbooks:
            for rule in playbook.policy.alerts:
                moment += timedelta(hours=rng.randint(3, 9), minutes=rng.randint(0, 59))
                if moment >= end:
                    break
                resolved = moment + timedelta(minutes=rng.randint(20, 90))
                summary = f"{rule.alertname}: {rule.detection or 'alerting rule fired'}"[:200]
                for status, at in (("firing", moment), ("resolved", resolved)):
                    self.schedule.append(
                        AlertSend(
                            at,
                            playbook.name,
                            rule.alertname,
                            rule.severity,
                            rule.failure_class,
                            summary,
                            status,
                            moment,
                            _payload(
                                rule.alertname,
                                rule.severity,
                                summary,
                                status,
                                moment,
                                resolved if status == "resolved" else None,
                            ),
                        )
                    )
        self.schedule.sort(key=lambda a: a.at)
        self.planned: tuple[AlertSend, ...] = tuple(self.schedule)  # as scheduled (the schedule is consumed)

    def hold_resolutions(self) -> None:
        """Nothing resolves by itself: each alert's resolution waits for ``release``."""
        self.held |= {a.alertname: a for a in self.schedule if a.status == "resolved"}
        self.schedule = [a for a in self.schedule if a.status != "resolved"]

    def release(self, alertname: str, at: datetime) -> datetime | None:
        """The metric is back under its threshold at ``at``: Alertmanager sends the resolution
        then. Returns when, or None if there was nothing held for that alert."""
        send = self.held.pop(alertname, None)
        if send is None:
            return None
        send.at = at
        send.payload = _payload(send.alertname, send.severity, send.summary, "resolved", send.starts_at, at)
        bisect.insort(self.schedule, send, key=lambda a: a.at)
        return at

    def next_at(self) -> datetime | None:
        return self.schedule[0].at if self.schedule else None

    def due(self, now: datetime) -> list[AlertSend]:
        due = []
        while self.schedule and self.schedule[0].at <= now:
            send = self.schedule.pop(0)
            self.sent.append(send)
            due.append(send)
        return due

    def firing(self) -> list[AlertSend]:
        return [a for a in self.sent if a.status == "firing"]
