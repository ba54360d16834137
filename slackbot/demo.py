"""``triagebot demo``: the main job on embedded defaults, shown as a responder would see it.

The local Slack emulator plays the workspace, the bot runs in HTTP mode on SQLite, and each
playbook's example (a report, a JUnit file, an Alertmanager alert) is sent the way its source
sends it; a scripted responder (the class's on-call owner) classifies its card. Nothing here is
faked inside the bot: it talks to the emulator over HTTP exactly as it would talk to Slack.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.config import Playbook, Playbooks
from slackbot.emulator import SlackEmulator
from slackbot.emulator.beads import fake_bd_executable, init_workspace
from slackbot.emulator.seeding import seed_workspace
from slackbot.emulator.state import Message
from slackbot.runtime import Runtime, build_runtime
from slackbot.serving import serve
from slackbot.settings import DEFAULT_RUNBOOKS, Settings
from slackbot.slack.terminal import render_text

RESPONDER = "U0CAROL"
ALERTMANAGER_TOKEN = secrets.token_hex(16)


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise click.ClickException(f"demo: timed out waiting for {what}")
        time.sleep(0.1)
    return value


class PortTaken(click.ClickException):
    """One line instead of a traceback: the usual cause is a demo still running."""


@contextlib.contextmanager
def _emulator(port: int) -> Iterator[SlackEmulator]:
    # Paced like the bot's lanes in the demo (TRIAGE_LANE_RATE below): a real workspace's 1 post a
    # second per channel would only make the demo wait.
    emulator = SlackEmulator(port=port, rate_limit_per_channel=20, burst=20)
    try:
        emulator.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortTaken(
            f"demo: port {port} is taken (another `triagebot demo --serve` still running?): "
            "stop it, or pass --port N (--port 0 picks a free port)"
        ) from None
    try:
        yield emulator
    finally:
        emulator.stop()


@contextlib.contextmanager
def running_demo(
    database_url: str, *, runbooks_dir: Path = DEFAULT_RUNBOOKS, port: int | None = None, emulator_port: int = 0
) -> Iterator[dict[str, Any]]:
    with _emulator(emulator_port) as emulator, tempfile.TemporaryDirectory(prefix="triagebot-demo-beads-") as home:
        # Always the bd double: it behaves like a supported bd for what the bot calls, so beads are
        # filed and flakes resolve, whatever bd (or none) the machine has.
        bd = fake_bd_executable()
        ingest_secret = secrets.token_hex(16)
        settings = Settings(
            TRIAGE_ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
            TRIAGE_LANE_RATE=20,  # the emulator is not Slack: no need to pace posts a second apart
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=emulator.signing_secret,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=database_url,
            TRIAGE_RUNBOOKS_DIR=runbooks_dir,
            TRIAGE_INGEST_SECRET=ingest_secret,
            TRIAGE_BD_BIN=bd,
            BEADS_DIR=init_workspace(Path(home), prefix="demo", bd=bd),
        )
        runtime = build_runtime(settings, slack=slack_client_for(settings))
        seed_workspace(emulator, runtime.playbooks)
        with serve(build_asgi(runtime), port=port) as bot_url:
            emulator.bot_url = bot_url + "/slack/events"
            yield {"emulator": emulator, "runtime": runtime, "bot_url": bot_url, "secret": ingest_secret}


@dataclass(frozen=True)
class Sample:
    """What a playbook's team would send the bot: a report, a JUnit file or an alert."""

    playbook: Playbook
    path: Path

    @property
    def kind(self) -> str:
        if self.path.suffix == ".xml":
            return "junit"
        return "alert" if self.path.stem == "alert" else "report"


def samples(playbooks: Playbooks) -> list[Sample]:
    """Each playbook's example (``<playbook>/examples/``); the default playbook may use the shared
    ``examples/nightly-report.json`` (seed 001's, from before playbooks)."""
    found = []
    for playbook in playbooks:
        folder = playbook.directory / "examples"
        candidates = sorted(folder.glob("*.json")) + sorted(folder.glob("*.xml")) if folder.is_dir() else []
        if not candidates and playbook is playbooks.default:
            candidates = [p for p in (playbooks.directory / "examples" / "nightly-report.json",) if p.is_file()]
        if candidates:
            found.append(Sample(playbook, candidates[0]))
    return found


