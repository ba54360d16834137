"""Who may act on incidents: members of the responder user groups in ``routing.yml``.

Membership comes from Slack (``usergroups.users.list``, Tier 2), cached for a few minutes so a
burst of clicks does not hit the rate limit. An empty responder list means everyone may act.

A refresh has a total deadline (``deadline``, all groups together): the client's timeout is per
request and slack_sdk retries a dropped connection, so a hung Slack would otherwise hold every
click and command behind this lock for half a minute. Past the deadline, or on any Slack or
network error, the last known membership decides, and the next click tries again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.clock import Clock

log = logging.getLogger(__name__)
TTL = timedelta(minutes=5)
DEADLINE = 2.0  # seconds for a whole refresh; a click is answered within Slack's 3 s either way
RETRY_AFTER_FAILURE = timedelta(seconds=30)  # during a Slack outage only one click in 30 s waits


class Responders:
    def __init__(
        self, groups: list[str], client: AsyncWebClient | None, clock: Clock, *, deadline: float = DEADLINE
    ) -> None:
        self.groups = groups
        self.client = client
        self.clock = clock
        self.deadline = deadline
        self._members: set[str] = set()
        self._fetched: datetime | None = None
        self._failed: datetime | None = None
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return ", ".join(f"<!subteam^{g}>" for g in self.groups) or "everyone"

    async def allowed(self, user_id: str) -> bool:
        if not self.groups:
            return True
        members = await self._current()
        return user_id in members

    def _fresh(self, now: datetime) -> bool:
        if self._fetched and now - self._fetched < TTL:
            return True
        return bool(self._failed and now - self._failed < RETRY_AFTER_FAILURE)

    async def _current(self) -> set[str]:
        now = self.clock.now()
        if self._fresh(now):
            return self._members
        async with self._lock:
            if self._fresh(now):
                return self._members
            members: set[str] = set()
            try:
                assert self.client is not None
                async with asyncio.timeout(self.deadline):
                    for group in self.groups:
                        response = await self.client.usergroups_users_list(usergroup=group)
                        members.update(response.get("users", []))
            except (SlackApiError, AssertionError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                # Keep the last known membership rather than locking everyone out during a Slack blip.
                log.warning("could not refresh responder groups: %s", f"{type(exc).__name__}: {exc}")
                self._failed = now
                return self._members
            self._members, self._fetched, self._failed = members, now, None
            return members
