"""``POST /webhooks/alertmanager``: authenticate, parse the v4 payload, hand it to the service.

Alertmanager cannot sign bodies; its ``webhook_config`` sends a bearer token
(``http_config.authorization.credentials``), so that is the check here
(``TRIAGE_ALERTMANAGER_TOKEN``). Status codes follow Alertmanager's retry rule: it retries 5xx
and drops 4xx, so a bad payload or token is a 4xx (retrying cannot fix it) and a database
failure is a 5xx (it can).
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http.body import BodyTooLarge, loads_json, problem, read_capped, too_large
from handlers.http.ingest import describe_validation_error
from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.signing import same_secret
from slackbot.sources.alertmanager import AlertmanagerPayload, AlertmanagerService


def routes(runtime: Runtime) -> list[Route]:
    service = AlertmanagerService(runtime.playbooks, runtime.clock)

    async def webhook(request: Request) -> Response:
        try:
            body = await read_capped(request, runtime.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return too_large(exc)
        token = secret(runtime.settings.alertmanager_token)
        if token is None:
            return problem(503, "the Alertmanager webhook is disabled: set TRIAGE_ALERTMANAGER_TOKEN on the server")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not same_secret(given.strip(), token):
            return problem(401, "missing or wrong bearer token (Authorization: Bearer <TRIAGE_ALERTMANAGER_TOKEN>)")

        def parse() -> AlertmanagerPayload:
            return AlertmanagerPayload.model_validate(loads_json(body))

        try:
            payload = await asyncio.to_thread(parse)  # a body of up to the cap: off the loop
        except ValidationError as exc:
            return problem(400, describe_validation_error(exc))
        except ValueError as exc:
            return problem(400, str(exc))
        outcome = await asyncio.to_thread(service.handle, runtime.engine, payload)
        runtime.notify_committed()
        return JSONResponse(outcome.as_json(), status_code=200)

    return [Route("/webhooks/alertmanager", webhook, methods=["POST"])]
