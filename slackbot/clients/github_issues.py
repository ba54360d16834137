"""GitHubIssuesTracker: beads as GitHub issues, for classes whose runbook says ``tracker: github``.

GitHub issues have no priority, custom statuses or metadata, so this adapter encodes them:

* **fingerprint** → a label ``triage-fp:<first 32 hex chars>`` (searchable through the list-issues
  ``labels`` filter, which is consistent, unlike the search API) *and* an HTML comment
  ``<!-- triagebot-fingerprint: <full fp> -->`` in the body, checked on lookup so a shortened-label
  collision can never merge two incidents;
* **priority** → a label ``priority:P<n>`` (replaced on update);
* **status** → the issue ``state``; statuses other than open/closed are kept as a ``status:<s>`` label
  on an open issue.

Errors follow the tracker contract: 429, 5xx, rate-limit 403s and transport failures are retryable
(``retry_after`` carries GitHub's ``Retry-After``); other 4xx are not and carry GitHub's ``message``.
Tokens are only ever sent in the ``Authorization`` header and never appear in error messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from slackbot.clients.tls import tls_context
from slackbot.clients.tracker import Bead, BeadRequest, TrackerError

API_VERSION = "2022-11-28"
FP_LABEL_PREFIX = "triage-fp:"
FP_LABEL_LENGTH = 32  # GitHub label names are limited to 50 characters
PRIORITY_LABEL = re.compile(r"^priority:P[0-4]$")
STATUS_LABEL_PREFIX = "status:"
_ID = re.compile(r"^gh-(\d+)$")


def fingerprint_label(fingerprint: str) -> str:
    return FP_LABEL_PREFIX + fingerprint[:FP_LABEL_LENGTH]


def fingerprint_marker(fingerprint: str) -> str:
    return f"<!-- triagebot-fingerprint: {fingerprint} -->"


def _number(bead_id: str) -> int:
    match = _ID.match(bead_id)
    if not match:
        raise TrackerError(f"not a GitHub bead id: {bead_id!r} (expected gh-<number>)", retryable=False)
    return int(match.group(1))


def _label_names(issue: dict[str, Any]) -> list[str]:
    names = []
    for label in issue.get("labels") or ():
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str):
            names.append(name)
    return names


def _bead(issue: dict[str, Any]) -> Bead:
    labels = _label_names(issue)
    status = str(issue.get("state") or "open")
    if status == "open":
        custom = [n.removeprefix(STATUS_LABEL_PREFIX) for n in labels if n.startswith(STATUS_LABEL_PREFIX)]
        if custom:
            status = custom[0]
    return Bead(
        id=f"gh-{issue['number']}",
        title=str(issue.get("title", "")),
        status=status,
        url=issue.get("html_url"),
        labels=tuple(labels),
    )


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _github_message(response: httpx.Response) -> str:
    """GitHub's ``message`` plus a compact form of its validation ``errors`` list."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(body, dict):
        return response.reason_phrase or "no message"
    message = str(body.get("message") or response.reason_phrase or "no message")
    details = []
    for err in body.get("errors") or ():
        if isinstance(err, dict):
            if err.get("message"):
                details.append(str(err["message"]))
            else:
                details.append(" ".join(str(err[k]) for k in ("resource", "field", "code") if err.get(k) is not None))
        elif isinstance(err, str):
            details.append(err)
    if details:
        message += ": " + "; ".join(details)
    return message[:600]


