"""``workspace.yml``: what all playbooks of one Slack workspace share, and which playbooks there are."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as wall_clock
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from slackbot.config.base import Key, SlackChannelId, SlackGroupId, Strict
from slackbot.config.routing import AlertSource

DEFAULT_PLAYBOOK = "integration-triage"  # the name of a directory's only playbook (the layout before playbooks)


DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class DigestSchedule(Strict):
    """When the weekly digest is posted: a day and a wall-clock time in a time zone, so "Monday
    09:00 in Berlin" stays 09:00 across daylight saving time."""

    day: Day = "monday"
    time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, 24-hour clock")
    timezone: str = Field(default="UTC", description="an IANA zone, e.g. Europe/Berlin")
    channels: list[SlackChannelId] | None = Field(
        default=None, description="where digests go; unset: every channel a playbook routes cards to"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as Europe/Berlin)") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def latest(self, now: datetime) -> datetime:
        """The scheduled moment at or before ``now`` (aware UTC): the digest that is due."""
        local = now.astimezone(self.zone)
        hour, minute = (int(part) for part in self.time.split(":"))
        day = local.date() - timedelta(days=(local.weekday() - DAYS.index(self.day)) % 7)
        for _ in range(3):  # this week's, else last week's (a later time today); at most two tries
            moment = datetime.combine(day, wall_clock(hour, minute), self.zone).astimezone(now.tzinfo)
            if moment <= now:
                return moment
            day -= timedelta(days=7)
        raise AssertionError("unreachable")

    def following(self, now: datetime) -> datetime:
        """The first scheduled moment after ``now``."""
        latest = self.latest(now)
        local = latest.astimezone(self.zone)
        # A week later on the wall clock (not 168 hours: a DST change moves the hour otherwise).
        return datetime.combine(local.date() + timedelta(days=7), local.time(), self.zone).astimezone(now.tzinfo)


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
    digest: DigestSchedule | None = Field(default=None, description="the weekly digest; unset: none is posted")

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


__all__ = ["DEFAULT_PLAYBOOK", "DigestSchedule", "Key", "Workspace"]
