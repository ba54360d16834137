"""``GET /api/incidents``: open to loopback callers, bearer token (TRIAGE_API_TOKEN) otherwise."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http.body import problem
from slackbot.db.engine import session_scope
from slackbot.reads.queries import QueryError, incident_json, list_incidents
from slackbot.runtime import Runtime
from slackbot.settings import secret


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def routes(runtime: Runtime) -> list[Route]:
    async def incidents(request: Request) -> Response:
        if not _is_loopback(request):
            token = secret(runtime.settings.api_token)
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not token or not hmac.compare_digest(given, token):
                return problem(401, "a bearer token (TRIAGE_API_TOKEN) is required from non-loopback addresses")
        status = request.query_params.get("status")
        failure_class = request.query_params.get("class")
        known = sorted({key for playbook in runtime.playbooks for key in playbook.classes})
        if failure_class and failure_class not in known:
            return problem(400, f"class must be one of {', '.join(known)}")

        def work() -> list[dict[str, object]]:
            with session_scope(runtime.engine) as session:
                return [incident_json(i) for i in list_incidents(session, status=status, failure_class=failure_class)]

        try:
            rows = await asyncio.to_thread(work)
        except QueryError as exc:
            return problem(400, str(exc))
        return JSONResponse({"incidents": rows, "count": len(rows)})

    return [Route("/api/incidents", incidents, methods=["GET"])]
