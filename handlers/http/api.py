"""``GET /api/incidents``: newest first, in pages (``limit``, ``cursor``).

Who may read it (README "Trust boundaries"):

* with ``TRIAGE_API_TOKEN`` set, every caller sends ``Authorization: Bearer <token>``, loopback
  included: behind a reverse proxy on the same host every client's connection comes from
  127.0.0.1, and a proxy that does not set ``X-Forwarded-For`` would otherwise open the API to
  the internet;
* without it, only loopback callers, where "loopback" is the client address uvicorn reports:
  the socket's peer, or the ``X-Forwarded-For`` client when the peer is a trusted proxy
  (``triagebot serve --forwarded-allow-ips``, 127.0.0.1 by default). No other header counts.
"""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http.body import problem
from slackbot.reads.paging import incidents_page, parse_limit
from slackbot.reads.queries import QueryError, incident_json
from slackbot.reads.snapshot import read_session
from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.signing import same_secret

BEARER_HELP = "send Authorization: Bearer <token> (the server's TRIAGE_API_TOKEN)"


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(request: Request, token: str | None) -> str | None:
    """Why this caller may not read the API, or None."""
    if not token:
        if _is_loopback(request):
            return None
        return "the API is open to loopback callers only: set TRIAGE_API_TOKEN on the server and " + BEARER_HELP
    header = request.headers.get("authorization")
    if not header:
        return "missing Authorization header: " + BEARER_HELP
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "the Authorization header must use the Bearer scheme: " + BEARER_HELP
    if not same_secret(given.strip(), token):
        return "wrong bearer token: " + BEARER_HELP
    return None


def routes(runtime: Runtime) -> list[Route]:
    async def incidents(request: Request) -> Response:
        refused = refusal(request, secret(runtime.settings.api_token))
        if refused is not None:
            return problem(401, refused)
        params = request.query_params
        status = params.get("status")
        failure_class = params.get("class")
        cursor = params.get("cursor")
        known = sorted({key for playbook in runtime.playbooks for key in playbook.classes})
        if failure_class and failure_class not in known:
            return problem(400, f"class must be one of {', '.join(known)}")
        try:
            limit = parse_limit(params.get("limit"))
        except QueryError as exc:
            return problem(400, str(exc))

        def work() -> tuple[list[dict[str, object]], str | None]:
            with read_session(runtime.engine) as session:
                page = incidents_page(session, status=status, failure_class=failure_class, limit=limit, cursor=cursor)
                return [incident_json(i) for i in page.incidents], page.next_cursor

        try:
            rows, next_cursor = await asyncio.to_thread(work)
        except QueryError as exc:
            return problem(400, str(exc))
        headers = {}
        if next_cursor is not None:
            query = {k: v for k, v in (("status", status), ("class", failure_class)) if v}
            url = f"{request.url.path}?{urlencode({**query, 'limit': limit, 'cursor': next_cursor})}"
            headers["Link"] = f'<{url}>; rel="next"'
        return JSONResponse({"incidents": rows, "count": len(rows), "next": next_cursor}, headers=headers)

    return [Route("/api/incidents", incidents, methods=["GET"])]