class GitHubIssuesTracker:
    """:class:`~slackbot.clients.tracker.BeadTracker` over the GitHub REST API (issues).

    Pass ``client`` to share a connection pool (its own base URL and headers are not used: every
    request is built from ``api_url``). Without one, the tracker owns a client; call :meth:`aclose`.
    """

    name = "github"

    def __init__(
        self,
        api_url: str,
        token: str | None,
        repository: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise ValueError(f"repository must be owner/name, got {repository!r}")
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self._token = token
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=tls_context())

    def __repr__(self) -> str:  # never show the token
        return f"GitHubIssuesTracker(api_url={self.api_url!r}, repository={self.repository!r})"

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> GitHubIssuesTracker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- plumbing

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "triagebot",
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        url = f"{self.api_url}/repos/{self.repository}{path}"
        what = f"{method} {path.split('?')[0]}"
        try:
            response = await self._client.request(method, url, json=json, params=params, headers=self._headers())
        except httpx.TimeoutException:
            raise TrackerError(f"GitHub {what} timed out", retryable=True) from None
        except httpx.TransportError as exc:
            raise TrackerError(f"GitHub {what} failed: {type(exc).__name__}", retryable=True) from None
        status = response.status_code
        if status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise TrackerError(f"GitHub {what} returned a body that is not JSON", retryable=True) from None
        message = _github_message(response)
        retry_after = _retry_after(response)
        rate_limited = status == 429 or (
            status == 403 and (response.headers.get("x-ratelimit-remaining") == "0" or retry_after is not None)
        )
        if rate_limited or status >= 500:
            hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
            raise TrackerError(
                f"GitHub {what} returned {status}: {message}{hint}",
                retryable=True,
                exit_code=None,
                retry_after=retry_after,
            )
        raise TrackerError(f"GitHub {what} returned {status}: {message}", retryable=False)

    async def _issue(self, number: int) -> dict[str, Any]:
        issue = await self._request("GET", f"/issues/{number}")
        if not isinstance(issue, dict):
            raise TrackerError("GitHub returned an unexpected issue shape", retryable=False)
        return issue

    # ---- the BeadTracker interface

    async def version(self) -> str:
        """The REST API version this adapter speaks (no request: GitHub has no version endpoint)."""
        return f"github-rest-{API_VERSION}"

    async def create(self, req: BeadRequest) -> Bead:
        """Idempotent by fingerprint: an issue carrying the fingerprint (open or closed) is returned."""
        existing = await self.find_by_fingerprint(req.fingerprint)
        if existing is not None:
            return existing
        body = req.body.rstrip()
        if req.external_ref:
            body += f"\n\nSource: {req.external_ref}"
        body += "\n\n" + fingerprint_marker(req.fingerprint) + "\n"
        labels = list(dict.fromkeys([*req.labels, f"priority:P{req.priority}", fingerprint_label(req.fingerprint)]))
        payload: dict[str, Any] = {"title": req.title, "body": body, "labels": labels}
        if req.assignee:
            payload["assignees"] = [req.assignee]
        issue = await self._request("POST", "/issues", json=payload)
        return _bead(issue)

    async def find_by_fingerprint(self, fingerprint: str) -> Bead | None:
        issues = await self._request(
            "GET",
            "/issues",
            params={"state": "all", "labels": fingerprint_label(fingerprint), "per_page": 100},
        )
        marker = fingerprint_marker(fingerprint)
        matches = [
            i
            for i in issues or ()
            if isinstance(i, dict) and "pull_request" not in i and marker in (i.get("body") or "")
        ]
        if not matches:
            return None
        matches.sort(key=lambda i: (i.get("state") == "closed", int(i["number"])))
        return _bead(matches[0])

    async def comment(self, bead_id: str, text: str) -> None:
        await self._request("POST", f"/issues/{_number(bead_id)}/comments", json={"body": text})

    async def update(
        self,
        bead_id: str,
        *,
        status: str | None = None,
        priority: int | None = None,
        add_labels: Sequence[str] = (),
    ) -> Bead:
        number = _number(bead_id)
        issue = await self._issue(number)
        labels = _label_names(issue)
        payload: dict[str, Any] = {}
        if priority is not None:
            labels = [n for n in labels if not PRIORITY_LABEL.match(n)] + [f"priority:P{priority}"]
        if status is not None:
            labels = [n for n in labels if not n.startswith(STATUS_LABEL_PREFIX)]
            if status == "closed":
                payload.update(state="closed", state_reason="completed")
            else:
                if issue.get("state") == "closed":
                    payload.update(state="open", state_reason="reopened")
                if status != "open":
                    labels.append(STATUS_LABEL_PREFIX + status)
        labels += [label for label in add_labels if label not in labels]
        if labels != _label_names(issue):
            payload["labels"] = labels
        if not payload:
            return _bead(issue)
        return _bead(await self._request("PATCH", f"/issues/{number}", json=payload))

    async def close(self, bead_id: str, reason: str) -> Bead:
        """Close as completed, then post the reason as a comment (issues have no close-reason text).

        PATCH first because it is idempotent: if the comment fails, the retried call re-PATCHes
        harmlessly and comments once, instead of leaving a duplicate comment behind.
        """
        number = _number(bead_id)
        issue = await self._request("PATCH", f"/issues/{number}", json={"state": "closed", "state_reason": "completed"})
        if reason:
            await self.comment(bead_id, f"Closed: {reason}")
        return _bead(issue)

    async def reopen(self, bead_id: str, reason: str) -> Bead:
        number = _number(bead_id)
        issue = await self._request("PATCH", f"/issues/{number}", json={"state": "open", "state_reason": "reopened"})
        if reason:
            await self.comment(bead_id, f"Reopened: {reason}")
        return _bead(issue)

    async def show(self, bead_id: str) -> Bead:
        return _bead(await self._issue(_number(bead_id)))
