"""A reclassify storm over HTTP against the bot and the Slack emulator: what reaches Slack, and when
the channel's lane is empty again.

The bot runs as ``triagebot serve`` does (its own process, SQLite), the emulator in this process
with Slack's limit of about one post per second per channel. ``--cards`` incidents get a card
each in one channel; then for ``--seconds`` seconds ``--clients`` threads send signed classify
selects (each a different class from the card's last) as fast as the bot answers. Measured:

- drain: seconds from the storm's end until the channel's lane holds no pending or sending row;
- card edits: ``chat.update`` calls per card in any one second (at most 1 is the target) and the
  shortest gap between two edits of one card;
- thread posts: classification posts per card, against the classifications that stood (were not
  replaced) for longer than ``--stood`` seconds; and checklists posted.

``--baseline DIR`` runs the same storm against the bot from another checkout (e.g. the commit
before coalescing: ``git archive <commit> | tar -x -C DIR``) in the same run, side by side.
Written to docs/benchmarks.md (section ``storm``) unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if "--serve" not in sys.argv:  # the bot child imports the checkout its PYTHONPATH names (--baseline)
    sys.path.insert(0, str(REPO))

CHANNEL = "C0NIGHTLY"
RESPONDERS = ("U0CAROL", "U0DAN")
CLASSES = ("infra_ci", "harness_diagnostics", "algorithm_regression", "data_schema_drift", "flake_concurrency")
INGEST_SECRET = "storm-bench-ingest-secret"
POST_EVENT, CHECKLIST_EVENT = "triagebot_post", "triagebot_checklist"


def serve_bot(port: int) -> None:
    """The bot exactly as ``triagebot serve`` builds it (outbox worker and timers included)."""
    import uvicorn

    from slackbot.app import build_asgi, slack_client_for
    from slackbot.runtime import build_runtime
    from slackbot.settings import Settings

    settings = Settings()
    core = build_runtime(settings, slack=slack_client_for(settings))
    uvicorn.run(build_asgi(core), host="127.0.0.1", port=port, log_level="warning", lifespan="on")


@dataclass
class Result:
    label: str
    load: float = 0.0  # the machine's 1-minute load average when the storm started
    clicks: int = 0
    click_errors: int = 0
    storm_seconds: float = 0.0
    drain_seconds: float | None = None  # None: not empty within the limit
    left_in_lane: int = 0
    max_edits_per_card_second: int = 0
    min_edit_gap: float | None = None
    card_edits: int = 0
    classification_posts: int = 0
    stood: int = 0
    classifications: int = 0
    checklists: int = 0
    other_posts: int = 0
    cards: dict[str, dict[str, int]] = field(default_factory=dict)  # per incident
    slack_calls: int = 0


def start_bot(env: dict[str, str], port: int, log: Path, code: Path) -> subprocess.Popen[bytes]:
    import httpx

    from bench.ack_latency import wait_for

    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(port)],
        env={**env, "PYTHONPATH": str(code)},
        cwd=str(code),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, "the bot to answer /healthz")
    except RuntimeError:
        process.kill()
        raise
    return process


def waiting_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending') AND lane = ?", (CHANNEL,)
        ).fetchone()
    return int(row[0])


def classifications(db: Path) -> dict[int, list[float]]:
    """Each incident's classification times (epoch seconds), oldest first."""
    from datetime import datetime

    found: dict[int, list[float]] = defaultdict(list)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT incident_id, at FROM timeline WHERE kind IN ('classified', 'reclassified') ORDER BY id"
        ).fetchall()
    for incident_id, at in rows:
        moment = datetime.fromisoformat(str(at))
        if moment.tzinfo is None:
            from datetime import UTC

            moment = moment.replace(tzinfo=UTC)
        found[int(incident_id)].append(moment.timestamp())
    return found


