"""The issue-tracker port: what the bot needs from "a place where beads (tickets) live".

Two adapters implement it: :class:`slackbot.clients.bd.BdTracker` drives the ``bd`` CLI and
:class:`slackbot.clients.github_issues.GitHubIssuesTracker` talks to GitHub's REST API. Callers (the outbox
deliveries) only see these value types and :class:`TrackerError`, so the retry policy lives in one
place: ``retryable=True`` means "try the same call again later", ``False`` means "a person must look".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class BeadRequest:
    """Everything needed to file one bead for one incident.

    ``fingerprint`` is the incident fingerprint. It is stored with the bead so that a retried filing
    (for example after a crash between the tracker succeeding and our database recording the id)
    finds the existing bead instead of creating a second one.
    """

    title: str
    body: str
    priority: int  # 0 (highest) .. 4, bd's scale
    labels: tuple[str, ...]
    external_ref: str | None
    fingerprint: str
    assignee: str | None = None
    # A flake's lease (slackbot/incidents/leases.py): when the fix is due, and the lease's terms
    # kept as metadata (bd), beside the fingerprint
    due: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bead:
    """The tracker-neutral view of a bead: enough to link to it and show its state."""

    id: str
    title: str
    status: str
    url: str | None = None
    labels: tuple[str, ...] = field(default=())


class TrackerError(Exception):
    """A tracker call failed.

    ``retryable`` is the only thing callers should branch on. The message is safe to show in Slack
    and logs (it never contains tokens or request bodies); ``stderr`` keeps the raw tool output for
    debugging, truncated. ``retry_after`` carries a server's hint (GitHub ``Retry-After``) in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        exit_code: int | None = None,
        stderr: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.exit_code = exit_code
        self.stderr = stderr
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"TrackerError({self.message!r}, retryable={self.retryable}, exit_code={self.exit_code}, "
            f"retry_after={self.retry_after})"
        )


@runtime_checkable
class BeadTracker(Protocol):
    """What the bot needs from a tracker. All methods raise :class:`TrackerError` on failure."""

    name: str  # "bd" or "github"

    async def version(self) -> str:
        """The tracker's version string (checked once at startup)."""
        ...

    async def create(self, req: BeadRequest) -> Bead:
        """File a bead, or return the existing bead with the same fingerprint (idempotent)."""
        ...

    async def find_by_fingerprint(self, fingerprint: str) -> Bead | None:
        """The bead filed for this fingerprint, including closed ones; ``None`` when there is none."""
        ...

    async def comment(self, bead_id: str, text: str) -> None: ...

    async def update(
        self,
        bead_id: str,
        *,
        status: str | None = None,
        priority: int | None = None,
        add_labels: Sequence[str] = (),
    ) -> Bead: ...

    async def close(self, bead_id: str, reason: str) -> Bead: ...

    async def reopen(self, bead_id: str, reason: str) -> Bead: ...

    async def show(self, bead_id: str) -> Bead: ...
