"""Who may act on incidents: members of the responder user groups in ``routing.yml``.

Membership comes from Slack (``usergroups.users.list``, Tier 2), cached for a few minutes so a
burst of clicks does not hit the rate limit. An empty responder list means everyone may act.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.clock import Clock

log = logging.getLogger(__name__)
TTL = timedelta(minutes=5)


class Responders:
    def __init__(self, groups: list[str], client: AsyncWebClient | None, clock: Clock) -> None:
        self.groups = groups
        self.client = client
        self.clock = clock
        self._members: set[str] = set()
        self._fetched: datetime | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return ", ".join(f"<!subteam^{g}>" for g in self.groups) or "everyone"

    async def allowed(self, user_id: str) -> bool:
        if not self.groups:
            return True
        members = await self._current()
        return user_id in members

    async def _current(self) -> set[str]:
        now = self.clock.now()
        if self._fetched and now - self._fetched < TTL:
            return self._members
        async with self._lock:
            if self._fetched and now - self._fetched < TTL:
                return self._members
            members: set[str] = set()
            try:
                assert self.client is not None
                for group in self.groups:
                    response = await self.client.usergroups_users_list(usergroup=group)
                    members.update(response.get("users", []))
            except (SlackApiError, AssertionError) as exc:
                # Keep the last known membership rather than locking everyone out during a Slack blip.
                log.warning("could not refresh responder groups: %s", exc)
                return self._members
            self._members, self._fetched = members, now
            return members
