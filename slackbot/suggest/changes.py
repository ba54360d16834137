"""Suspect changes: the commits between the last green run and the first failing one, each with
the owners of the files it touched (CODEOWNERS, and the playbook's class scopes); and what those
files say about the cause (migrations or seeds changed -> drift, harness -> harness, service ->
regression), as votes like any other signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slackbot.config import Playbook
from slackbot.suggest.codeowners import parse
from slackbot.suggest.suggestion import Vote

WEIGHT = 1.5
SHOWN = 5  # commits on the card: the newest, which are also the likeliest
FILES_SHOWN = 8  # changed files listed with their owners


@dataclass(frozen=True)
class Touched:
    """A changed file, who owns it (CODEOWNERS) and which of the playbook's classes claim it."""

    path: str
    owners: list[str]
    failure_class: str | None
    scope_owner: str | None = None  # the claiming class's owner, for a file CODEOWNERS leaves unowned


def touched(playbook: Playbook, files: list[str], codeowners: str | None) -> list[Touched]:
    rules = parse(codeowners)
    found = []
    for path in files:
        match = playbook.owner_for_path(path)
        route = playbook.class_route(match[0]) if match else None
        found.append(
            Touched(
                path, list(rules.owners(path)), match[0] if match else None, route.owner.describe() if route else None
            )
        )
    return found


def change_votes(playbook: Playbook, files: list[Touched]) -> list[Vote]:
    """A class whose scope holds changed files votes, once, naming a few of them."""
    claimed: dict[str, list[str]] = {}
    for item in files:
        if item.failure_class:
            claimed.setdefault(item.failure_class, []).append(item.path)
    return [
        Vote(key, WEIGHT, "changes", f"changed since green: {', '.join(paths[:3])}" + (" …" if len(paths) > 3 else ""))
        for key, paths in claimed.items()
    ]


def suspects(commits: list[Any], files: list[Touched], *, base: str, head: str, truncated: bool) -> dict[str, Any]:
    """What the incident stores (``Incident.suspects``) and the card, /triage show and the bead
    show: the newest commits, the owners of everything changed, and the classes it touches."""
    owners = sorted({o for f in files for o in f.owners})
    classes = sorted({f.failure_class for f in files if f.failure_class})
    return {
        "base": base,
        "head": head,
        "commits": [
            {"sha": c.sha, "author": c.author, "title": c.title, "url": c.url} for c in list(reversed(commits))[:SHOWN]
        ],
        "commitCount": len(commits),
        "files": len(files),
        # Who owns each changed file (the first few, in GitHub's order): its CODEOWNERS owners, else
        # the owner of the playbook class whose scope holds it
        "changed": [
            {"path": f.path, "owners": f.owners or ([f.scope_owner] if f.scope_owner else []), "class": f.failure_class}
            | ({"via": "scope"} if not f.owners and f.scope_owner else {})
            for f in files[:FILES_SHOWN]
        ],
        "owners": owners,
        "classes": classes,
        "truncated": truncated,
    }
