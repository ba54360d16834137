"""The Jinja environments templates render in. A playbook's own ``templates/`` come first, then
the shared ``templates/`` beside ``workspace.yml``, so a playbook overrides only what it words
differently. Every environment is strict: a variable a template uses but nobody passes is an
error (``triagebot check`` renders every template against sample data to find them first)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from slackbot.clock import as_utc
from slackbot.config import Playbook
from slackbot.config.durations import human_duration

ROLE_WORDS = {
    "owner": "the owner",
    "secondary_owner": "the secondary owner",
    "escalation": "the escalation target",
    "fallback": "the fallback",
    "release_maintainer": "the release maintainer",
}


def when(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def inline(text: object) -> str:
    """Untrusted text on one Markdown line: newlines folded, table pipes and backticks defused."""
    return " ".join(str(text or "").split()).replace("|", "\\|").replace("`", "'")


def role(name: str) -> str:
    """Policy roles (``release_maintainer``) as words; routing.yml says who each one is."""
    return ROLE_WORDS.get(name, name.replace("_", " "))


def markdown(playbook: Playbook) -> Environment:
    """For Markdown documents: the record, the postmortem, the published runbook."""
    return _markdown(playbook)


@functools.lru_cache(maxsize=64)
def _markdown(playbook: Playbook) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in playbook.template_dirs]),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["duration"] = human_duration
    env.filters["role"] = role
    env.filters["inline"] = inline
    env.filters["when"] = when
    return env


def slack(playbook: Playbook, finalize: Callable[[Any], Any]) -> Environment:
    """For Slack posts (``templates/slack/``): every value goes through ``finalize`` (escaping)."""
    return _slack(playbook, finalize)


@functools.lru_cache(maxsize=64)
def _slack(playbook: Playbook, finalize: Callable[[Any], Any]) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d / "slack")) for d in playbook.template_dirs]),
        undefined=StrictUndefined,
        finalize=finalize,
        autoescape=False,  # HTML escaping is wrong for Slack; finalize does Slack's three characters
        keep_trailing_newline=False,
        trim_blocks=True,
    )
    env.filters["duration"] = human_duration
    return env
