"""Effect kinds and their de-duplication keys, built here and nowhere else.

An effect is an outbox row: written in the same transaction as the change that causes it,
delivered after commit. Its key makes the same effect impossible to queue twice (a retried
webhook, a replayed click), so each key says exactly what makes one effect different from another.
"""

from __future__ import annotations

from enum import StrEnum


class EffectKind(StrEnum):
    CARD = "card"  # post or redraw the incident's card
    THREAD_POST = "thread_post"  # a templated post in the incident's thread
    INCIDENT_NOTE = "incident_note"  # a note from an integration (alert runbook, validation evidence)
    CHECKLIST = "checklist"  # post a runbook checklist in the thread
    CHECKLIST_UPDATE = "checklist_update"  # redraw one
    DM = "dm"  # page: a DM to the on-call person
    PAGERDUTY = "pagerduty"  # page: an Events v2 trigger
    PAGERDUTY_FOLLOW = "pagerduty_follow"  # acknowledge / resolve what was triggered
    RUN_ESCALATION = "run_escalation"  # a run failing across several prefixes
    BEAD_FILE = "bead_file"
    BEAD_COMMENT = "bead_comment"
    BEAD_CLOSE = "bead_close"
    BEAD_REOPEN = "bead_reopen"
    POSTMORTEM = "postmortem"  # upload the postmortem into the thread
    SOURCE_REPLY = "source_reply"  # answer in the thread of the Slack message that asked
    OPS_NOTICE = "ops_notice"  # a dead letter or health notice in the ops channel
    GITHUB_RUN = "github_run"  # fetch and ingest a GitHub Actions run
    SUSPECTS = "suspects"  # compare the last green sha with the first failing one (slackbot/suggest)
    DIGEST = "digest"  # a channel's weekly digest message
    CHART = "chart"  # the triage chart as a PNG file (the digest's, or /triage stats chart)


class Lane:
    """Pacing lanes: a Slack channel's id, or one of these."""

    BEADS = "beads"
    PAGERDUTY = "pagerduty"
    GITHUB = "github"
    DEFAULT = "default"

    @staticmethod
    def dm(user: str) -> str:
        return f"dm:{user}"


