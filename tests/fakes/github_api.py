"""A fake GitHub REST API over real HTTP (127.0.0.1, ephemeral port, a server thread).

Why real HTTP instead of ``httpx.MockTransport``: the adapters must be tested with the headers,
status codes, redirects and connection errors they will meet in production, through the same
client code path.

What it implements now: the issues endpoints the bead tracker uses (create, get, list with
``state``/``labels``/paging, update/close/reopen by PATCH, comments), GitHub's JSON shapes and error
bodies, bearer-token checking, and injected failures (:meth:`FakeGitHub.fail_next`).

How to extend it (for example with Actions artifacts): register handlers with :meth:`FakeGitHub.route`
using ``{name}`` path templates. A handler gets a :class:`Request` and returns a :class:`Response`;
``Response(302, headers={"Location": ...})`` gives a redirect, ``Response(200, body=b"...",
content_type="application/zip")`` raw bytes, and ``auth=False`` marks routes that take no token
(GitHub's pre-signed download URLs). Shared state is guarded by ``self.lock``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

DOCS = "https://docs.github.com/rest"
SUPPORTED_API_VERSIONS = frozenset({"2022-11-28", "2026-03-10"})
STATUS_MESSAGES = {
    400: "Bad Request",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    422: "Validation Failed",
    429: "API rate limit exceeded",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route template

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


def error(status: int, message: str | None = None, *, errors: list[Any] | None = None, **headers: str) -> Response:
    """An error body the way GitHub writes it."""
    body: dict[str, Any] = {"message": message or STATUS_MESSAGES.get(status, "Error")}
    if errors is not None:
        body["errors"] = errors
    body["documentation_url"] = DOCS
    body["status"] = str(status)
    return Response(status, body, headers={k.replace("_", "-"): v for k, v in headers.items()})


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """In-memory GitHub. Use as a context manager; ``url`` is the API base URL."""

    def __init__(
        self,
        *,
        token: str | None = "ghp_test_token",
        repos: tuple[str, ...] = ("acme/widgets",),
        html_base: str = "https://github.com",
    ) -> None:
        self.token = token
        self.html_base = html_base
        self.lock = threading.RLock()
        self.repos: set[str] = set(repos)
        self.issues: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in repos}
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.labels: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self._failures: deque[Response] = deque()
        self._ids = itertools.count(1_000_001)
        self.routes: list[Route] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._register_issue_routes()
        # Actions (workflow runs and their artifacts), for the workflow_run webhook path.
        self.runs: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (repo, run id) -> attempts
        self.artifacts: dict[int, dict[str, Any]] = {}  # id -> {"repository", "run_id", "meta", "data"}
        self.blobs: dict[str, int] = {}  # pre-signed token -> artifact id
        self._register_actions_routes()
        # Compare and contents, for the suspect changes between a last green and a failing sha.
        self.comparisons: dict[tuple[str, str], dict[str, Any]] = {}  # (repo, "base...head") -> body
        self.files: dict[tuple[str, str], str] = {}  # (repo, path) -> text (any ref)
        self._register_compare_routes()

    # ---- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGitHub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGitHub:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes; avoid 40 ms stalls

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls

    def fail_next(
        self, n: int = 1, status: int = 500, *, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``n`` authenticated calls with ``status`` (GitHub's error body)."""
        with self.lock:
            for _ in range(n):
                response = error(status, message)
                response.headers.update(headers or {})
                self._failures.append(response)

    def add_repo(self, full_name: str) -> None:
        with self.lock:
            self.repos.add(full_name)
            self.issues.setdefault(full_name, {})

    def route(self, method: str, template: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` and a path template like ``/repos/{owner}/{repo}/issues``."""
        regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"

        def register(handler: Handler) -> Handler:
            # Newest first: a test's own route overrides a built-in one for the same path.
            self.routes.insert(0, Route(method.upper(), re.compile(regex), handler, auth))
            return handler

        return register

    def issue(self, repository: str, number: int) -> dict[str, Any]:
        """The stored issue as the API would render it (for assertions)."""
        with self.lock:
            return self._render_issue(repository, self.issues[repository][number])

    # ---- dispatch

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(
            method=h.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        try:
            response = self._dispatch(request)
        except json.JSONDecodeError:
            response = error(400, "Problems parsing JSON")
        except Exception as exc:  # a bug in the fake must still answer, and loudly
            response = error(500, f"fake github error: {exc!r}")
        try:
            recorded_body = request.json()
        except ValueError:
            recorded_body = request.body
        with self.lock:
            self.requests.append(
                Recorded(request.method, request.path, request.query, request.headers, recorded_body, response.status)
            )
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode()
        h.send_response(response.status)
        if payload or response.status not in (204, 304):
            h.send_header("Content-Type", response.content_type)
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("X-GitHub-Api-Version-Selected", request.headers.get("x-github-api-version", "2022-11-28"))
        for name, value in response.headers.items():
            h.send_header(name, value)
        h.end_headers()
        if payload:
            h.wfile.write(payload)

    def _dispatch(self, request: Request) -> Response:
        route, params, allowed = None, {}, []
        for candidate in self.routes:
            match = candidate.pattern.match(request.path)
            if match:
                allowed.append(candidate.method)
                if candidate.method == request.method:
                    route, params = candidate, match.groupdict()
                    break
        if route is None:
            return error(404) if not allowed else error(405, "Method Not Allowed")
        request.params = params
        if route.auth:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
            with self.lock:
                if self._failures:
                    return self._failures.popleft()
        version = request.headers.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            return error(400, f"API version {version} is not supported.")
        if "repo" in params and f"{params['owner']}/{params['repo']}" not in self.repos:
            return error(404)
        with self.lock:
            return route.handler(request)

    def _check_auth(self, request: Request) -> Response | None:
        if self.token is None:
            return None
        header = request.headers.get("authorization")
        if not header:
            return error(401, "Requires authentication")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or value != self.token:
            return error(401, "Bad credentials")
        return None

    # ---- issues

    def _user(self, login: str = "triagebot") -> dict[str, Any]:
        return {
            "login": login,
            "id": abs(hash(login)) % 10_000_000,
            "node_id": f"U_{login}",
            "type": "User",
            "site_admin": False,
            "html_url": f"{self.html_base}/{login}",
        }

    def _label(self, repository: str, name: str) -> dict[str, Any]:
        key = (repository, name)
        if key not in self.labels:
            label_id = next(self._ids)
            self.labels[key] = {
                "id": label_id,
                "node_id": f"LA_{label_id}",
                "url": f"{self.url}/repos/{repository}/labels/{name}",
                "name": name,
                "color": "ededed",
                "default": False,
                "description": None,
            }
        return self.labels[key]

    def _label_names(self, raw: Any) -> list[str] | Response:
        if not isinstance(raw, list):
            return error(422, errors=[{"resource": "Issue", "code": "invalid", "field": "labels"}])
        names = []
        for item in raw:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip() or len(name) > 50:
                return error(422, errors=[{"resource": "Label", "code": "invalid", "field": "name", "value": name}])
            if name not in names:
                names.append(name)
        return names

    def _render_issue(self, repository: str, stored: dict[str, Any]) -> dict[str, Any]:
        number = stored["number"]
        api = f"{self.url}/repos/{repository}"
        assignees = [self._user(a) for a in stored["assignees"]]
        return {
            "url": f"{api}/issues/{number}",
            "repository_url": api,
            "labels_url": f"{api}/issues/{number}/labels{{/name}}",
            "comments_url": f"{api}/issues/{number}/comments",
            "events_url": f"{api}/issues/{number}/events",
            "html_url": f"{self.html_base}/{repository}/issues/{number}",
            "id": stored["id"],
            "node_id": f"I_kwDO{stored['id']}",
            "number": number,
            "title": stored["title"],
            "user": self._user(),
            "labels": [self._label(repository, n) for n in stored["labels"]],
            "state": stored["state"],
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": len(self.comments.get((repository, number), [])),
            "created_at": stored["created_at"],
            "updated_at": stored["updated_at"],
            "closed_at": stored["closed_at"],
            "author_association": "OWNER",
            "active_lock_reason": None,
            "body": stored["body"],
            "closed_by": self._user() if stored["state"] == "closed" else None,
            "timeline_url": f"{api}/issues/{number}/timeline",
            "performed_via_github_app": None,
            "state_reason": stored["state_reason"],
        }

    def _stored(self, request: Request) -> tuple[str, dict[str, Any]] | Response:
        repository = f"{request.params['owner']}/{request.params['repo']}"
        stored = self.issues[repository].get(int(request.params["number"]))
        return (repository, stored) if stored is not None else error(404)

    def _register_issue_routes(self) -> None:
        base = "/repos/{owner}/{repo}/issues"

        @self.route("POST", base)
        def create_issue(request: Request) -> Response:
            repository = f"{request.params['owner']}/{request.params['repo']}"
            data = request.json()
            if not isinstance(data, dict):
                return error(400, "Problems parsing JSON")
            title = data.get("title")
            if not isinstance(title, str | int) or not str(title).strip():
                return error(422, errors=[{"resource": "Issue", "code": "missing_field", "field": "title"}])
            labels = self._label_names(data.get("labels", []))
            if isinstance(labels, Response):
                return labels
            assignees = data.get("assignees") or ([data["assignee"]] if data.get("assignee") else [])
            number = max(self.issues[repository], default=0) + 1
            now = _now()
            self.issues[repository][number] = {
                "id": next(self._ids),
                "number": number,
                "title": str(title),
                "body": data.get("body"),
                "labels": labels,
                "assignees": [str(a) for a in assignees],
                "state": "open",
                "state_reason": None,
                "created_at": now,
                "updated_at": now,
                "closed_at": None,
            }
            issue = self._render_issue(repository, self.issues[repository][number])
            return Response(201, issue, headers={"Location": issue["url"]})

        @self.route("GET", base)
        def list_issues(request: Request) -> Response:
            repository = f"{request.params['owner']}/{request.params['repo']}"
            state = request.arg("state", "open")
            if state not in ("open", "closed", "all"):
                return error(422, errors=[{"resource": "Issue", "code": "invalid", "field": "state"}])
            wanted = [n.strip() for n in (request.arg("labels") or "").split(",") if n.strip()]
            rows = [
                i
                for i in self.issues[repository].values()
                if (state == "all" or i["state"] == state) and all(n in i["labels"] for n in wanted)
            ]
            sort_key = {"created": "created_at", "updated": "updated_at"}.get(request.arg("sort", "created") or "")
            rows.sort(key=lambda i: (i[sort_key or "created_at"], i["number"]))
            if request.arg("direction", "desc") == "desc":
                rows.reverse()
            per_page = max(1, min(100, int(request.arg("per_page", "30") or 30)))
            page = max(1, int(request.arg("page", "1") or 1))
            chunk = rows[(page - 1) * per_page : page * per_page]
            headers = {}
            if page * per_page < len(rows):
                query = {k: v[0] for k, v in request.query.items()}
                query.update(page=str(page + 1), per_page=str(per_page))
                last = (len(rows) + per_page - 1) // per_page
                nxt = f"{self.url}{request.path}?{urlencode(query)}"
                query["page"] = str(last)
                headers["Link"] = f'<{nxt}>; rel="next", <{self.url}{request.path}?{urlencode(query)}>; rel="last"'
            return Response(200, [self._render_issue(repository, i) for i in chunk], headers=headers)

        @self.route("GET", base + "/{number}")
        def get_issue(request: Request) -> Response:
            found = self._stored(request)
            if isinstance(found, Response):
                return found
            return Response(200, self._render_issue(*found))

        @self.route("PATCH", base + "/{number}")
        def update_issue(request: Request) -> Response:
            found = self._stored(request)
            if isinstance(found, Response):
                return found
            repository, stored = found
            data = request.json()
            if not isinstance(data, dict):
                return error(400, "Problems parsing JSON")
            if "title" in data:
                if not isinstance(data["title"], str) or not data["title"].strip():
                    return error(422, errors=[{"resource": "Issue", "code": "missing_field", "field": "title"}])
                stored["title"] = data["title"]
            if "body" in data:
                stored["body"] = data["body"]
            if "labels" in data:
                labels = self._label_names(data["labels"])
                if isinstance(labels, Response):
                    return labels
                stored["labels"] = labels
            if "assignees" in data:
                stored["assignees"] = [str(a) for a in data["assignees"] or []]
            reason = data.get("state_reason")
            if reason not in (None, "completed", "not_planned", "reopened", "duplicate"):
                return error(422, errors=[{"resource": "Issue", "code": "invalid", "field": "state_reason"}])
            state = data.get("state")
            if state is not None:
                if state not in ("open", "closed"):
                    return error(422, errors=[{"resource": "Issue", "code": "invalid", "field": "state"}])
                if state == "closed" and stored["state"] != "closed":
                    stored.update(state="closed", closed_at=_now(), state_reason=reason or "completed")
                elif state == "open" and stored["state"] != "open":
                    stored.update(state="open", closed_at=None, state_reason=reason or "reopened")
            stored["updated_at"] = _now()
            return Response(200, self._render_issue(repository, stored))

        @self.route("POST", base + "/{number}/comments")
        def create_comment(request: Request) -> Response:
            found = self._stored(request)
            if isinstance(found, Response):
                return found
            repository, stored = found
            data = request.json()
            if not isinstance(data, dict) or not isinstance(data.get("body"), str) or not data["body"]:
                return error(422, errors=[{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
            comment_id = next(self._ids)
            number = stored["number"]
            now = _now()
            comment = {
                "id": comment_id,
                "node_id": f"IC_{comment_id}",
                "url": f"{self.url}/repos/{repository}/issues/comments/{comment_id}",
                "html_url": f"{self.html_base}/{repository}/issues/{number}#issuecomment-{comment_id}",
                "body": data["body"],
                "user": self._user(),
                "created_at": now,
                "updated_at": now,
                "issue_url": f"{self.url}/repos/{repository}/issues/{number}",
                "author_association": "OWNER",
                "performed_via_github_app": None,
            }
            self.comments.setdefault((repository, number), []).append(comment)
            stored["updated_at"] = now
            return Response(201, comment, headers={"Location": comment["url"]})

        @self.route("GET", base + "/{number}/comments")
        def list_comments(request: Request) -> Response:
            found = self._stored(request)
            if isinstance(found, Response):
                return found
            repository, stored = found
            return Response(200, list(self.comments.get((repository, stored["number"]), [])))

    # ---- actions: workflow runs and artifacts

    def add_run(self, repository: str, run: dict[str, Any]) -> None:
        """Serve ``run`` (a workflow_run object, e.g. from a webhook payload) at
        ``GET …/actions/runs/{id}`` (latest attempt) and ``…/attempts/{n}``."""
        with self.lock:
            attempts = self.runs.setdefault((repository, str(run["id"])), [])
            attempts[:] = [a for a in attempts if a.get("run_attempt") != run.get("run_attempt")] + [run]
            attempts.sort(key=lambda a: int(a.get("run_attempt") or 1))

    def add_artifact(
        self, repository: str, run_id: int | str, name: str, data: bytes, *, expired: bool = False
    ) -> dict[str, Any]:
        """An artifact of the run whose download is ``data`` (a zip, or anything a test wants)."""
        with self.lock:
            artifact_id = next(self._ids)
            api = f"{self.url}/repos/{repository}/actions/artifacts/{artifact_id}"
            meta = {
                "id": artifact_id,
                "node_id": f"MDg6QXJ0aWZhY3Qx{artifact_id}",
                "name": name,
                "size_in_bytes": len(data),
                "url": api,
                "archive_download_url": f"{api}/zip",
                "expired": expired,
                "created_at": _now(),
                "expires_at": _now(),
                "updated_at": _now(),
                "workflow_run": {"id": int(run_id), "head_branch": "main", "head_sha": "0" * 40},
            }
            self.artifacts[artifact_id] = {"repository": repository, "run_id": str(run_id), "meta": meta, "data": data}
            return meta

    def _register_actions_routes(self) -> None:
        runs = "/repos/{owner}/{repo}/actions/runs/{run_id}"

        def attempts(request: Request) -> list[dict[str, Any]]:
            repository = f"{request.params['owner']}/{request.params['repo']}"
            return self.runs.get((repository, request.params["run_id"]), [])

        @self.route("GET", runs)
        def get_run(request: Request) -> Response:
            found = attempts(request)
            return Response(200, found[-1]) if found else error(404)

        @self.route("GET", runs + "/attempts/{attempt}")
        def get_run_attempt(request: Request) -> Response:
            found = [a for a in attempts(request) if str(a.get("run_attempt") or 1) == request.params["attempt"]]
            return Response(200, found[0]) if found else error(404)

        @self.route("GET", runs + "/artifacts")
        def list_run_artifacts(request: Request) -> Response:
            repository = f"{request.params['owner']}/{request.params['repo']}"
            rows = [
                a["meta"]
                for a in self.artifacts.values()
                if a["repository"] == repository and a["run_id"] == request.params["run_id"]
            ]
            if request.arg("name"):
                rows = [r for r in rows if r["name"] == request.arg("name")]
            per_page = max(1, min(100, int(request.arg("per_page", "30") or 30)))
            page = max(1, int(request.arg("page", "1") or 1))
            headers = {}
            if page * per_page < len(rows):
                query = {k: v[0] for k, v in request.query.items()}
                query.update(page=str(page + 1), per_page=str(per_page))
                headers["Link"] = f'<{self.url}{request.path}?{urlencode(query)}>; rel="next"'
            chunk = rows[(page - 1) * per_page : page * per_page]
            return Response(200, {"total_count": len(rows), "artifacts": chunk}, headers=headers)

        @self.route("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}")
        def download_artifact(request: Request) -> Response:
            stored = self.artifacts.get(int(request.params["artifact_id"]))
            if stored is None or request.params["archive_format"] != "zip":
                return error(404)
            if stored["meta"]["expired"]:
                return error(410, "Artifact has expired")
            token = f"{request.params['artifact_id']}-{next(self._ids)}"
            self.blobs[token] = int(request.params["artifact_id"])
            # Like GitHub: a short-lived pre-signed URL on the storage host (here: the same server).
            return Response(302, None, headers={"Location": f"{self.url}/_blobs/{token}?sig=presigned"})

        @self.route("GET", "/_blobs/{token}", auth=False)
        def blob(request: Request) -> Response:
            if "authorization" in request.headers:
                # Storage hosts reject a second credential next to the signed URL; a client that
                # forwards the GitHub token there would also leak it.
                return Response(
                    400, b"<Error><Code>InvalidAuthenticationInfo</Code></Error>", content_type="application/xml"
                )
            artifact_id = self.blobs.get(request.params["token"])
            if artifact_id is None:
                denied = b"<Error><Code>AuthenticationFailed</Code></Error>"
                return Response(403, denied, content_type="application/xml")
            return Response(200, self.artifacts[artifact_id]["data"], content_type="application/zip")

    def add_comparison(
        self, repository: str, base: str, head: str, commits: list[dict[str, Any]], files: list[str]
    ) -> None:
        """``GET …/compare/{base}...{head}``: ``commits`` as ``{"sha", "author", "message"}``."""
        with self.lock:
            self.comparisons[(repository, f"{base}...{head}")] = {"commits": commits, "files": files}

    def add_file(self, repository: str, path: str, text: str) -> None:
        with self.lock:
            self.files[(repository, path)] = text

    def _register_compare_routes(self) -> None:
        @self.route("GET", "/repos/{owner}/{repo}/compare/{basehead}")
        def compare(request: Request) -> Response:
            # GitHub paginates a comparison's commits (and its files with them), 250 commits and
            # 300 files at most per page, with a Link header to the next.
            repository = f"{request.params['owner']}/{request.params['repo']}"
            stored = self.comparisons.get((repository, request.params["basehead"]))
            if stored is None:
                return error(404)
            per_page = max(1, min(100, int(request.arg("per_page", "30") or 30)))
            page = max(1, int(request.arg("page", "1") or 1))
            commits, files = stored["commits"], stored["files"]
            headers = {}
            if page * per_page < max(len(commits), len(files)):
                query = {k: v[0] for k, v in request.query.items()}
                query.update(page=str(page + 1), per_page=str(per_page))
                headers["Link"] = f'<{self.url}{request.path}?{urlencode(query)}>; rel="next"'
            window = slice((page - 1) * per_page, page * per_page)
            body = {
                "status": "ahead",
                "ahead_by": len(commits),
                "total_commits": len(commits),
                "commits": [
                    {
                        "sha": c["sha"],
                        "commit": {"author": {"name": c["author"]}, "message": c["message"]},
                        "author": {"login": c["author"]},
                        "html_url": f"{self.html_base}/{repository}/commit/{c['sha']}",
                    }
                    for c in commits[window]
                ],
                "files": [{"filename": f, "status": "modified"} for f in files[window]],
            }
            return Response(200, body, headers=headers)

        def contents(request: Request) -> Response:
            repository = f"{request.params['owner']}/{request.params['repo']}"
            path = "/".join(request.params[k] for k in ("dir", "name") if k in request.params)
            text = self.files.get((repository, path))
            if text is None:
                return error(404)
            # GitHub tags every contents answer; asked again with the tag, an unchanged file is a
            # bodiless 304, which costs no rate limit.
            etag = f'W/"{hashlib.sha1(text.encode()).hexdigest()}"'
            if request.headers.get("if-none-match") == etag:
                return Response(304, None, headers={"ETag": etag})
            encoded = base64.b64encode(text.encode()).decode()
            body = {"type": "file", "encoding": "base64", "content": encoded, "path": path}
            return Response(200, body, headers={"ETag": etag})

        self.route("GET", "/repos/{owner}/{repo}/contents/{name}")(contents)
        self.route("GET", "/repos/{owner}/{repo}/contents/{dir}/{name}")(contents)


@contextmanager
def fake_github(**kwargs: Any) -> Iterator[FakeGitHub]:
    """``with fake_github() as gh: ...`` — a started server, stopped afterwards."""
    server = FakeGitHub(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()