def send_sample(sample: Sample, bot_url: str, ingest_secret: str) -> list[dict[str, Any]]:
    """Send it the way its source would; returns the incidents it opened or joined."""
    body = sample.path.read_bytes()
    if sample.kind == "alert":
        response = httpx.post(
            f"{bot_url}/webhooks/alertmanager",
            content=body,
            headers={"Authorization": f"Bearer {ALERTMANAGER_TOKEN}", "Content-Type": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        outcome = response.json()
        return [{"id": outcome["incident"], "playbook": sample.playbook.name}] if outcome.get("incident") else []
    params = None
    if sample.kind == "junit":
        suite = next(iter(sample.playbook.routing.suites), "full")
        params = {"repository": f"acme/{sample.playbook.name}", "runId": "demo-1", "suite": suite, "branch": "main"}
    result = send_report(body, bot_url, ingest_secret, params=params)
    return list(result["incidents"])


def responder_for(playbook: Playbook, incident_class: str | None) -> str:
    """Who classifies the demo card: the on-call owner of the class the bot suggests."""
    target = playbook.target("owner", incident_class or next(iter(playbook.classes)))
    return (target.dm_user if target else None) or RESPONDER


def show_playbook(emulator: SlackEmulator, runtime: Runtime, sample: Sample, bot_url: str, secret: str) -> str:
    """Send the sample, classify its first card as its owner would, and print what Slack shows."""
    playbook = sample.playbook
    click.echo(f"\n━━ {playbook.title} (playbook {playbook.name}) ━━")
    incidents = [i for i in send_sample(sample, bot_url, secret) if i.get("playbook") == playbook.name]
    if not incidents:
        raise click.ClickException(f"demo: {sample.path} opened no incident of the {playbook.name} playbook")
    click.echo(f"Sent {sample.path.relative_to(runtime.playbooks.directory)} -> {len(incidents)} incident(s)")
    incident = next((i for i in incidents if not i.get("contractViolation")), incidents[0])
    key = str(incident["id"])
    card = _wait(lambda: _card(emulator, key), 120, f"the card of {key}")
    channel = card.channel
    view = runtime.card_view(int(key.removeprefix("INC-")))
    if view.incident.failure_class is None:
        chosen = view.incident.suggested_class or next(iter(playbook.classes))
        person = responder_for(playbook, chosen)
        click.echo(f"Responder <@{person}> classifies {key} as {playbook.class_label(chosen)}…")
        emulator.select_option(person, channel, card.ts, "incident_classify", chosen)
        _wait(lambda: (c := _card(emulator, key)) is not None and c.edited >= 1, 30, "the card redraw")
    replies = _wait(lambda: emulator.replies(channel, card.ts), 30, "the thread")
    click.echo(f"\nThe card of {key} in #{emulator.workspace.channels[channel].name}:\n")
    click.echo(_compact(_card(emulator, key) or card))
    click.echo(f"\n  Thread ({len(replies)} replies):")
    for reply in replies:
        click.echo(f"    > {_first_line(reply)}")
    return channel


def _compact(message: Message) -> str:
    blocks = message.blocks or [{"type": "section", "text": {"type": "mrkdwn", "text": message.text or ""}}]
    text = render_text(blocks)
    return "\n".join(f"  {line}" for line in text.splitlines())


def _first_line(message: Message, width: int = 96) -> str:
    line = next((line.strip() for line in _compact(message).splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _card(emulator: SlackEmulator, key: str) -> Message | None:
    for channel in emulator.channel_ids():
        for message in emulator.messages(channel):
            header = (message.blocks or [{}])[0].get("text", {}).get("text", "") if message.blocks else ""
            if f"{key} " in header:
                return message
    return None


def _triagebot() -> str:
    """How to run this same triagebot from the user's shell."""
    beside = Path(sys.executable).parent / "triagebot"
    if beside.exists() and shutil.which("triagebot") != str(beside):
        return shlex.quote(str(beside))
    return "triagebot"


def send_command(runbooks_dir: Path, bot_url: str, secret: str, sent: list[Path]) -> str:
    """A ready-to-paste ``triagebot send`` of an example not sent yet (the same report twice
    changes nothing, so it would show no new card)."""
    examples = sorted((runbooks_dir / "examples").glob("*.json")) + sorted(runbooks_dir.glob("*/examples/*.json"))
    fresh = [p for p in examples if p not in sent and p.stem != "alert"] or examples
    report = fresh[0] if fresh else Path("report.json")
    return f"TRIAGE_INGEST_SECRET={secret} {_triagebot()} send {shlex.quote(str(report.resolve()))} --server {bot_url}"


def run_demo(
    *,
    database_url: str,
    runbooks_dir: Path = DEFAULT_RUNBOOKS,
    playbook: str | None = None,
    keep_serving: bool = False,
    port: int | None = None,
) -> None:
    if database_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    emulator_port = (8099 if port is None else port) if keep_serving else 0
    with running_demo(database_url, runbooks_dir=runbooks_dir, emulator_port=emulator_port) as demo:
        emulator: SlackEmulator = demo["emulator"]
        runtime: Runtime = demo["runtime"]
        chosen = samples(runtime.playbooks)
        if playbook is not None:
            if runtime.playbooks.named(playbook) is None:
                names = ", ".join(p.name for p in runtime.playbooks)
                raise click.ClickException(f"demo: no playbook {playbook} in {runbooks_dir} (there are: {names})")
            chosen = [s for s in chosen if s.playbook.name == playbook]
            if not chosen:
                raise click.ClickException(f"demo: the {playbook} playbook has no examples/ to send")
        channels = [show_playbook(emulator, runtime, sample, demo["bot_url"], demo["secret"]) for sample in chosen]
        if not keep_serving:
            click.echo("\nThe emulator and the bot stopped with this command. To keep them running, click the")
            click.echo(f"cards in a browser and send more reports:  {_triagebot()} demo --serve")
            return
        click.echo(f"\nSlack emulator (open it in a browser): {emulator.web_url}")
        for channel in dict.fromkeys(channels):
            click.echo(f"  #{emulator.workspace.channels[channel].name}: {emulator.web_url}channels/{channel}")
        click.echo(f"Bot: {demo['bot_url']}   ingest secret: {demo['secret']}")
        click.echo("Send another report (a new card appears in the browser):")
        click.echo(
            f"  {send_command(runtime.playbooks.directory, demo['bot_url'], demo['secret'], [s.path for s in chosen])}"
        )
        click.echo("In the page: click a card's buttons, type /triage list in a channel, switch users, open App Home.")
        click.echo("Serving until Ctrl-C.")
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
