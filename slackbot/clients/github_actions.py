"""The GitHub Actions REST API, as far as the bot reads it: a run, its artifacts, their zips.

Artifact downloads follow GitHub's ``302`` to storage without the token (the storage URL is
signed) and are capped before they are read past the cap.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from slackbot.clients.artifacts import MB, UnsafeArchive
from slackbot.clients.tls import tls_context
from slackbot.clock import Clock

MAX_DOWNLOAD_BYTES = 50 * MB
MAX_ARTIFACT_PAGES = 20
DOWNLOAD_SECONDS = 30.0  # the whole download, however slowly the storage host trickles it
REDIRECTS = frozenset({301, 302, 303, 307, 308})
API_VERSION = "2022-11-28"


class GitHubApiError(Exception):
    """``retryable`` tells the outbox worker whether to try again; ``retry_after`` (seconds) is
    GitHub's own word on when (rate limits)."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ArtifactExpired(Exception):
    pass


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    return str(data.get("message", response.reason_phrase)) if isinstance(data, dict) else response.reason_phrase


class GitHubActions:
    """The three Actions endpoints the bot needs, with GitHub's headers, pagination, redirects,
    rate limits and error bodies handled once."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        clock: Clock,
        *,
        timeout: float = 30.0,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
        per_page: int = 100,
        download_seconds: float = DOWNLOAD_SECONDS,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.clock = clock
        self.timeout = timeout
        self.max_download_bytes = max_download_bytes
        self.per_page = per_page
        self.download_seconds = download_seconds
        # Loading the CA bundle takes 20-100 ms in one C call: done once per process, not on the
        # event loop for every request (a new client per call would load it each time).
        self._tls = tls_context()

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "triagebot",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _repo(self, repository: str) -> str:
        owner, _, name = repository.partition("/")
        return f"{self.api_url}/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _error(self, response: httpx.Response, what: str) -> GitHubApiError:
        status = response.status_code
        message = _error_message(response)
        headers = response.headers
        limited = status == 429 or (
            status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
        )
        if limited:
            after = 60.0
            if headers.get("retry-after", "").isdigit():
                after = float(headers["retry-after"])
            elif headers.get("x-ratelimit-reset", "").isdigit():
                after = float(headers["x-ratelimit-reset"]) - self.clock.now().timestamp()
            return GitHubApiError(
                f"GitHub rate limit while {what}", retryable=True, retry_after=min(max(after, 1.0), 900.0)
            )
        if status >= 500:
            return GitHubApiError(f"GitHub answered HTTP {status} while {what}", retryable=True)
        if status == 401:
            return GitHubApiError(
                f"GitHub refused the token while {what} (HTTP 401): set GITHUB_TOKEN to a token with actions:read",
                retryable=False,
            )
        if status == 404:
            return GitHubApiError(
                f"GitHub found nothing while {what} (HTTP 404): wrong repository or run, or the token cannot see it",
                retryable=False,
            )
        return GitHubApiError(f"GitHub answered HTTP {status} while {what}: {message}", retryable=False)

    @staticmethod
    def _object(response: httpx.Response, what: str) -> dict[str, Any]:
        """A 200's JSON object; a proxy's HTML page or a JSON list may be a passing fault: retried."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise GitHubApiError(f"GitHub answered 200 without a JSON object while {what}", retryable=True)
        return data

    async def get_run(self, repository: str, run_id: str, attempt: int | None = None) -> dict[str, Any]:
        url = f"{self._repo(repository)}/actions/runs/{quote(run_id, safe='')}"
        if attempt:
            url += f"/attempts/{attempt}"
        what = f"reading run {repository}#{run_id}"
        async with httpx.AsyncClient(timeout=self.timeout, verify=self._tls) as client:
            response = await client.get(url, headers=self._headers())
        if response.status_code != 200:
            raise self._error(response, what)
        return self._object(response, what)

    async def list_artifacts(self, repository: str, run_id: str) -> list[dict[str, Any]]:
        """Every artifact of the run, following the ``Link: rel="next"`` pages."""
        url: str | None = f"{self._repo(repository)}/actions/runs/{quote(run_id, safe='')}/artifacts"
        params: dict[str, Any] | None = {"per_page": self.per_page}
        artifacts: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=self.timeout, verify=self._tls) as client:
            for _ in range(MAX_ARTIFACT_PAGES):
                if url is None:
                    break
                what = f"listing the artifacts of {repository}#{run_id}"
                response = await client.get(url, params=params, headers=self._headers())
                if response.status_code != 200:
                    raise self._error(response, what)
                page = self._object(response, what).get("artifacts")
                if isinstance(page, list):
                    artifacts.extend(a for a in page if isinstance(a, dict))
                url, params = response.links.get("next", {}).get("url"), None
        return artifacts

    async def download(self, repository: str, artifact: dict[str, Any]) -> bytes:
        """The artifact's zip. GitHub answers 302 to a short-lived pre-signed URL on another
        host; that request goes out without our token (the storage host must never see it)."""
        what = f"downloading artifact {str(artifact.get('name'))[:200]!r}"
        artifact_id = artifact.get("id")
        if type(artifact_id) is not int or artifact_id < 1:
            raise GitHubApiError(f"GitHub listed an artifact id {str(artifact_id)[:40]!r}, not a number, while {what}")
        url = f"{self._repo(repository)}/actions/artifacts/{artifact_id}/zip"
        try:
            async with asyncio.timeout(self.download_seconds):
                return await self._download(url, str(artifact.get("name")), what)
        except TimeoutError:
            raise GitHubApiError(f"{what} took longer than {self.download_seconds:.0f} s", retryable=True) from None

    async def _download(self, url: str, name: str, what: str) -> bytes:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, verify=self._tls) as client:
            response = await client.get(url, headers=self._headers())
            if response.status_code == 410:
                raise ArtifactExpired(name)
            if response.status_code in REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise GitHubApiError(f"GitHub redirected without a Location while {what}")
                return await self._fetch_capped(client, urljoin(url, location), {"User-Agent": "triagebot"}, what)
            if response.status_code == 200:
                return self._capped(response.content, what)
            raise self._error(response, what)

    async def _fetch_capped(self, client: httpx.AsyncClient, url: str, headers: dict[str, str], what: str) -> bytes:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 410:
                raise ArtifactExpired(what)
            if response.status_code in REDIRECTS:
                # GitHub's one redirect is to storage; storage redirecting again is a loop or a trap.
                raise GitHubApiError(f"the storage host redirected again (HTTP {response.status_code}) while {what}")
            if response.status_code != 200:
                await response.aread()
                raise self._error(response, what)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_download_bytes:
                raise UnsafeArchive(f"the artifact is larger than {self.max_download_bytes // MB} MB")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_download_bytes:
                    raise UnsafeArchive(f"the artifact is larger than {self.max_download_bytes // MB} MB")
        return bytes(body)

    def _capped(self, content: bytes, what: str) -> bytes:
        if len(content) > self.max_download_bytes:
            raise UnsafeArchive(f"the artifact is larger than {self.max_download_bytes // MB} MB")
        return content


# ---------------------------------------------------------------------------------------------
# The service
