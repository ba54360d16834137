"""History at scale: the read paths with 100,000 incidents and 1,000,000 occurrences.

Target (issue 17): p99 under 100 ms for ``/triage list``, App Home, ``/triage stats`` and
``GET /api/incidents?status=open`` on SQLite and PostgreSQL, and the bot's RSS under 250 MB.

What runs, for each database in one run:

- ``fill``: a database migrated by the shipped migrations, filled with raw ``executemany``
  (SQLite) or ``COPY`` (PostgreSQL) in one transaction: incidents spread over 400 days (a few
  hundred open, most recent; the rest resolved), every playbook's classes, channels, 25 assignees,
  occurrences skewed as in life (most incidents seen a few times, some thousands of times), runs,
  and the timeline rows the bot would have written (created, classified, sometimes reclassified,
  acknowledged, assigned, seen again, resolved). PostgreSQL is ANALYZEd afterwards, as its
  autovacuum would; SQLite is not (the bot never runs ANALYZE).
- the bot, built as ``triagebot serve --no-slack`` builds it (runtime, ASGI app, lifespan, outbox
  worker, scheduler), in a process of its own under uvicorn. ``/api/incidents`` is its own route.
  The three Slack paths are answered through ``/bench/*`` routes added in front of the app that run
  exactly the work the Slack handlers run after the ack (the same read and render functions, in a
  worker thread): the Slack round trip itself is bench/ack_latency.py's business.
- each path is requested ``--requests`` times after a warm-up, one at a time, over loopback;
  p50/p99 are of the client's wall time. The bot's RSS is read from /proc after all of them.

Usage: ``.venv/bin/python bench/history.py [--incidents 100000] [--occurrences 1000000]
[--only sqlite|postgresql] [--requests 200] [--no-doc] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "U00000001"
USERS = [f"U{n:08d}" for n in range(1, 26)]
PATHS = (
    "/bench/list",
    "/bench/home",
    "/bench/stats-cold",
    "/bench/stats-changed",
    "/bench/stats",
    "/api/incidents?status=open",
)
LABELS = {
    "/bench/list": "`/triage list`",
    "/bench/home": "App Home",
    "/bench/stats-cold": "`/triage stats`, nothing cached (the month read whole: after start-up the refresher's work)",
    "/bench/stats-changed": "`/triage stats`, after a change",
    "/bench/stats": "`/triage stats`, repeated",
    "/api/incidents?status=open": "`GET /api/incidents?status=open`",
}


# -- filling a database -------------------------------------------------------------------------


@dataclass(frozen=True)
class Filled:
    incidents: int
    open: int
    occurrences: int
    timeline: int
    runs: int
    seconds: float


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's own storage format: comparisons with bound parameters are string comparisons.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class _Writer:
    def __init__(self, engine: Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        self.raw = engine.raw_connection()
        if self.sqlite:
            self.raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[attr-defined]
            self.raw.execute("BEGIN")  # type: ignore[attr-defined]

    def time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        return _sqlite_time(value) if self.sqlite else value

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        names = ", ".join(columns)
        count = 0
        cursor = self.raw.cursor()
        if self.sqlite:
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= 50_000:
                    cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", batch)
                    count += len(batch)
                    batch = []
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", batch)
                count += len(batch)
            return count
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
                count += 1
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        return count

    def finish(self) -> None:
        if self.sqlite:
            self.raw.execute("COMMIT")  # type: ignore[attr-defined]
            self.raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[attr-defined]
        else:
            self.raw.commit()
            # What autovacuum does about a minute after a million inserts: done here, so it does
            # not run while the paths are measured (it did: the 167 ms outlier of /api/incidents),
            # and so the planner has statistics. On the driver's connection: the pool's proxy
            # takes ``autocommit = True`` as its own attribute, and the ANALYZE that ran in the
            # transaction it left open was rolled back at close.
            driver = self.raw.driver_connection
            driver.autocommit = True  # type: ignore[union-attr]
            driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
            driver.autocommit = False  # type: ignore[union-attr]
        self.raw.close()


def _occurrence_counts(rng: random.Random, incidents: int, occurrences: int) -> list[int]:
    """Most incidents seen a few times, a few seen thousands of times; the sum is exact."""
    weights = [rng.paretovariate(1.3) for _ in range(incidents)]
    spare = occurrences - incidents
    scale = spare / sum(weights)
    counts = [1 + min(int(w * scale), 20_000) for w in weights]
    short = occurrences - sum(counts)
    while short > 0:
        i = rng.randrange(incidents)
        counts[i] += 1
        short -= 1
    while short < 0:
        i = rng.randrange(incidents)
        if counts[i] > 1:
            counts[i] -= 1
            short += 1
    return counts


def fill(
    engine: Engine,
    *,
    incidents: int = 100_000,
    occurrences: int = 1_000_000,
    open_incidents: int = 300,
    now: datetime | None = None,
    seed: int = 17,
    days: int = 400,
) -> Filled:
    """Fill a migrated, empty database. ``now`` is naive UTC, the bot's clock at measuring time."""
    from slackbot.config import load_playbooks
    from slackbot.settings import DEFAULT_RUNBOOKS

    started = time.perf_counter()
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    playbooks = list(load_playbooks(DEFAULT_RUNBOOKS))
    weights = [8, 1, 1, 1][: len(playbooks)] + [1] * max(0, len(playbooks) - 4)
    channels = ["C0SMOKE", "C0NIGHTLY", "C0FULL", "C0CONTRACT", "C0LIBRARY", "C0OPSALERTS"]
    severities = ["SEV-1", "SEV-2", "SEV-3", "SEV-3", "SEV-3", "SEV-4"]
    writer = _Writer(engine)
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()

    runs = max(1, incidents // 5)
    run_times = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(runs))
    writer.insert(
        "runs",
        ("id", "provider", "repository", "run_id", "run_attempt", "suite", "branch", "received_at",
         "results_total", "results_failed", "results_passed", "scenario_prefixes", "multi_prefix"),
        (
            (n + 1, "github", "acme/dispatch", str(1_000_000 + n), 1, "nightly", "main", writer.time(at),
             500, 50, 450, "[]", writer.flag(False))
            for n, at in enumerate(run_times)
        ),
    )  # fmt: skip

    created = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(incidents))
    # The open ones: mostly the last fortnight's, a few old ones nobody closed.
    recent = [i for i, at in enumerate(created) if at > now - timedelta(days=14)]
    open_set = set(rng.sample(recent, min(len(recent), open_incidents * 5 // 6)))
    while len(open_set) < min(open_incidents, incidents):
        open_set.add(rng.randrange(incidents))
    counts = _occurrence_counts(rng, incidents, occurrences)

    incident_rows: list[tuple[Any, ...]] = []
    timeline_rows: list[tuple[Any, ...]] = []
    spans: list[tuple[datetime, datetime]] = []
    event_id = 0

    def event(incident_id: int, at: datetime, actor: str, source: str, kind: str, message: str) -> None:
        nonlocal event_id
        event_id += 1
        timeline_rows.append((event_id, incident_id, writer.time(at), actor, source, kind, message, "{}"))

    for index, opened in enumerate(created):
        ident = index + 1
        playbook = rng.choices(playbooks, weights)[0]
        classes = list(playbook.classes)
        is_open = index in open_set
        failure_class = rng.choice(classes) if (not is_open or rng.random() < 0.7) and rng.random() > 0.02 else None
        fingerprint = f"{ident:08x}{rng.getrandbits(64):016x}"
        classified = opened + timedelta(seconds=rng.expovariate(1 / 900)) if failure_class else None
        acknowledged = opened + timedelta(seconds=rng.expovariate(1 / 600)) if rng.random() < 0.8 else None
        resolved = None if is_open else min(now, opened + timedelta(seconds=rng.expovariate(1 / 172_800) + 60))
        last_seen = opened + (((resolved or now) - opened) * rng.random() if counts[index] > 1 else timedelta())
        assignee = rng.choice(USERS) if rng.random() < 0.7 else None
        first_run = min(runs, 1 + int((opened - start).total_seconds() / span * runs))
        scenario = f"{rng.choice(['SCH', 'BID', 'NOS', 'HLT', 'API'])}-{rng.randrange(1000):03d}"
        invariant = f"{rng.choice(['TENANT', 'IDEMP', 'NOTIF', 'STATE'])}-{rng.randrange(100):03d}"
        reclassified = classified is not None and rng.random() < 0.1
        incident_rows.append(
            (ident, fingerprint, fingerprint if is_open else None, playbook.name, "acme/dispatch", scenario,
             invariant, f"{scenario} {invariant}", f"tests/integration/{scenario[:3].lower()}.test.ts",
             f"expected 1 row for org-{ident % 40}, found {ident % 7 + 2}", "{}", "nightly",
             rng.choice(channels), "open" if is_open else "resolved",
             playbook.milestones[-1].key if resolved and playbook.milestones else None, failure_class,
             "human" if failure_class else None, rng.choice(severities), "default", assignee,
             writer.flag(False), writer.flag(False), counts[index], writer.time(opened),
             writer.time(last_seen), first_run, first_run, writer.time(opened + timedelta(minutes=20)),
             writer.time(classified), writer.time(acknowledged), writer.time(resolved), 0,
             f"{opened.timestamp():.6f}", "none", 3, writer.flag(False), writer.time(opened),
             writer.time(resolved or classified or opened))
        )  # fmt: skip
        spans.append((opened, last_seen))
        event(ident, opened, "ingest", "ingest", "created", f"Opened from run {1_000_000 + first_run}")
        if classified:
            who = rng.choice(USERS)
            event(ident, classified, who, "button", "classified", f"Classified {failure_class} by {who}")
            if reclassified:
                event(ident, classified + timedelta(minutes=3), who, "button", "reclassified",
                      f"Reclassified {failure_class} by {who}")  # fmt: skip
        if acknowledged:
            event(ident, acknowledged, assignee or USERS[0], "button", "acknowledged", "Acknowledged")
        if assignee:
            event(ident, opened + timedelta(minutes=1), assignee, "command", "assigned", f"Assigned to {assignee}")
        if counts[index] > 1:
            event(ident, last_seen, "ingest", "ingest", "occurrence", f"Seen again ({counts[index]} in all)")
        if resolved:
            event(ident, resolved, assignee or USERS[1], "command", "resolved", "Resolved: fixed in main")

    incident_columns = (
        "id", "fingerprint", "open_key", "playbook", "repository", "scenario_id", "invariant_id",
        "test_identity", "test_file", "symptom", "key_entity_ids", "suite", "channel", "status", "milestone",
        "failure_class", "class_source", "severity", "severity_source", "assignee", "contract_violation",
        "multi_prefix", "occurrence_count", "first_seen", "last_seen", "first_run_pk", "last_run_pk",
        "classify_deadline", "classified_at", "acknowledged_at", "resolved_at", "escalation_level", "card_ts",
        "bead_state", "revision", "card_details", "created_at", "updated_at",
    )  # fmt: skip
    writer.insert("incidents", incident_columns, incident_rows)
    timeline = writer.insert(
        "timeline", ("id", "incident_id", "at", "actor", "source", "kind", "message", "data"), timeline_rows
    )

    def occurrence_rows() -> Iterator[tuple[Any, ...]]:
        ident = 0
        for index, count in enumerate(counts):
            opened, last = spans[index]
            step = (last - opened) / count
            first_run = min(runs, 1 + int((opened - start).total_seconds() / span * runs))
            for k in range(count):
                ident += 1
                at = opened + step * k
                yield (ident, index + 1, min(runs, first_run + k // 50), f"{index + 1}:{k}", "failed",
                       f"case {k}", f"expected 1 row for org-{k % 40}, found {k % 7 + 2}", "{}", "[]",
                       writer.time(at))  # fmt: skip

    written = writer.insert(
        "occurrences",
        ("id", "incident_id", "run_pk", "occurrence_key", "status", "test_name", "message", "key_entity_ids",
         "evidence", "occurred_at"),
        occurrence_rows(),
    )  # fmt: skip
    writer.finish()
    return Filled(incidents, len(open_set), written, timeline, runs, time.perf_counter() - started)


# -- the bot, with the Slack paths' work behind /bench/* ------------------------------------------


def serve(port: int) -> None:
    """``triagebot serve --no-slack``'s app, plus routes that run the Slack handlers' read work."""
    import asyncio

    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from slackbot.app import build_asgi, slack_client_for
    from slackbot.runtime import build_runtime
    from slackbot.server import freeze_startup_objects
    from slackbot.settings import Settings

    settings = Settings().model_copy(
        update={"slack_bot_token": None, "slack_signing_secret": None, "slack_app_token": None}
    )
    runtime = build_runtime(settings, slack=slack_client_for(settings))
    app = build_asgi(runtime)
    freeze_startup_objects()
    work = {
        "/bench/list": triage_list,
        "/bench/home": app_home,
        "/bench/stats-cold": triage_stats_cold,
        "/bench/stats-changed": triage_stats_changed,
        "/bench/stats": triage_stats,
    }

    async def bench_route(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        answer = await asyncio.to_thread(work[request.url.path], runtime)
        response: Response = JSONResponse({"size": len(json.dumps(answer))})
        await response(scope, receive, send)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in work:
            await bench_route(scope, receive, send)
        else:
            await app(scope, receive, send)

    uvicorn.run(outer, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


def triage_list(runtime: Any) -> str:
    """What ``/triage list`` runs after its ack (handlers/slack/commands.py ``list_``)."""
    from slackbot.db.engine import session_scope
    from slackbot.reads.queries import first_incidents
    from slackbot.slack import replies

    with session_scope(runtime.engine) as session:
        rows = first_incidents(session, replies.LIST_LINES, status="open")
        return replies.incident_list("Open incidents", rows.incidents, runtime.playbooks, total=rows.total)


def app_home(runtime: Any) -> dict[str, Any]:
    """What ``app_home_opened`` runs before ``views.publish`` (handlers/slack/events.py)."""
    from slackbot.db.engine import session_scope
    from slackbot.reads.home import load_home
    from slackbot.slack.home import render_home_view

    with session_scope(runtime.engine) as session:
        return render_home_view(load_home(session, BENCH_USER, runtime.clock.now()), runtime.playbooks)


def triage_stats(runtime: Any) -> str:
    """What ``/triage stats`` runs (handlers/slack/commands.py ``stats``): the windows per class and
    the flakiest tests (slackbot/history/flaky.py)."""
    from slackbot.incidents.digests import stats_answer

    return stats_answer(runtime.engine, runtime.playbooks, runtime.clock)


def triage_stats_changed(runtime: Any) -> str:
    """``/triage stats`` right after a change: one of the month's incidents seen again (the
    timeline row ingest writes) in its own transaction, included in the time."""
    from sqlalchemy import func, select

    from slackbot.db.engine import session_scope
    from slackbot.db.models import Incident, TimelineEvent

    with session_scope(runtime.engine) as session:
        newest = session.execute(select(func.max(Incident.id))).scalar_one()
        incident_id = newest - random.randrange(min(newest, 5_000))
        now = runtime.clock.now()
        session.add(TimelineEvent(incident_id=incident_id, at=now, actor="ingest", source="ingest", kind="occurrence",
                                  message="Seen again (bench)"))  # fmt: skip
    return triage_stats(runtime)


def triage_stats_cold(runtime: Any) -> str:
    """``/triage stats`` with nothing cached: the windows read from the database whole. A serving
    process does that read in the background (slackbot/reads/stats.py ``StatsRefresher``: at
    start-up and every 20 s), so a person meets it only in the moment before the first one ends."""
    from slackbot.reads.stats import FACTS_CACHE

    FACTS_CACHE.clear()
    return triage_stats(runtime)


# -- measuring --------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def measure_bot(url: str, requests: int, log: Path) -> dict[str, Any]:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_"))}
    env["TRIAGE_DATABASE_URL"] = url
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bot did not come up: {log.read_text()[-2000:]}")
                time.sleep(0.1)
            results: dict[str, Any] = {}
            for path in PATHS:
                for _ in range(5):  # warm-up: connections, statement caches, the page cache
                    client.get(path).raise_for_status()
                times = []
                for _ in range(requests):
                    begun = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - begun) * 1000)
                    response.raise_for_status()
                results[path] = {
                    "p50": statistics.median(times),
                    "p99": percentile(times, 0.99),
                    "max": max(times),
                    "bytes": len(response.content),
                }
            rss, peak = rss_mb(process.pid)
            results["rss_mb"] = rss
            results["peak_rss_mb"] = peak
            return results
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def run_backend(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from slackbot.db.engine import make_engine
    from slackbot.db.migrate import upgrade

    server = None
    if name == "sqlite":
        kept = args.keep / "history.db" if args.keep else None
        url = f"sqlite:///{kept or tmp / 'history.db'}"
    else:
        sys.path.insert(0, str(ROOT))
        from tests.pgserver import PostgresServer

        server = PostgresServer().start()
        url = server.create_database("history")
    try:
        filled_file = args.keep / "filled.json" if args.keep and name == "sqlite" else None
        if filled_file is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
        if filled_file is not None and filled_file.exists():
            # A database kept by an earlier run (--keep): the read paths measured again on the same
            # rows, without the fill. Its clock moved on since, so the month holds a little less.
            filled = Filled(**json.loads(filled_file.read_text()))
        else:
            engine = make_engine(url)
            upgrade(engine)
            filled = fill(engine, incidents=args.incidents, occurrences=args.occurrences)
            engine.dispose()
            if filled_file is not None:
                filled_file.write_text(json.dumps(filled.__dict__))
        print(f"{name}: filled {filled} ", flush=True)
        began = datetime.now(UTC)
        load_before = os.getloadavg()[0]
        results = measure_bot(url, args.requests, tmp / f"{name}-bot.log")
        results["load"] = [load_before, os.getloadavg()[0]]
        if server is not None:
            results["autovacuum_during"] = _autovacuum_since(url, began)
        results["filled"] = filled.__dict__
        print(f"{name}: {json.dumps(results, indent=1)}", flush=True)
        return results
    finally:
        if server is not None:
            server.stop()


def _autovacuum_since(url: str, began: datetime) -> list[str]:
    """The tables autovacuum worked on while the paths were measured: its I/O shows in their p99."""
    from sqlalchemy import text

    from slackbot.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT relname, last_autovacuum >= :began, last_autoanalyze >= :began FROM pg_stat_user_tables"
                    " WHERE last_autovacuum >= :began OR last_autoanalyze >= :began ORDER BY relname"
                ),
                {"began": began},
            ).all()
    finally:
        engine.dispose()
    return [f"{name} ({' and '.join(w for w, d in (('vacuum', v), ('analyze', a)) if d)})" for name, v, a in rows]


def report(all_results: dict[str, dict[str, Any]], args: argparse.Namespace, before: dict[str, Any] | None) -> str:
    first = next(iter(all_results.values()))["filled"]
    lines = [
        "## History at scale (bench/history.py)",
        "",
        f"{first['incidents']:,} incidents ({first['open']} open, the rest resolved, over 400 days), "
        f"{first['occurrences']:,} occurrences, {first['timeline']:,} timeline rows, {first['runs']:,} runs, "
        "filled by raw `executemany`/`COPY` in one transaction. Each path requested "
        f"{args.requests} times one at a time after a warm-up; wall time at the client, in ms. The bot is "
        "`triagebot serve --no-slack`'s app in its own process; the Slack paths run the handlers' read and "
        "render work behind a bench route (the ack itself: bench/ack_latency.py). "
        "Target (issue 17): p99 under 100 ms, RSS under 250 MB.",
        "",
        "| database | path | p50 | p99 | max | target |" + (" p99 before |" if before else ""),
        "|---|---|---:|---:|---:|---|" + ("---:|" if before else ""),
    ]
    for backend, results in all_results.items():
        for path in PATHS:
            row = results[path]
            verdict = "✅" if row["p99"] < 100 else "❌"
            line = (
                f"| {backend} | {LABELS[path]} | {row['p50']:.1f} | {row['p99']:.1f} | {row['max']:.1f} | {verdict} |"
            )
            if before:
                old = before.get(backend, {}).get(path)
                line += f" {old['p99']:.0f} |" if old else " — |"
            lines.append(line)
    lines.append("")
    for backend, results in all_results.items():
        verdict = "✅" if results["rss_mb"] < 250 else "❌"
        lines.append(
            f"- {backend}: bot RSS {results['rss_mb']:.0f} MB after serving them (peak {results['peak_rss_mb']:.0f}"
            f" MB) {verdict}; fill took {results['filled']['seconds']:.1f} s"
            + (f"; machine load {load[0]:.1f} then {load[1]:.1f} (2 cores)" if (load := results.get("load")) else "")
            + (
                f" (before: RSS {before[backend]['rss_mb']:.0f} MB)"
                if before and backend in before and "rss_mb" in before[backend]
                else ""
            )
        )
        if "autovacuum_during" in results:
            during = results["autovacuum_during"]
            lines.append(
                f"- {backend}: autovacuum while measuring: {', '.join(during) if during else 'none'} (the fill ends"
                " with VACUUM ANALYZE, as autovacuum would about a minute later)"
            )
    if before:
        lines.append("")
        lines.append(f"_Before_: {before.get('_note', 'the same bench on the previous revision')}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--occurrences", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--before", type=Path, help="results (--json) of an earlier run to show beside")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument(
        "--keep",
        type=Path,
        help="SQLite: fill the database in this directory once and reuse it on later runs (try a change quickly)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    with tempfile.TemporaryDirectory(prefix="triage-history-") as tmp:
        results = {name: run_backend(name, args, Path(tmp)) for name in backends}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    before = json.loads(args.before.read_text()) if args.before else None
    text = report(results, args, before)
    print(text)
    if not args.no_doc:
        from bench.benchdoc import update_section

        update_section("history", text)
    failed = [(b, p) for b, r in results.items() for p in PATHS if r[p]["p99"] >= 100] + [
        (b, "rss") for b, r in results.items() if r["rss_mb"] >= 250
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
