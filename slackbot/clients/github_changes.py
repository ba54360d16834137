"""What changed between two shas of a repository (GitHub's compare), and who owns what (its
CODEOWNERS): the suspect changes of a failure first seen at one sha after a green run at another.

A comparison of two shas never changes, so each is fetched once (cached in memory); its commits
and files come in pages; a rate limit is raised with GitHub's own word on when to retry
(``GitHubApiError.retry_after``), which the outbox honours without spending an attempt.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from slackbot.clients.github_actions import GitHubActions, GitHubApiError

MAX_PAGES = 10  # 1,000 commits: a comparison longer than that names too much to suspect anyone
CACHED = 256
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")  # GitHub's order; the first wins
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Commit:
    sha: str
    author: str
    title: str
    url: str | None


@dataclass(frozen=True)
class Comparison:
    commits: list[Commit] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    truncated: bool = False


class GitHubChanges(GitHubActions):
    """Compare and contents, with the Actions client's headers, errors and rate-limit handling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: OrderedDict[tuple[str, str, str], Comparison] = OrderedDict()
        self._files: OrderedDict[tuple[str, str, str], _File] = OrderedDict()  # (repo, ref, path)

    async def compare(self, repository: str, base: str, head: str) -> Comparison:
        key = (repository, base, head)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        url: str | None = f"{self._repo(repository)}/compare/{quote(base, safe='')}...{quote(head, safe='')}"
        params: dict[str, Any] | None = {"per_page": self.per_page}
        commits: list[Commit] = []
        files: list[str] = []
        what = f"comparing {repository} {base[:8]}...{head[:8]}"
        async with httpx.AsyncClient(timeout=self.timeout, verify=self._tls) as client:
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                response = await client.get(url, params=params, headers=self._headers())
                if response.status_code != 200:
                    raise self._error(response, what)
                page = self._object(response, what)
                commits.extend(_commit(c) for c in page.get("commits") or [] if isinstance(c, dict))
                files.extend(
                    str(f["filename"]) for f in page.get("files") or [] if isinstance(f, dict) and f.get("filename")
                )
                url, params = response.links.get("next", {}).get("url"), None
        found = Comparison(commits, list(dict.fromkeys(files)), truncated=url is not None)
        self._cache[key] = found
        if len(self._cache) > CACHED:
            self._cache.popitem(last=False)
        return found

    async def codeowners(self, repository: str, ref: str) -> str | None:
        """The repository's CODEOWNERS at ``ref``: the first of GitHub's three places that has one.

        Cached per repository, ref and place. A file read before is asked for again with its ETag
        (``If-None-Match``): GitHub answers 304 when it is unchanged, and a 304 does not count
        against the rate limit. A place without one is remembered for a commit sha (it cannot
        change) and asked again for a branch."""
        async with httpx.AsyncClient(timeout=self.timeout, verify=self._tls) as client:
            for path in CODEOWNERS_PATHS:
                key = (repository, ref, path)
                cached = self._files.get(key)
                if cached is not None and cached.text is None and _SHA.match(ref):
                    continue
                headers = self._headers()
                if cached is not None and cached.etag:
                    headers["If-None-Match"] = cached.etag
                url = f"{self._repo(repository)}/contents/{path}"
                response = await client.get(url, params={"ref": ref}, headers=headers)
                if response.status_code == 304 and cached is not None and cached.text is not None:
                    self._files.move_to_end(key)
                    return cached.text
                if response.status_code == 404:
                    self._remember(key, _File(None, None))
                    continue
                if response.status_code != 200:
                    raise self._error(response, f"reading {path} of {repository}")
                data = self._object(response, f"reading {path} of {repository}")
                try:
                    text = base64.b64decode(str(data.get("content") or "")).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    raise GitHubApiError(f"GitHub sent {path} of {repository} in an unreadable encoding") from None
                self._remember(key, _File(response.headers.get("etag"), text))
                return text
        return None

    def _remember(self, key: tuple[str, str, str], found: _File) -> None:
        self._files[key] = found
        self._files.move_to_end(key)
        if len(self._files) > CACHED:
            self._files.popitem(last=False)


@dataclass(frozen=True)
class _File:
    etag: str | None
    text: str | None  # None: not there (GitHub answered 404)


def _commit(data: dict[str, Any]) -> Commit:
    commit = data.get("commit") if isinstance(data.get("commit"), dict) else {}
    author = (data.get("author") or {}).get("login") if isinstance(data.get("author"), dict) else None
    name = author or ((commit or {}).get("author") or {}).get("name") or "unknown"
    message = str((commit or {}).get("message") or "")
    return Commit(str(data.get("sha") or ""), str(name), message.split("\n", 1)[0][:120], data.get("html_url"))
