"""Outbox handlers that talk to the bead trackers (bd, GitHub Issues).

One bead per incident: filing first asks the tracker for a bead carrying the incident's
fingerprint (so a crash after the tracker succeeded and before we recorded the id cannot file a
second one), recurrences become comments, resolving closes it with the resolution note, and a
flake that recurs reopens it. Tracker errors marked retryable are retried by the outbox; a
permanent failure is said in the incident thread with the tracker's message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clients.bd import BdTracker
from slackbot.clients.github_issues import GitHubIssuesTracker
from slackbot.clients.tracker import BeadRequest, BeadTracker
from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem, TimelineEvent
from slackbot.documents.record import RecordTemplateError, TrackerChoice, priority, render_record, tracker_for
from slackbot.domain.effects import EffectKind, Event
from slackbot.domain.states import BeadState
from slackbot.incidents import beads
from slackbot.incidents.effects import Effects
from slackbot.outbox.worker import Handler, PermanentFailure, RetryLater
from slackbot.reads.record import record_inputs
from slackbot.settings import Settings, secret
from slackbot.slack.lease import lease_terms

# An issue's html_url (github.com or GitHub Enterprise): rows filed before the repository was
# recorded name it only there.
_ISSUE_URL = re.compile(r"^https?://[^/]+/(?P<repository>[^/]+/[^/]+)/issues/\d+")


def filed_in(session: Session, incident: Incident) -> TrackerChoice | None:
    """The tracker the incident's bead was filed in, from its ``bead_filed`` row (None: no row).

    Not the current class's tracker: reclassifying to a class on another tracker must not send
    the comments and the close of a bd bead to GitHub (or the reverse).
    """
    row = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident.id, TimelineEvent.kind == Event.BEAD_FILED)
        .order_by(col(TimelineEvent.id).desc())
        .limit(1)
    ).first()
    if row is None or row.data.get("bead") != incident.bead_id:
        return None
    if row.data.get("tracker") != "github":
        return TrackerChoice("beads")
    repository = row.data.get("repository")
    if not repository:
        match = _ISSUE_URL.match(str(row.data.get("url") or ""))
        repository = match.group("repository") if match else None
    return TrackerChoice("github", repository) if repository else None


class TrackerPool:
    """Builds each tracker once per process (one bd writer queue per BEADS_DIR lives in bd.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._bd: BdTracker | None = None
        self._github: dict[str, GitHubIssuesTracker] = {}

    def get(self, choice: TrackerChoice) -> BeadTracker:
        if choice.name == "github" and choice.repository:
            if choice.repository not in self._github:
                self._github[choice.repository] = GitHubIssuesTracker(
                    self.settings.github_api_url, secret(self.settings.github_token), choice.repository
                )
            return self._github[choice.repository]
        if self._bd is None:
            self._bd = BdTracker(self.settings.bd_bin, self.settings.beads_dir)
        return self._bd

    @property
    def bd(self) -> BdTracker:
        tracker = self.get(TrackerChoice("beads"))
        assert isinstance(tracker, BdTracker)
        return tracker


class BeadDeliveries:
    def __init__(self, engine: Engine, playbooks: Playbooks, trackers: TrackerPool, clock: Clock) -> None:
        self.engine = engine
        self.playbooks = playbooks
        self.trackers = trackers
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            EffectKind.BEAD_FILE: self.file,
            EffectKind.BEAD_COMMENT: self.comment,
            EffectKind.BEAD_CLOSE: self.close,
            EffectKind.BEAD_REOPEN: self.reopen,
        }

    def dead_hooks(self) -> dict[str, Any]:
        return {EffectKind.BEAD_FILE: self._file_failed}

    async def file(self, item: OutboxItem) -> dict[str, Any]:
        def prepare() -> tuple[Incident, BeadRequest | None]:
            with session_scope(self.engine) as session:
                incident = session.get(Incident, item.incident_id)
                if incident is None:
                    raise PermanentFailure(f"incident {item.incident_id} no longer exists")
                if incident.bead_id:
                    return incident, None
                playbook = self.playbooks.get(incident.playbook)
                inputs = record_inputs(
                    session,
                    playbook,
                    incident,
                    expected=item.payload.get("expected"),
                    observed=item.payload.get("observed"),
                )
                try:
                    record = render_record(inputs)
                except RecordTemplateError as exc:
                    raise PermanentFailure(str(exc)) from exc
                lease = lease_terms(playbook, incident)
                request = BeadRequest(
                    title=record.title,
                    body=record.body + (f"\n\n{lease.sentence()}\n" if lease else ""),
                    priority=priority(playbook, incident),
                    labels=record.labels,
                    external_ref=inputs.run.url if inputs.run else None,
                    fingerprint=incident.fingerprint,
                    # A flake's owner and due date (slackbot/incidents/leases.py), as bd's own fields
                    # (bd's assignee is free text; a GitHub assignee must be a login, so not there)
                    assignee=lease.owner_name if lease and tracker_for(playbook, incident).name == "beads" else None,
                    due=lease.due if lease else None,
                    metadata={"lease_owner": lease.owner_name, "lease_due": lease.due.isoformat()} if lease else {},
                )
                return incident, request

        incident, request = await asyncio.to_thread(prepare)
        if request is None:
            return {"already": incident.bead_id}
        choice = tracker_for(self.playbooks.get(incident.playbook), incident)
        tracker = self.trackers.get(choice)
        bead = await tracker.create(request)

        def record() -> None:
            with session_scope(self.engine) as session:
                current = session.get(Incident, incident.id)
                if current is not None and not current.bead_id:
                    effects = Effects(now=self.clock.now())
                    playbook = self.playbooks.get(current.playbook)
                    beads.filed(session, playbook, current, effects, bead.id, bead.url, tracker.name, choice.repository)
                    effects.flush(session)

        await asyncio.to_thread(record)
        return {"bead": bead.id, "tracker": tracker.name, "url": bead.url}

    def _incident_and_tracker(self, item: OutboxItem) -> tuple[Incident, TrackerChoice]:
        with session_scope(self.engine) as session:
            incident = session.get(Incident, item.incident_id)
            if incident is None:
                raise PermanentFailure(f"incident {item.incident_id} no longer exists")
            choice = filed_in(session, incident) if incident.bead_id else None
            return incident, choice or tracker_for(self.playbooks.get(incident.playbook), incident)

    async def _with_bead(self, item: OutboxItem) -> tuple[Incident, BeadTracker] | None:
        incident, choice = await asyncio.to_thread(self._incident_and_tracker, item)
        if not incident.bead_id:
            if incident.bead_state == BeadState.PENDING:
                raise RetryLater("the bead is still being filed", after=5.0)
            return None  # no bead to follow
        return incident, self.trackers.get(choice)

    async def comment(self, item: OutboxItem) -> dict[str, Any]:
        found = await self._with_bead(item)
        if found is None:
            return {"skipped": "no bead"}
        incident, tracker = found
        assert incident.bead_id is not None
        await tracker.comment(incident.bead_id, item.payload.get("text", "Seen again."))
        return {"bead": incident.bead_id}

    async def close(self, item: OutboxItem) -> dict[str, Any]:
        found = await self._with_bead(item)
        if found is None:
            return {"skipped": "no bead"}
        incident, tracker = found
        assert incident.bead_id is not None
        await tracker.close(incident.bead_id, incident.resolution_note or "Resolved in triagebot")
        return {"closed": incident.bead_id}

    async def reopen(self, item: OutboxItem) -> dict[str, Any]:
        found = await self._with_bead(item)
        if found is None:
            return {"skipped": "no bead"}
        incident, tracker = found
        assert incident.bead_id is not None
        await tracker.reopen(incident.bead_id, "The failure recurred after it was resolved (triagebot)")
        return {"reopened": incident.bead_id}

    def _file_failed(self, session: Session, item: OutboxItem, effects: Effects, error: str) -> None:
        incident = session.get(Incident, item.incident_id)
        if incident is not None and not incident.bead_id:
            beads.failed(session, self.playbooks.get(incident.playbook), incident, effects, error)
