"""Suspect changes as Slack lines, for the card's Details and ``/triage show``."""

from __future__ import annotations

from typing import Any

from slackbot.slack.escape import code, escape, link


def suspect_lines(suspects: dict[str, Any], shown: int = 3) -> list[str]:
    """The newest commits since the last green sha (names and titles are untrusted), their owners."""
    lines = []
    for commit in suspects.get("commits", [])[:shown]:
        text = f"{str(commit.get('sha', ''))[:8]} {commit.get('title', '')} — {commit.get('author', '')}"
        lines.append(link(commit.get("url"), text))
    more = int(suspects.get("commitCount", 0)) - len(lines)
    if more > 0:
        lines.append(f"…and {more} more since {code(str(suspects.get('base', ''))[:8])}")
    if suspects.get("owners"):
        lines.append("Owners: " + ", ".join(escape(str(o)) for o in suspects["owners"][:6]))
    return lines
