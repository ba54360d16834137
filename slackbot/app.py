"""The composition root: one ASGI app serving Slack, ingest, webhooks, API, health and metrics."""

from __future__ import annotations

from starlette.applications import Starlette

from handlers.http import api, health, ingest
from slackbot.core import Core


def build_asgi(core: Core) -> Starlette:
    routes = [*health.routes(core), *ingest.routes(core), *api.routes(core)]
    return Starlette(routes=routes)
