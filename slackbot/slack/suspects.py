"""Suspect changes as Slack lines, for the card's Details and ``/triage show``."""

from __future__ import annotations

from typing import Any

from slackbot.slack.escape import code, escape, link


def suspect_lines(suspects: dict[str, Any], shown: int = 3, files: int = 5) -> list[str]:
    """The newest commits since the last green sha (names and titles are untrusted), then the
    changed files, each with its owners (CODEOWNERS, or the playbook's class scope)."""
    lines = []
    for commit in suspects.get("commits", [])[:shown]:
        text = f"{str(commit.get('sha', ''))[:8]} {commit.get('title', '')} — {commit.get('author', '')}"
        lines.append(link(commit.get("url"), text))
    more = int(suspects.get("commitCount", 0)) - len(lines)
    if more > 0:
        lines.append(f"…and {more} more since {code(str(suspects.get('base', ''))[:8])}")
    for changed in suspects.get("changed", [])[:files]:
        owners = ", ".join(escape(str(o)) for o in changed.get("owners", [])[:4]) or "no owner"
        via = f" _(scope of {escape(str(changed.get('class')))})_" if changed.get("via") == "scope" else ""
        lines.append(f"{code(str(changed.get('path', '')))} → {owners}{via}")
    unlisted = int(suspects.get("files", 0)) - min(len(suspects.get("changed", [])), files)
    if suspects.get("changed") and unlisted > 0:
        lines.append(f"…and {unlisted} more changed file{'s' if unlisted != 1 else ''}")
    if suspects.get("owners"):
        lines.append("Owners: " + ", ".join(escape(str(o)) for o in suspects["owners"][:6]))
    if suspects.get("truncated"):  # GitHub capped the comparison (300 files, or too many pages)
        lines.append("_GitHub lists only part of this comparison: there are more changes than shown._")
    return lines


def suspect_summary(suspects: dict[str, Any], *, details_shown: bool) -> str | None:
    """One line for the card's first screen: how many changes, by whom, since which green sha."""
    count = int(suspects.get("commitCount", 0))
    if not count:
        return None
    authors = list(dict.fromkeys(str(c.get("author", "")) for c in suspects.get("commits", []) if c.get("author")))
    by = (
        f" by {', '.join(escape(a) for a in authors[:3])}" + (" and others" if len(authors) > 3 else "")
        if authors
        else ""
    )
    since = code(str(suspects.get("base", ""))[:8])
    where = "" if details_shown else " (Details)"
    return f"*Suspect changes:* {count} commit{'s' if count != 1 else ''}{by} since {since}{where}"
