"""A local GitHub Issues API (the few endpoints ``GitHubIssuesTracker`` calls), over real HTTP.

Runbooks may route a class's defects to GitHub issues (``tracker: github`` in routing.yml). The
simulation must file those too without network access, so it points ``GITHUB_API_URL`` here.
Only what the tracker uses: list issues by label, create, get, patch, comment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from slackbot.serving import serve


class FakeGitHubIssues:
    def __init__(self) -> None:
        self.issues: dict[str, dict[int, dict[str, Any]]] = {}  # repository -> number -> issue
        self.comments: dict[tuple[str, int], list[str]] = {}
        self.lock = threading.Lock()
        self.url = ""

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

    async def issues_route(self, request: Request) -> JSONResponse:
        repo = self._repo(request)
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
            return JSONResponse(self._view(repo, issue), status_code=201)

    async def issue_route(self, request: Request) -> JSONResponse:
        repo, number = self._repo(request), int(request.path_params["number"])
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

    async def comments_route(self, request: Request) -> JSONResponse:
        repo, number = self._repo(request), int(request.path_params["number"])
        body = await request.json()
        with self.lock:
            if number not in self.issues.get(repo, {}):
                return JSONResponse({"message": "Not Found"}, status_code=404)
            self.comments.setdefault((repo, number), []).append(str(body.get("body", "")))
        return JSONResponse({"id": 1, "body": body.get("body", "")}, status_code=201)


@contextmanager
def running_github_issues() -> Iterator[FakeGitHubIssues]:
    fake = FakeGitHubIssues()
    base = "/repos/{owner}/{name}/issues"
    app = Starlette(
        routes=[
            Route(base, fake.issues_route, methods=["GET", "POST"]),
            Route(base + "/{number:int}", fake.issue_route, methods=["GET", "PATCH"]),
            Route(base + "/{number:int}/comments", fake.comments_route, methods=["POST"]),
        ]
    )
    with serve(app) as url:
        fake.url = url
        yield fake
