"""``suspects``: the changes between the last green sha and the first failing one, with owners.

Fetched after commit (GitHub is slow and may be rate limited; an ingest must not wait for it),
stored on the incident and shown by its card's Details, ``/triage show`` and the bead. A
comparison GitHub cannot give (no token, an unknown sha, a force-push) leaves the incident as it
was: suspects are a help, never a reason for a dead letter to page anyone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from slackbot.clients.github_actions import GitHubApiError
from slackbot.clients.github_changes import Comparison, GitHubChanges
from slackbot.clock import Clock
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, OutboxItem
from slackbot.domain.effects import EffectKind, Event
from slackbot.incidents import beads, suggestions
from slackbot.incidents.effects import Effects
from slackbot.incidents.state import redraw
from slackbot.outbox.worker import Handler, RetryLater
from slackbot.suggest.changes import change_votes, suspects, touched

# GitHub's compare lists at most 300 changed files for a whole comparison, and says nothing when
# it stops there: that many means there may be more.
FILES_LISTED = 300
TRUNCATED = "- GitHub lists only part of this comparison: there are more changes than shown."


class SuspectJobs:
    def __init__(self, engine: Engine, api: GitHubChanges, playbooks: Playbooks, clock: Clock) -> None:
        self.engine = engine
        self.api = api
        self.playbooks = playbooks
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {EffectKind.SUSPECTS: self.suspects}

    async def suspects(self, item: OutboxItem) -> dict[str, Any]:
        payload = item.payload
        repository, base, head = str(payload["repository"]), str(payload["base"]), str(payload["head"])
        try:
            comparison = await self.api.compare(repository, base, head)
            codeowners = await self.api.codeowners(repository, head)
        except GitHubApiError as exc:
            if exc.retry_after is not None:
                raise RetryLater(str(exc), after=exc.retry_after) from exc
            if exc.retryable:
                raise
            return {"skipped": str(exc)}
        except (httpx.HTTPError, OSError) as exc:
            raise GitHubApiError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        return await asyncio.to_thread(self._store, item, comparison, codeowners, base, head)

    def _store(
        self, item: OutboxItem, comparison: Comparison, codeowners: str | None, base: str, head: str
    ) -> dict[str, Any]:
        assert item.incident_id is not None
        with session_scope(self.engine) as session:
            incident = session.get(Incident, item.incident_id)
            if incident is None:
                return {"skipped": "the incident no longer exists"}
            playbook = self.playbooks.get(incident.playbook)
            files = touched(playbook, comparison.files, codeowners)
            capped = comparison.truncated or len(comparison.files) >= FILES_LISTED
            found = suspects(comparison.commits, files, base=base, head=head, truncated=capped)
            incident.suspects = found
            incident.revision += 1
            effects = Effects(now=self.clock.now())
            # the changed files are one more signal for a suggestion nobody has confirmed yet
            suggestions.again(
                incident, playbook, change_votes(playbook, files), " with the changes since the last green run", effects
            )
            authors = sorted({c.author for c in comparison.commits})
            effects.record(
                Event.SUSPECTS,
                f"{len(comparison.commits)} change(s) since the last green sha {base[:8]}"
                + (f" by {', '.join(authors[:5])}" if authors else "")
                + (f"; owners {', '.join(found['owners'][:5])}" if found["owners"] else ""),
                incident_id=incident.id,
                data={"base": base, "head": head, "commits": len(comparison.commits)},
            )
            # A bead filed before GitHub answered (a SEV-1 files at once; a rate limit delays the
            # compare) never saw them in its description: they reach it as one comment per range.
            beads.comment(incident, effects, bead_comment(found), key=f"suspects:{base[:12]}...{head[:12]}")
            redraw(incident, effects)
            session.add(incident)
            effects.flush(session)
        return {"commits": len(comparison.commits), "files": len(comparison.files)}


def bead_comment(found: dict[str, Any]) -> str:
    """The suspects as the bead's description lists them (``bead.md.j2``), Markdown."""
    count = int(found["commitCount"])
    lines = [
        f"Suspect changes since the last green sha {found['base'][:8]} ({count} commit{'s' if count != 1 else ''}):"
    ]
    lines += [f"- `{c['sha'][:8]}` {c['title']} ({c['author']})" for c in found["commits"]]
    if found["owners"]:
        lines.append(f"- Owners of the changed files: {', '.join(found['owners'])}")
    if found["truncated"]:
        lines.append(TRUNCATED)
    return "\n".join(lines)