def run_storm(label: str, code: Path, args: argparse.Namespace) -> Result:
    from bench.ack_latency import wait_for
    from slackbot.client import send_report
    from slackbot.config import load_playbooks
    from slackbot.emulator import SlackEmulator
    from slackbot.emulator.seeding import seed_workspace
    from slackbot.serving import free_port
    from slackbot.settings import DEFAULT_RUNBOOKS

    result = Result(label)
    playbooks = load_playbooks(DEFAULT_RUNBOOKS)
    with tempfile.TemporaryDirectory(prefix="storm-bench-") as tmp_dir, SlackEmulator() as slack:
        tmp = Path(tmp_dir)
        seed_workspace(slack, playbooks)
        db = tmp / "triage.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_"))}
        env.update(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            SLACK_API_URL=slack.base_url,
            TRIAGE_DATABASE_URL=f"sqlite:///{db}",
            TRIAGE_RUNBOOKS_DIR=str(code / "runbooks"),  # the templates that checkout renders
            TRIAGE_INGEST_SECRET=INGEST_SECRET,
            TRIAGE_BD_BIN=str(Path(sys.executable).parent / "triagebot-fake-bd"),
            BEADS_DIR=str(tmp / ".beads"),
            PAGERDUTY_EVENTS_URL="http://127.0.0.1:9/enqueue",
        )
        subprocess.run(
            [
                env["TRIAGE_BD_BIN"],
                "init",
                "--prefix",
                "tb",
                "--quiet",
                "--non-interactive",
                "--skip-hooks",
                "--skip-agents",
            ],
            env=env,
            check=False,
            capture_output=True,
        )
        port = free_port()
        bot = start_bot(env, port, tmp / "bot.log", code)
        try:
            slack.bot_url = f"http://127.0.0.1:{port}/slack/events"
            report = {
                "schemaVersion": 1,
                "run": {"repository": "acme/dispatch", "runId": "storm", "suite": "nightly", "branch": "main"},
                "results": [
                    {
                        "scenarioId": f"BID-{n:03d}",
                        "invariantId": "TENANT-001",
                        "status": "failed",
                        "message": f"failure {n}",
                        "testFile": "tests/integration/bidding.test.ts",
                        "testName": f"BID-{n:03d} storm",
                    }
                    for n in range(1, args.cards + 1)
                ],
            }
            send_report(json.dumps(report).encode(), f"http://127.0.0.1:{port}", INGEST_SECRET)
            cards = wait_for(
                lambda: (
                    (found := [m for m in slack.messages(CHANNEL) if m.blocks]) and len(found) >= args.cards and found
                ),
                "the cards",
            )
            wait_for(lambda: waiting_rows(db) == 0, "the opening posts to go out", timeout=120)
            edits_before = len(slack.calls("chat.update"))
            calls_before = len(slack.calls())

            stop = time.monotonic() + args.seconds
            lock = threading.Lock()
            last: dict[str, str] = {}

            def client(n: int) -> None:
                rng = random.Random(n)
                while time.monotonic() < stop:
                    card = rng.choice(cards)
                    with lock:
                        choice = rng.choice([c for c in CLASSES if c != last.get(card.ts)])
                        last[card.ts] = choice
                    actor = RESPONDERS[n % len(RESPONDERS)]
                    response = slack.select_option(actor, CHANNEL, card.ts, "incident_classify", choice)
                    with lock:
                        result.clicks += 1
                        result.click_errors += response.status != 200

            result.load = os.getloadavg()[0]
            started = time.monotonic()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            ended = time.monotonic()
            storm_end_epoch = time.time()
            result.storm_seconds = ended - started
            try:
                wait_for(lambda: waiting_rows(db) == 0, "the lane to drain", timeout=args.limit)
                result.drain_seconds = time.monotonic() - ended
            except RuntimeError:
                result.left_in_lane = waiting_rows(db)

            card_ts = {m.ts for m in cards}
            edits = [c for c in slack.calls("chat.update")[edits_before:] if c.body.get("ts") in card_ts]
            result.card_edits = len(edits)
            by_card: dict[str, list[float]] = defaultdict(list)
            for call in edits:
                by_card[str(call.body.get("ts"))].append(call.time)
            gaps: list[float] = []
            for times in by_card.values():
                times.sort()
                gaps.extend(b - a for a, b in itertools.pairwise(times))
                per_second = Counter(int(t) for t in times)
                # any sliding one-second window, not just calendar seconds
                window = max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)
                result.max_edits_per_card_second = max(result.max_edits_per_card_second, window, *per_second.values())
            result.min_edit_gap = min(gaps) if gaps else None

            posts = [
                c
                for c in slack.calls("chat.postMessage")[0:]
                if c.body.get("thread_ts") in card_ts and c.status == 200 and (c.response or {}).get("ok")
            ]
            posts = [c for c in posts if c.time >= started - 1]
            times_by_incident = classifications(db)
            incident_of = {m.ts: _incident(m) for m in cards}
            for ts in sorted(card_ts):
                incident = incident_of[ts]
                mine = [c for c in posts if c.body.get("thread_ts") == ts]
                text = [str(c.body.get("text") or "") for c in mine]
                classified = sum(1 for t in text if "classified this" in t or "Reclassified" in t)
                checklists = sum(1 for c in mine if _event(c) == CHECKLIST_EVENT)
                moments = [
                    t for t in times_by_incident.get(incident, []) if t >= storm_end_epoch - result.storm_seconds - 1
                ]
                stood = sum(
                    1
                    for a, b in itertools.zip_longest(moments, moments[1:], fillvalue=None)
                    if a is not None and ((b if b is not None else time.time()) - a) > args.stood
                )
                result.cards[f"INC-{incident}"] = {
                    "classifications": len(moments),
                    "stood": stood,
                    "posts": classified,
                    "checklists": checklists,
                }
                result.classification_posts += classified
                result.checklists += checklists
                result.other_posts += len(mine) - classified - checklists
                result.stood += stood
                result.classifications += len(moments)
            result.slack_calls = len(slack.calls()) - calls_before
        finally:
            bot.terminate()
            try:
                bot.wait(timeout=15)
            except subprocess.TimeoutExpired:
                bot.kill()
    return result


