"""Running the bot under uvicorn."""

from __future__ import annotations

import gc
import sys

import uvicorn

from slackbot.app import build_asgi, slack_client_for
from slackbot.logs import configure_logging
from slackbot.runtime import build_runtime
from slackbot.settings import Settings, secret
from slackbot.template_check import check_directory


def freeze_startup_objects() -> None:
    """Move everything built at startup (modules, the runbook, the routes, compiled queries) out of
    the garbage collector's reach. Full collections otherwise walk them all again and again while
    the bot serves: bench/ack_latency.py measured that in the p99 of acks under load."""
    gc.collect()
    gc.freeze()


def run_server(
    settings: Settings, *, host: str, port: int, socket_mode: bool = False, forwarded_allow_ips: str = "127.0.0.1"
) -> None:
    configure_logging()
    if socket_mode and not (secret(settings.slack_app_token) and secret(settings.slack_bot_token)):
        print(
            "triagebot: Socket Mode needs SLACK_APP_TOKEN (xapp-…, scope connections:write) and SLACK_BOT_TOKEN",
            file=sys.stderr,
        )
        sys.exit(2)
    # Refuse to start on an invalid runbook or a template that cannot render, with the same
    # messages as `triagebot check`.
    problems = check_directory(settings.runbooks_dir)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"triagebot: refusing to start: {len(problems)} problem(s) in {settings.runbooks_dir}", file=sys.stderr)
        sys.exit(2)
    runtime = build_runtime(settings, slack=slack_client_for(settings))
    # One uvicorn server either way: in Socket Mode the lifespan connects Bolt over the socket and
    # the HTTP routes (ingest, webhooks, health, metrics) stay on host:port.
    app = build_asgi(runtime, socket_mode=socket_mode)
    freeze_startup_objects()
    # X-Forwarded-For is believed only from these proxies; the client it names then decides who
    # is "loopback" for /api (see handlers/http/api.py and README "Trust boundaries").
    uvicorn.run(
        app, host=host, port=port, log_level="info", proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips
    )
