"""``triagebot demo``: the main job on embedded defaults, shown as a responder would see it.

The local Slack emulator plays the workspace, the bot runs in HTTP mode on SQLite, the sample
report is sent the way CI sends it, and a scripted responder classifies one card. Nothing here is
faked inside the bot: it talks to the emulator over HTTP exactly as it would talk to Slack.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import DEFAULT_RUNBOOKS, Settings

SAMPLE = DEFAULT_RUNBOOKS / "examples" / "nightly-report.json"
RESPONDER = "U0CAROL"


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise click.ClickException(f"demo: timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_demo(
    database_url: str, *, runbooks_dir: Path = DEFAULT_RUNBOOKS, port: int | None = None, emulator_port: int = 0
) -> Iterator[dict[str, Any]]:
    emulator = SlackEmulator(port=emulator_port).start()
    try:
        ingest_secret = secrets.token_hex(16)
        settings = Settings(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=emulator.signing_secret,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=database_url,
            TRIAGE_RUNBOOKS_DIR=runbooks_dir,
            TRIAGE_INGEST_SECRET=ingest_secret,
        )
        runtime = build_runtime(settings, slack=slack_client_for(settings))
        seed_workspace(emulator, runtime.playbooks)
        with serve(build_asgi(runtime), port=port) as bot_url:
            emulator.bot_url = bot_url + "/slack/events"
            yield {"emulator": emulator, "runtime": runtime, "bot_url": bot_url, "secret": ingest_secret}
    finally:
        emulator.stop()


def run_demo(
    *, database_url: str, runbooks_dir: Path = DEFAULT_RUNBOOKS, playbook: str | None = None, keep_serving: bool = False
) -> None:
    if database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    with running_demo(
        database_url,
        runbooks_dir=runbooks_dir,
        port=3000 if keep_serving else None,
        emulator_port=8099 if keep_serving else 0,
    ) as demo:
        emulator: SlackEmulator = demo["emulator"]
        runtime = demo["runtime"]
        click.echo(f"Slack emulator: {emulator.web_url}   bot: {demo['bot_url']}")
        result = send_report(SAMPLE.read_bytes(), demo["bot_url"], demo["secret"])
        click.echo(
            f"CI sent {SAMPLE.name}: {result['failures']} failing of {result['results']} results -> "
            f"{len(result['incidents'])} incident(s)\n"
        )
        channel = runtime.playbooks.default.channel_for_suite("nightly")
        expected = len(result["incidents"])
        click.echo(f"Posting {expected} cards (Slack allows about one post per second per channel)…")
        _wait(lambda: len(emulator.messages(channel)) >= expected + (1 if result["multiPrefix"] else 0), 120, "cards")
        card = next(m for m in emulator.messages(channel) if any(b.get("type") == "actions" for b in m.blocks))
        incident = next(i for i in result["incidents"] if not i["contractViolation"])
        card = next(
            m
            for m in emulator.messages(channel)
            if m.blocks and incident["id"] in str(m.blocks[0].get("text", {}).get("text", ""))
        )
        click.echo(f"Responder <@{RESPONDER}> classifies {incident['id']} as Algorithm regression…")
        emulator.select_option(RESPONDER, channel, card.ts, "incident_classify", "algorithm_regression")
        _wait(lambda: len(emulator.replies(channel, card.ts)) >= 1, 30, "the classification thread post")
        _wait(
            lambda: emulator.messages(channel)[[m.ts for m in emulator.messages(channel)].index(card.ts)].edited >= 1,
            30,
            "the card redraw",
        )
        click.echo("\nThe channel, one line per message:\n" + emulator.summary(channel))
        click.echo(f"The card of {incident['id']} after the classification, with its status thread:\n")
        click.echo(emulator.thread_transcript(channel, card.ts))
        click.echo(f"\nOpen the channel in a browser: {emulator.web_url}channels/{channel}")
        if keep_serving:
            click.echo("Serving until Ctrl-C. Try /triage from the emulator or send more reports.")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
