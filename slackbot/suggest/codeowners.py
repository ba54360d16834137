"""CODEOWNERS as GitHub reads it: who owns a changed file.

GitHub's rules (docs: "About code owners"): one ``pattern owner…`` per line; ``#`` starts a
comment; the **last** matching pattern wins, and a matching pattern with no owners leaves the file
unowned; patterns follow gitignore, with three differences GitHub states: no ``!`` negation, no
``[ ]`` character ranges, and ``\\#`` escapes a pattern that starts with ``#``. A line GitHub
cannot read is skipped (GitHub shows it as an error and ignores it), never fatal. Paths are case
sensitive.

The gitignore patterns, as GitHub applies them to a file path:

- a slash at the start or in the middle anchors the pattern at the repository root; without one
  it matches at any depth (``*.js``, ``apps/``, ``logs``);
- a trailing slash matches what is inside a directory (``/build/logs/``), never a file of that name;
- a pattern also matches everything under a directory it names (``/docs`` owns ``docs/a/b.md``),
  except a last segment that is a lone ``*``: ``docs/*`` owns ``docs/x.md`` but not
  ``docs/build-app/troubleshooting.md`` (GitHub's own example);
- ``*`` is any run of characters but ``/``, ``?`` one of them; ``**`` is any number of
  directories: ``**/logs``, ``logs/**``, ``a/**/b``.

No library in this environment reads CODEOWNERS (``pathspec`` speaks gitignore, whose ``docs/*``
differs, and is not a dependency), so this is a small matcher, checked against GitHub's examples
in tests/suggest/test_codeowners.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_OWNER = re.compile(r"^(@[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9._-]+)?|[^@\s]+@[^@\s]+\.[^@\s]+)$")


@dataclass(frozen=True)
class Rule:
    pattern: str
    owners: tuple[str, ...]
    line: int
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Skipped:
    """A line GitHub would not apply, and why (shown by GitHub as an error in the file)."""

    line: int
    reason: str


@dataclass(frozen=True)
class CodeOwners:
    rules: tuple[Rule, ...] = ()
    skipped: tuple[Skipped, ...] = field(default=())

    def owners(self, path: str) -> tuple[str, ...]:
        """The owners of a file (repository-relative, ``/``-separated): the last rule that matches."""
        path = path.lstrip("/")
        for rule in reversed(self.rules):
            if rule.regex.match(path):
                return rule.owners
        return ()


def parse(text: str | None) -> CodeOwners:
    rules: list[Rule] = []
    skipped: list[Skipped] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        tokens = _tokens(raw)
        if not tokens:
            continue
        pattern, owners = tokens[0], tuple(tokens[1:])
        reason = _unsupported(pattern) or next(
            (f"{o!r} is not a user, team or email" for o in owners if not _OWNER.match(o)), None
        )
        if reason is not None:
            skipped.append(Skipped(number, reason))
            continue
        rules.append(Rule(pattern, owners, number, re.compile(translate(pattern))))
    return CodeOwners(tuple(rules), tuple(skipped))


def _tokens(line: str) -> list[str]:
    """Whitespace-separated tokens up to an unescaped ``#`` (a comment); ``\\`` escapes the next
    character (``\\#``, ``\\ ``) and is kept, so the pattern translation sees what was escaped."""
    tokens: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for ch in chars:
        if ch == "\\":
            current.append(ch + next(chars, ""))
        elif ch == "#" and not current:
            break
        elif ch.isspace():
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        tokens.append("".join(current))
    return tokens


def _unsupported(pattern: str) -> str | None:
    if pattern.startswith("!"):
        return "negation (!) is not supported in CODEOWNERS"
    if re.search(r"(?<!\\)\[", pattern):
        return "character ranges ([ ]) are not supported in CODEOWNERS"
    if "***" in pattern:
        return "three asterisks in a row match nothing"
    return None


def translate(pattern: str) -> str:
    """The pattern as a regular expression over a repository-relative file path."""
    if pattern.strip("/") == "":
        return r"(?!)"  # "/" names the root itself, which is no file
    anchored = "/" in pattern.rstrip("/")
    directory = pattern.endswith("/")
    segments = pattern.strip("/").split("/")
    if not anchored and segments[0] != "**":
        segments.insert(0, "**")
    if directory:
        segments.append("**")
    last = len(segments) - 1
    parts: list[str] = []
    slash = False  # whether the next segment must be joined with "/"
    for index, segment in enumerate(segments):
        if segment == "**":
            if index == last:
                parts.append("/.+" if index else ".+")
            elif index == 0:
                parts.append("(?:.+/)?")
                slash = False
                continue
            else:
                parts.append("(?:/.+)?")
            slash = True
            continue
        parts.append("/" if slash else "")
        if segment == "*":
            parts.append("[^/]+")  # a lone "*" names one level: docs/* owns docs/x.md only
        else:
            parts.append(_segment(segment))
            if index == last:
                parts.append("(?:/.+)?")  # a directory's name owns what is inside it
        slash = True
    return r"\A" + "".join(parts) + r"\Z"


def _segment(segment: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in segment:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
    return "".join(out)
