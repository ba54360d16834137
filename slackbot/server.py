"""Running the bot under uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from slackbot.app import build_asgi, slack_client_for
from slackbot.config import RunbookError
from slackbot.core import build_core
from slackbot.settings import Settings


def run_server(settings: Settings, *, host: str, port: int, socket_mode: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        core = build_core(settings, slack=slack_client_for(settings))
    except RunbookError as exc:
        # Refuse to start on an invalid runbook, with the same messages as `triagebot check`.
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(
            f"triagebot: refusing to start: {len(exc.problems)} problem(s) in {settings.runbooks_dir}",
            file=sys.stderr,
        )
        sys.exit(2)
    if socket_mode:
        print("triagebot: Socket Mode arrives with the Slack surface; use HTTP mode for now", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(build_asgi(core), host=host, port=port, log_level="info")