class Key:
    """Every outbox de-duplication key."""

    @staticmethod
    def card(incident_id: int, revision: int) -> str:
        return f"card:{incident_id}:{revision}"

    @staticmethod
    def thread(incident_id: int, revision: int) -> str:
        return f"thread:{incident_id}:{revision}"

    @staticmethod
    def recurrence(incident_id: int, run_pk: int | None) -> str:
        return f"recur:{incident_id}:{run_pk}"

    @staticmethod
    def checklist(incident_id: int, revision: int) -> str:
        return f"checklist:{incident_id}:{revision}"

    @staticmethod
    def checklist_superseded(checklist: str) -> str:
        return f"checklist-supersede:{checklist}"

    @staticmethod
    def checklist_update(checklist: str, execution_id: int | None) -> str:
        return f"checklist-update:{checklist}:{execution_id}"

    @staticmethod
    def page(incident_id: int, reason: str, step: str) -> str:
        return f"page:{incident_id}:{reason}:{step}"

    @staticmethod
    def run_escalation(run_pk: int | None) -> str:
        return f"run-escalation:{run_pk}"

    @staticmethod
    def pagerduty_acknowledge(incident_id: int) -> str:
        return f"pd-ack:{incident_id}"

    @staticmethod
    def pagerduty_resolve(incident_id: int, revision: int) -> str:
        return f"pd-resolve:{incident_id}:{revision}"

    @staticmethod
    def bead_file(incident_id: int, revision: int | None = None) -> str:
        return f"bead:{incident_id}" if revision is None else f"bead:{incident_id}:{revision}"

    @staticmethod
    def bead_comment(incident_id: int, about: str) -> str:
        """``about``: what the comment is for, e.g. a run's id (a recurrence) or a milestone."""
        return f"bead-comment:{incident_id}:{about}"

    @staticmethod
    def bead_close(incident_id: int, revision: int) -> str:
        return f"bead-close:{incident_id}:{revision}"

    @staticmethod
    def bead_reopen(incident_id: int, revision: int) -> str:
        return f"bead-reopen:{incident_id}:{revision}"

    @staticmethod
    def bead_filed(incident_id: int) -> str:
        return f"bead-filed:{incident_id}"

    @staticmethod
    def bead_failed(incident_id: int, revision: int) -> str:
        return f"bead-failed:{incident_id}:{revision}"

    @staticmethod
    def reminder(incident_id: int, token: str) -> str:
        return f"reminder:{incident_id}:{token}"

    @staticmethod
    def digest(channel: str, week_start: str) -> str:
        return f"digest:{channel}:{week_start}"

    @staticmethod
    def digest_chart(channel: str, week_start: str) -> str:
        return f"digest-chart:{channel}:{week_start}"

    @staticmethod
    def stats_chart(channel: str, minute: str) -> str:
        """One on-demand chart per channel per minute: asking twice in a hurry uploads it once."""
        return f"stats-chart:{channel}:{minute}"

    @staticmethod
    def postmortem(incident_id: int, count: int) -> str:
        return f"postmortem:{incident_id}:{count}"

    @staticmethod
    def alert_runbook(incident_id: int) -> str:
        return f"alert-runbook:{incident_id}"

    @staticmethod
    def alert_update(incident_id: int, run_pk: int | None) -> str:
        return f"alert-update:{incident_id}:{run_pk}"

    @staticmethod
    def alert_kept_open(incident_id: int, revision: int) -> str:
        return f"alert-kept-open:{incident_id}:{revision}"

    @staticmethod
    def validation(incident_id: int, repository: str, run_id: str, attempt: int) -> str:
        return f"validation:{incident_id}:{repository}:{run_id}:{attempt}"

    @staticmethod
    def source_reply(channel: str, ts: str) -> str:
        return f"source-reply:{channel}:{ts}"

    @staticmethod
    def github_delivery(delivery_id: str) -> str:
        return f"github-run:{delivery_id}"

    @staticmethod
    def github_fetch(channel: str, ts: str) -> str:
        return f"github-fetch:{channel}:{ts}"

    @staticmethod
    def dead_letter(outbox_id: int | None) -> str:
        return f"dead:{outbox_id}"


class Event(StrEnum):
    """Kinds of audit (timeline) rows: who did what, when, from where."""

    CREATED = "created"
    OCCURRENCE = "occurrence"
    REOPENED = "reopened"
    ROUTED = "routed"
    CLASSIFIED = "classified"
    RECLASSIFIED = "reclassified"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    SEVERITY = "severity"
    FLAG = "flag"
    MILESTONE = "milestone"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    PAGED = "paged"
    REMINDED = "reminded"
    RUNBOOK_STEP = "runbook_step"
    DOCUMENTATION_GAP = "documentation_gap"
    MULTI_PREFIX = "multi_prefix"
    RUN_INGESTED = "run_ingested"
    BEAD_REQUESTED = "bead_requested"
    BEAD_FILED = "bead_filed"
    BEAD_FAILED = "bead_failed"
    POSTMORTEM_REQUESTED = "postmortem_requested"
    ALERT_RECEIVED = "alert_received"
    ALERT_RESOLVED = "alert_resolved"
    ARTIFACT_PROBLEMS = "artifact_problems"
    VALIDATION_EVIDENCE = "validation_evidence"
    SUSPECTS = "suspects"  # the changes since the last green run, with their owners
    LEASED = "leased"  # a flake's fix given an owner and a due date
    LEASE_OVERDUE = "lease_overdue"  # still open at its due date: escalated
    LEASE_ENDED = "lease_ended"  # reclassified away from a flake
    DELIVERY_FAILED = "delivery_failed"
