"""Bolt's Starlette adapter, reading the request body itself.

Bolt parses the body while it builds a request, before any middleware or error handler: bad
JSON in ``payload``, a JSON list, or a user that is a number raised out of the adapter as a 500.
Its parser also reads any form body containing the word "payload" as an interaction, so
``/triage show payload`` reached no listener. Here the body is parsed and its envelope checked
first (``handlers.slack.payloads``); a body nobody can act on is a 400 naming the problem, and
Bolt receives the parsed body. The signature was checked by the route before this runs.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler, to_starlette_response
from slack_bolt.async_app import AsyncBoltRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from handlers.slack.payloads import BadPayload, envelope_problem, parse_body

log = logging.getLogger(__name__)


def refused(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


class SlackRequests(AsyncSlackRequestHandler):
    async def handle(self, req: Request, addition_context_properties: dict[str, Any] | None = None) -> Response:
        if req.method != "POST":
            return await super().handle(req, addition_context_properties)
        raw = await req.body()
        try:
            body = parse_body(raw, req.headers.get("content-type"))
        except BadPayload as exc:
            log.info("refused a Slack request: %s", exc)  # never the body: it may be anything
            return refused(str(exc))
        why = envelope_problem(body)
        if why is not None:
            log.info("refused a Slack request: %s", why)
            return refused(f"malformed Slack request: {why}")
        try:
            # A dict body is taken as parsed (Bolt does so for Socket Mode); then the request is
            # made an HTTP one again. The route checked its signature (Bolt does not again).
            request = AsyncBoltRequest(body=body, query=req.query_params, headers=req.headers, mode="socket_mode")  # type: ignore[arg-type]
        except Exception as exc:  # any shape Bolt still trips over is the sender's, never a 500
            log.info("refused a Slack request Bolt cannot read: %s", type(exc).__name__)
            return refused("malformed Slack request")
        request.raw_body, request.mode = raw.decode("utf-8"), "http"
        if addition_context_properties:
            for key, value in addition_context_properties.items():
                request.context[key] = value
        return to_starlette_response(await self.app.async_dispatch(request))
