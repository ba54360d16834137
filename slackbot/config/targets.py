"""Who to mention, DM or page: ids only, never display names (names change, ids do not)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from slackbot.config.base import SlackChannelId, SlackGroupId, SlackUserId, Strict

# Roles a policy may notify. Who each one is comes from the playbook's routing (per class).
Role = Literal["owner", "secondary_owner", "escalation", "fallback", "release_maintainer"]
ROLES: tuple[Role, ...] = ("owner", "secondary_owner", "escalation", "fallback", "release_maintainer")


class Target(Strict):
    """At least one of usergroup, user or channel must be set."""

    usergroup: SlackGroupId | None = None
    user: SlackUserId | None = None
    channel: SlackChannelId | None = None
    handle: str | None = Field(default=None, description="human name for docs, e.g. @ci-maintainers")
    pagerduty_routing_key: str | None = Field(default=None, min_length=8, max_length=64)

    @model_validator(mode="after")
    def _someone(self) -> Target:
        if not (self.usergroup or self.user or self.channel):
            raise ValueError("a target needs at least one of usergroup, user or channel")
        return self

    def mention(self) -> str:
        """Slack mention markup built only from ids we configured, never from untrusted text."""
        if self.usergroup:
            return f"<!subteam^{self.usergroup}>"
        if self.user:
            return f"<@{self.user}>"
        return f"<#{self.channel}>"

    def describe(self) -> str:
        return self.handle or self.usergroup or self.user or self.channel or "?"

    @property
    def dm_user(self) -> str | None:
        return self.user


class Owner(Target):
    oncall_user: SlackUserId | None = Field(default=None, description="the person DMed when paged")

    @property
    def dm_user(self) -> str | None:
        return self.oncall_user or self.user
