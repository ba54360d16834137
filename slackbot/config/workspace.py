"""``workspace.yml``: what all playbooks of one Slack workspace share, and which playbooks there are."""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from slackbot.config.base import Key, SlackChannelId, SlackGroupId, Strict
from slackbot.config.routing import AlertSource

DEFAULT_PLAYBOOK = "integration-triage"  # the name of a directory's only playbook (the layout before playbooks)


class Workspace(Strict):
    version: int = Field(ge=1)
    updated: date
    playbooks: list[str] = Field(
        min_length=1, description="playbook directories, in the order routing tries their match rules"
    )
    default_playbook: str | None = Field(default=None, description="takes what no playbook matches (the first)")
    default_channel: SlackChannelId = Field(description="cards no playbook routes to a channel of its own")
    ops_channel: SlackChannelId = Field(description="dead-lettered deliveries and bot health notices")
    responders: list[SlackGroupId] = Field(
        default_factory=list, description="user groups allowed to act on cards; empty means everyone"
    )
    triage_reaction: str = Field(default="rotating_light", description="emoji that opens a card from a message")
    alert_sources: list[AlertSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> Workspace:
        for name in self.playbooks:
            if not _slug(name):
                raise ValueError(f"playbook '{name}' is not a directory name (lower case, digits and dashes)")
        twice = sorted({n for n in self.playbooks if self.playbooks.count(n) > 1})
        if twice:
            raise ValueError(f"playbook {', '.join(twice)} is listed twice")
        if self.default_playbook is not None and self.default_playbook not in self.playbooks:
            raise ValueError(f"default_playbook {self.default_playbook} is not listed in playbooks")
        return self

    @property
    def default(self) -> str:
        return self.default_playbook or self.playbooks[0]


def _slug(name: str) -> bool:
    return bool(name) and name[0].isalpha() and all(c.islower() or c.isdigit() or c == "-" for c in name)


__all__ = ["DEFAULT_PLAYBOOK", "Key", "Workspace"]
