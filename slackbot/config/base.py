"""What every runbook model shares: strict parsing, Slack id types, slugs and the choice matcher."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

SlackUserId = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,20}$", description="Slack user id, e.g. U04ONCALL")]
SlackGroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,20}$", description="Slack user group id, e.g. S04HARNESS")]
SlackChannelId = Annotated[str, Field(pattern=r"^[CG][A-Z0-9]{2,20}$", description="Slack channel id, e.g. C04TRIAGE")]
Prefix = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,15}$")]
# Keys people type and the bot stores: classes, milestones, flags, record fields.
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# Severity names are whatever the playbook's seed calls them: SEV-1, High, critical.
SeverityName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")]

_NOT_WORD = re.compile(r"[^a-z0-9]+")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise(text: str) -> str:
    """What two spellings of one choice have in common: ``Fixture stale``, ``fixture-stale``,
    ``fixture_stale`` and ``FIXTURE STALE`` are all ``fixturestale``; ``SEV-1`` and ``sev1`` are
    ``sev1``."""
    return _NOT_WORD.sub("", text.lower())


def spellings(key: str, label: str | None, aliases: Iterable[str]) -> set[str]:
    names = {normalise(key), *(normalise(a) for a in aliases)}
    if label:
        names.add(normalise(label))
    # SEV-1 style names: the number alone is what people type in a hurry.
    numbered = re.fullmatch(r"[A-Za-z]+-?(\d+)", key)
    if numbered:
        names.add(numbered.group(1))
    return {name for name in names if name}


class ChoiceError(ValueError):
    """A typed name that matches none of the playbook's choices; the message lists them."""


def unique_spellings(names: dict[str, set[str]], what: str) -> None:
    """Two choices that can be typed the same way make a command ambiguous: refuse the playbook."""
    owner: dict[str, str] = {}
    for key, spelled in names.items():
        for name in spelled:
            if name in owner and owner[name] != key:
                raise ValueError(f"{what} {key} and {what} {owner[name]} can both be typed as '{name}'")
            owner[name] = key
