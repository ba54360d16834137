"""A local GitHub API over real HTTP: the Issues endpoints ``GitHubIssuesTracker`` calls, and the
Actions endpoints the ``workflow_run`` webhook path and run links in Slack alerts call.

Runbooks may route a class's defects to GitHub issues (``tracker: github`` in routing.yml), and CI
may reach the bot through GitHub (a webhook, then the bot downloads the run's report artifact). The
simulation must do both without network access, so it points ``GITHUB_API_URL`` here.
Issues: list by label, create, get, patch, comment. Actions (:class:`FakeGitHubActions`): a run (or
one attempt of it), its artifacts, and an artifact's download, which answers ``302`` to a
pre-signed storage URL on the same server that refuses the API token, as GitHub's storage does.

An outage (:meth:`FakeGitHubActions.set_outage`, driven by the simulation's fault plan) makes the
Actions API answer as GitHub does when it is down or when the token's hourly budget is spent: a
5xx HTML page, or the primary rate limit's ``403`` with ``x-ratelimit-remaining: 0`` and
``x-ratelimit-reset`` in UTC epoch seconds (docs.github.com, "Troubleshooting the REST API": wait
until that reset). Each refused request names the run it was about, so the outside checks can
tell which runs met the outage.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from slackbot.serving import serve


class FakeGitHubActions:
    """Workflow runs and their artifacts. ``downloads`` records each artifact handed out:
    (repository, run id, artifact name), what the outside checks see of the bot fetching a run."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock
        # (repository, run id) -> when its report was first handed out (virtual time, with a clock)
        self.fetched_at: dict[tuple[str, str], datetime] = {}
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}  # (repository, run id) -> the run object
        self.artifacts: dict[int, dict[str, Any]] = {}  # id -> {"repository", "run_id", "name", "data"}
        self.downloads: list[tuple[str, str, str]] = []
        # (repository, run id, HTTP status) of each request the outage refused, in order
        self.refused: list[tuple[str, str, int]] = []
        self._outage: tuple[int, datetime | None] | None = None  # (status, rate-limit reset)
        self._blobs: dict[str, int] = {}  # pre-signed token -> artifact id
        self._ids = itertools.count(5_000_001)
        self.lock = threading.Lock()
        self.url = ""

    def add_run(self, repository: str, run: dict[str, Any], artifacts: dict[str, bytes]) -> None:
        with self.lock:
            self.runs[(repository, str(run["id"]))] = run
            for name, data in artifacts.items():
                self.artifacts[next(self._ids)] = {
                    "repository": repository,
                    "run_id": str(run["id"]),
                    "name": name,
                    "data": data,
                    "created_at": run.get("updated_at"),
                }

    def downloaded(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return list(self.downloads)

    def set_outage(self, status: int | None, reset: datetime | None = None) -> None:
        """From now on the API answers ``status`` (a 5xx, or 403 for a spent rate limit that
        resets at ``reset``); None ends the outage."""
        with self.lock:
            self._outage = None if status is None else (status, reset)

    def refusals(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.refused)

    def _refuse(self, repository: str, run_id: str) -> Response | None:
        """GitHub's answer while it is out, or None when it is up."""
        with self.lock:
            if self._outage is None:
                return None
            status, reset = self._outage
            self.refused.append((repository, run_id, status))
        if status != 403:
            # GitHub's edge answers a 5xx with its HTML error page, not JSON
            return HTMLResponse("<html><body><h1>Unicorn!</h1>No server is currently available.</body></html>", status)
        epoch = int(reset.timestamp()) if reset else 0
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "5000",
            "x-ratelimit-reset": str(epoch),
            "x-ratelimit-resource": "core",
        }
        body = {
            "message": "API rate limit exceeded for installation ID 1.",
            "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
        }
        return JSONResponse(body, status_code=403, headers=headers)

    @staticmethod
    def _authorized(request: Request) -> bool:
        return request.headers.get("authorization", "").startswith(("Bearer ", "token "))

    async def run_route(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        key = (FakeGitHubIssues._repo(request), str(request.path_params["run_id"]))
        if (refused := self._refuse(*key)) is not None:
            return refused
        with self.lock:
            run = self.runs.get(key)
        if run is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        attempt = request.path_params.get("attempt")
        if attempt is not None and attempt != run.get("run_attempt", 1):
            return JSONResponse({"message": "Not Found"}, status_code=404)
        return JSONResponse(run)

    def _artifact_view(self, artifact_id: int, stored: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.url}/repos/{stored['repository']}/actions/artifacts/{artifact_id}"
        return {
            "id": artifact_id,
            "node_id": f"MDg6QXJ0aWZhY3Q{artifact_id}",
            "name": stored["name"],
            "size_in_bytes": len(stored["data"]),
            "url": api,
            "archive_download_url": api + "/zip",
            "expired": False,
            "created_at": stored["created_at"],
            "updated_at": stored["created_at"],
            "expires_at": None,
            "workflow_run": {"id": int(stored["run_id"])},
        }

    async def artifacts_route(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        repo, run_id = FakeGitHubIssues._repo(request), str(request.path_params["run_id"])
        if (refused := self._refuse(repo, run_id)) is not None:
            return refused
        with self.lock:
            rows = [
                self._artifact_view(i, a)
                for i, a in self.artifacts.items()
                if a["repository"] == repo and a["run_id"] == run_id
            ]
        return JSONResponse({"total_count": len(rows), "artifacts": rows})

    async def download_route(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "Requires authentication"}, status_code=401)
        artifact_id = int(request.path_params["artifact_id"])
        with self.lock:
            stored = self.artifacts.get(artifact_id, {})
        refused = self._refuse(FakeGitHubIssues._repo(request), str(stored.get("run_id", "?")))
        if refused is not None:
            return refused
        with self.lock:
            if artifact_id not in self.artifacts:
                return JSONResponse({"message": "Not Found"}, status_code=404)
            token = f"{artifact_id}-{next(self._ids)}"
            self._blobs[token] = artifact_id
        return RedirectResponse(f"{self.url}/_storage/{token}", status_code=302)

    async def storage_route(self, request: Request) -> Response:
        # The storage host authenticates by the URL's signature; a forwarded API token is refused.
        if "authorization" in request.headers:
            return Response(b"<Error><Code>InvalidAuthenticationInfo</Code></Error>", status_code=400)
        with self.lock:
            artifact_id = self._blobs.get(str(request.path_params["token"]))
            if artifact_id is None:
                return Response(b"<Error><Code>AuthenticationFailed</Code></Error>", status_code=403)
            stored = self.artifacts[artifact_id]
            self.downloads.append((stored["repository"], stored["run_id"], stored["name"]))
            if self.clock is not None:
                self.fetched_at.setdefault((stored["repository"], stored["run_id"]), self.clock())
        return Response(stored["data"], media_type="application/zip")


class FakeGitHubIssues:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.actions = FakeGitHubActions(clock)  # the same server: one GITHUB_API_URL
        self.issues: dict[str, dict[int, dict[str, Any]]] = {}  # repository -> number -> issue
        self.comments: dict[tuple[str, int], list[str]] = {}
        self.lock = threading.Lock()
        self.url = ""
        self.clock = clock
        self._armed: tuple[int, int] | None = None  # (minutes, status) of the outage the next create begins
        self._down: tuple[datetime, int] | None = None  # until when, and with what status
        # (repository, issue title or number, HTTP status) of each request the outage refused, in order
        self.refused: list[tuple[str, str, int]] = []
        self.outages: list[tuple[datetime, datetime]] = []  # (began, ended) in virtual time

    def arm_outage(self, minutes: int | None, status: int = 503) -> None:
        """The next issue GitHub creates begins an outage of the Issues API: GitHub files the
        issue but the answer is lost (a 502 from its edge), and for ``minutes`` every Issues API
        request is answered ``status``. The nasty case for a tracker client: a retry must find
        the issue filed, not file a second one. None disarms an outage that has not begun."""
        with self.lock:
            self._armed = None if minutes is None or self.clock is None else (minutes, status)

    def issue_refusals(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.refused)

    def issue_outages(self) -> list[tuple[datetime, datetime]]:
        with self.lock:
            return list(self.outages)

    def _refuse(self, repo: str, what: str) -> HTMLResponse | None:
        """GitHub's edge answer while the Issues API is out, else None."""
        with self.lock:
            down = self._down
        if down is None or self.clock is None or self.clock() >= down[0]:
            return None
        return self._edge(repo, what, down[1])

    def _edge(self, repo: str, what: str, status: int) -> HTMLResponse:
        with self.lock:
            self.refused.append((repo, what, status))
        # GitHub's edge answers a 5xx with its HTML error page, not JSON
        return HTMLResponse("<html><body><h1>Unicorn!</h1>No server is currently available.</body></html>", status)

    def _begin_outage(self) -> bool:
        """If an outage is armed, it begins now (the lock is held)."""
        if self._armed is None or self.clock is None:
            return False
        minutes, status = self._armed
        began = self.clock()
        self._armed, self._down = None, (began + timedelta(minutes=minutes), status)
        self.outages.append((began, began + timedelta(minutes=minutes)))
        return True

    def all_issues(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(issue, repository=repo) for repo, found in self.issues.items() for issue in found.values()]

    @staticmethod
    def _repo(request: Request) -> str:
        return f"{request.path_params['owner']}/{request.path_params['name']}"

    def _view(self, repo: str, issue: dict[str, Any]) -> dict[str, Any]:
        return {
            **issue,
            "labels": [{"name": n} for n in issue["labels"]],
            "html_url": f"https://github.com/{repo}/issues/{issue['number']}",
        }

    async def issues_route(self, request: Request) -> Response:
        repo = self._repo(request)
        refused = self._refuse(repo, "the issue list" if request.method == "GET" else "a new issue")
        if refused is not None:
            return refused
        if request.method == "GET":
            wanted = {x for x in request.query_params.get("labels", "").split(",") if x}
            with self.lock:
                found = [self._view(repo, i) for i in self.issues.get(repo, {}).values() if wanted <= set(i["labels"])]
            return JSONResponse(found)
        body = await request.json()
        with self.lock:
            repo_issues = self.issues.setdefault(repo, {})
            number = len(repo_issues) + 1
            issue = {
                "number": number,
                "title": body.get("title", ""),
                "body": body.get("body", ""),
                "labels": list(body.get("labels") or []),
                "state": "open",
            }
            repo_issues[number] = issue
            lost = self._begin_outage()
        if lost:  # filed, and the answer lost on the way back
            return self._edge(repo, str(issue["title"]), 502)
        return JSONResponse(self._view(repo, issue), status_code=201)

    async def issue_route(self, request: Request) -> Response:
        repo, number = self._repo(request), int(request.path_params["number"])
        refused = self._refuse(repo, f"#{number}")
        if refused is not None:
            return refused
        with self.lock:
            issue = self.issues.get(repo, {}).get(number)
            if issue is None:
                return JSONResponse({"message": "Not Found"}, status_code=404)
        if request.method == "PATCH":
            body = await request.json()
            with self.lock:
                if "state" in body:
                    issue["state"] = body["state"]
                if "labels" in body:
                    issue["labels"] = list(body["labels"])
        with self.lock:
            return JSONResponse(self._view(repo, issue))

    async def comments_route(self, request: Request) -> Response:
        repo, number = self._repo(request), int(request.path_params["number"])
        refused = self._refuse(repo, f"#{number}")
        if refused is not None:
            return refused
        body = await request.json()
        with self.lock:
            if number not in self.issues.get(repo, {}):
                return JSONResponse({"message": "Not Found"}, status_code=404)
            self.comments.setdefault((repo, number), []).append(str(body.get("body", "")))
        return JSONResponse({"id": 1, "body": body.get("body", "")}, status_code=201)


@contextmanager
def running_github_issues(clock: Callable[[], datetime] | None = None) -> Iterator[FakeGitHubIssues]:
    fake = FakeGitHubIssues(clock)
    actions = fake.actions
    base = "/repos/{owner}/{name}/issues"
    runs = "/repos/{owner}/{name}/actions/runs/{run_id:int}"
    app = Starlette(
        routes=[
            Route(base, fake.issues_route, methods=["GET", "POST"]),
            Route(base + "/{number:int}", fake.issue_route, methods=["GET", "PATCH"]),
            Route(base + "/{number:int}/comments", fake.comments_route, methods=["POST"]),
            Route(runs, actions.run_route, methods=["GET"]),
            Route(runs + "/attempts/{attempt:int}", actions.run_route, methods=["GET"]),
            Route(runs + "/artifacts", actions.artifacts_route, methods=["GET"]),
            Route(
                "/repos/{owner}/{name}/actions/artifacts/{artifact_id:int}/zip", actions.download_route, methods=["GET"]
            ),
            Route("/_storage/{token}", actions.storage_route, methods=["GET"]),
        ]
    )
    with serve(app) as url:
        fake.url = actions.url = url
        yield fake
