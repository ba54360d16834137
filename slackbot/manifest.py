"""``manifest.yml``: the checks that matter to this bot (the command, events and scopes it relies
on), and the manifest written for a deployment's host (``triagebot manifest --url``).

The full structural validation against Slack's published manifest schema runs in the test suite
(``tests/config/test_manifest.py``); here we check what would break the bot at run time, with the
same ``file:line: field: message`` shape as the runbook checks.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from slackbot.config.loader import ConfigProblem

REQUIRED_EVENTS = ("app_home_opened", "message.channels", "reaction_added", "app_mention")
# Each one is used: posting, DMs (and reading them back to recover a page: im:history), reading the
# card channel back (channels:history), user groups, reactions and mentions, postmortem uploads.
REQUIRED_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "im:history",
    "channels:history",
    "usergroups:read",
    "reactions:read",
    "app_mentions:read",
    "files:write",
)


def check_manifest(path: Path) -> list[ConfigProblem]:
    name = path.name
    if not path.is_file():
        return [ConfigProblem(name, 1, "(file)", f"missing: expected {path}")]
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [ConfigProblem(name, mark.line + 1 if mark else 1, "(yaml)", f"not valid YAML: {exc}")]
    if not isinstance(data, dict):
        return [ConfigProblem(name, 1, "(document)", "expected a mapping at the top level")]

    def line_of(needle: str) -> int:
        for number, line in enumerate(text.splitlines(), start=1):
            if needle in line:
                return number
        return 1

    problems: list[ConfigProblem] = []
    features = data.get("features") or {}
    commands = [c.get("command") for c in features.get("slash_commands") or [] if isinstance(c, dict)]
    if "/triage" not in commands:
        problems.append(
            ConfigProblem(name, line_of("slash_commands"), "features.slash_commands", "must declare /triage")
        )
    settings = data.get("settings") or {}
    events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
    for event in REQUIRED_EVENTS:
        if event not in events:
            problems.append(
                ConfigProblem(
                    name, line_of("bot_events"), "settings.event_subscriptions.bot_events", f"missing {event}"
                )
            )
    if not (settings.get("interactivity") or {}).get("is_enabled"):
        problems.append(
            ConfigProblem(name, line_of("interactivity"), "settings.interactivity.is_enabled", "must be true")
        )
    scopes = ((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
    for scope in REQUIRED_SCOPES:
        if scope not in scopes:
            problems.append(ConfigProblem(name, line_of("bot:"), "oauth_config.scopes.bot", f"missing scope {scope}"))
    return problems


PLACEHOLDER_URL = "https://triagebot.example.com"


class ManifestError(ValueError):
    """The URL given for the manifest cannot be Slack's request URL."""


def manifest_for_host(text: str, url: str) -> str:
    """The shipped manifest with its request URLs pointing at ``url`` (comments kept). Slack only
    sends to HTTPS request URLs, so the base must be ``https://host[:port][/prefix]``."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ManifestError(f"--url must be https://HOST (Slack sends requests to HTTPS only), not {url!r}")
    base = f"https://{parts.netloc}{parts.path.rstrip('/')}"
    if base.endswith("/slack/events"):
        base = base.removesuffix("/slack/events")
    if PLACEHOLDER_URL not in text:
        raise ManifestError(f"the manifest has no {PLACEHOLDER_URL} request URLs to replace")
    return text.replace(PLACEHOLDER_URL, base)
