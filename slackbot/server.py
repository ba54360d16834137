"""Running the bot under uvicorn."""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

import uvicorn

from slackbot.app import build_asgi, slack_client_for
from slackbot.doctor import SlackAuthError, slack_auth
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


def _refuse(message: str) -> NoReturn:
    print(f"triagebot: {message}", file=sys.stderr)
    sys.exit(2)


def check_slack_at_start(settings: Settings, *, socket_mode: bool) -> str:
    """A wrong token must stop the bot at once: otherwise ingest answers 202, /readyz says ready
    and every card dies in the outbox with invalid_auth. Returns what /readyz shows for Slack."""
    try:
        auth = slack_auth(secret(settings.slack_bot_token), settings.slack_api_url)
    except SlackAuthError as exc:
        _refuse(str(exc))
    if not socket_mode and not secret(settings.slack_signing_secret):
        _refuse(
            "SLACK_SIGNING_SECRET is not set: copy the Signing Secret from the app's Basic Information page "
            "(or use --socket-mode with SLACK_APP_TOKEN, or --no-slack for ingest only)"
        )
    return auth.summary()


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    socket_mode: bool = False,
    no_slack: bool = False,
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
    configure_logging()
    if no_slack and socket_mode:
        _refuse("--no-slack and --socket-mode exclude each other")
    if socket_mode and not (secret(settings.slack_app_token) and secret(settings.slack_bot_token)):
        _refuse("Socket Mode needs SLACK_APP_TOKEN (xapp-…, scope connections:write) and SLACK_BOT_TOKEN")
    # Refuse to start on an invalid runbook or a template that cannot render, with the same
    # messages as `triagebot check`.
    problems = check_directory(settings.runbooks_dir)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        _refuse(f"refusing to start: {len(problems)} problem(s) in {settings.runbooks_dir}")
    if no_slack:
        # Explicitly ingest only: Slack effects wait in the outbox for a process with a token.
        settings = settings.model_copy(
            update={"slack_bot_token": None, "slack_signing_secret": None, "slack_app_token": None}
        )
        slack_status = "disabled (serve --no-slack)"
    else:
        slack_status = check_slack_at_start(settings, socket_mode=socket_mode)
    runtime = build_runtime(settings, slack=slack_client_for(settings))
    runtime.status["slack"] = slack_status
    # One uvicorn server either way: in Socket Mode the lifespan connects Bolt over the socket and
    # the HTTP routes (ingest, webhooks, health, metrics) stay on host:port.
    app = build_asgi(runtime, socket_mode=socket_mode)
    freeze_startup_objects()
    # X-Forwarded-For is believed only from these proxies; the client it names then decides who
    # is "loopback" for /api (see handlers/http/api.py and README "Trust boundaries").
    uvicorn.run(
        app, host=host, port=port, log_level="info", proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips
    )