def _incident(message: Any) -> int:
    header = message.blocks[0]["text"]["text"]
    return int(header.split("INC-", 1)[1].split()[0].rstrip(":*_"))


def _event(call: Any) -> str | None:
    metadata = call.body.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    return (metadata or {}).get("event_type") if isinstance(metadata, dict) else None


def describe(result: Result, args: argparse.Namespace) -> str:
    drain = (
        f"{result.drain_seconds:.1f} s"
        if result.drain_seconds is not None
        else f"not within {args.limit:g} s ({result.left_in_lane} rows left)"
    )
    gap = f"{result.min_edit_gap:.2f} s" if result.min_edit_gap is not None else "-"
    posts_per_stood = result.classification_posts / result.stood if result.stood else float("nan")
    rate = result.clicks / max(result.storm_seconds, 1e-9)
    return (
        f"| {result.label} | {result.load:.1f} | {result.clicks} ({rate:.0f}/s) "
        f"| {drain} | {result.max_edits_per_card_second} | {gap} | {result.card_edits} "
        f"| {result.classifications} | {result.stood} | {result.classification_posts} ({posts_per_stood:.2f}) "
        f"| {result.checklists} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the storm (default 30)")
    parser.add_argument("--cards", type=int, default=8, help="cards in the channel (default 8)")
    parser.add_argument("--clients", type=int, default=4, help="threads clicking at once (default 4)")
    parser.add_argument(
        "--stood", type=float, default=2.0, help="a classification 'stood' past this (default 2 s: the bot's window)"
    )
    parser.add_argument("--limit", type=float, default=180.0, help="seconds to wait for the drain (default 180)")
    parser.add_argument("--baseline", type=Path, help="a checkout whose bot to storm first, for comparison")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    if args.serve:
        serve_bot(args.port)
        return 0
    runs = []
    if args.baseline:
        runs.append(run_storm(f"before (`{args.baseline.name}`)", args.baseline.resolve(), args))
    runs.append(run_storm("this checkout", REPO, args))
    lines = [
        "## Reclassify storm (bench/storm.py)",
        "",
        f"{args.seconds:g} s of signed classify selects over HTTP ({args.clients} clients, as fast as the bot "
        f"answers) on {args.cards} cards in one channel; the bot as `triagebot serve` runs it (SQLite, outbox "
        "lane 1 post/s), the Slack emulator with its per-channel rate limit. *Drain*: from the storm's end "
        "until the channel's lane is empty (target: within 60 s). *Edits/card/s*: most `chat.update` calls "
        "on one card in any one second (target: 1). *Stood*: classifications not replaced within "
        f"{args.stood:g} s; *posts*: classification posts in the threads, and per stood classification "
        "(target: at most 1). *Clicks* is how fast the bot answered on a shared machine (*load*: the 1-minute load "
        "average when the storm began); ack speed is bench/ack_latency.py's to measure, not this bench's.",
        "",
        "| bot | load | clicks | drain | edits/card/s | shortest edit gap | card edits | classifications | stood "
        "| posts (per stood) | checklists |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(describe(r, args) for r in runs),
    ]
    mine = runs[-1]
    lines += [
        "",
        "This checkout against the targets: lane empty within 60 s of the storm's end: "
        + ("yes" if mine.drain_seconds is not None and mine.drain_seconds <= 60 else "**no**")
        + f"; at most one card edit per card per second: {'yes' if mine.max_edits_per_card_second <= 1 else '**no**'}"
        + "; on every card at most one classification post per classification that stood: "
        + ("yes" if all(c["posts"] <= max(c["stood"], 1) for c in mine.cards.values()) else "**no**")
        + ". A classification replaced within the coalescing window (TRIAGE_COALESCE_SECONDS, 2 s) or while "
        'its post still waited in the lane is named in the next post ("classified X, then Y") instead of '
        "posted; its checklist is dropped.",
    ]
    text = "\n".join(lines)
    print(text)
    for r in runs:
        print(r.label, f"{r.slack_calls} Slack calls from the storm's start", json.dumps(r.cards))
    if not args.no_doc:
        from bench.benchdoc import update_section

        update_section("storm", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
