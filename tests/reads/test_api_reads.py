"""``GET /api/incidents`` reads a snapshot: it neither waits for SQLite's write lock nor takes it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
from starlette.applications import Starlette

from handlers.http import api
from handlers.http.unavailable import exception_handlers
from slackbot.clock import FakeClock
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.reads.conftest import fill_history


def test_the_api_answers_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    """A long ingest (or another replica's) holds the write lock: the API once queued behind it
    for up to 30 s (SQLite's busy timeout) and then answered 503, for a read it never needed."""
    path = tmp_path / "triage.db"
    runtime = build_runtime(Settings(TRIAGE_DATABASE_URL=f"sqlite:///{path}", TRIAGE_RUNBOOKS_DIR=RUNBOOKS))
    fill_history(runtime.engine, FakeClock(), incidents=200, occurrences=400, open_incidents=20)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        with serve(Starlette(routes=api.routes(runtime), exception_handlers=exception_handlers())) as url:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE incidents SET status = 'resolved', open_key = NULL WHERE status = 'open'")
            begun = time.monotonic()
            response = httpx.get(url + "/api/incidents?status=open", timeout=10)
            took = time.monotonic() - begun
            writer.execute("COMMIT")
            after = httpx.get(url + "/api/incidents?status=open", timeout=10)
    finally:
        writer.close()
        runtime.engine.dispose()
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 20  # what was committed when it read; the writer's change is not
    assert took < 2, f"answered after {took:.1f} s"
    assert after.json()["count"] == 0


def test_triage_list_show_and_stats_answer_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    """The Slack reads too: ``/triage list``, ``/triage show`` and ``/triage stats`` read a snapshot
    instead of taking SQLite's write lock, so a long ingest neither delays their answers nor is
    delayed by them (the timers and the outbox wait for that lock as well)."""
    import asyncio

    from handlers.slack.commands import TriageCommand
    from slackbot.incidents.digests import stats_answer

    path = tmp_path / "triage.db"
    clock = FakeClock()
    runtime = build_runtime(Settings(TRIAGE_DATABASE_URL=f"sqlite:///{path}", TRIAGE_RUNBOOKS_DIR=RUNBOOKS))
    fill_history(runtime.engine, clock, incidents=200, occurrences=400, open_incidents=20)
    command = TriageCommand(runtime)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE incidents SET status = 'resolved', open_key = NULL WHERE status = 'open'")
        begun = time.monotonic()
        listed, _ = asyncio.run(command.list_(["open"], "U0READER"))
        shown, _ = asyncio.run(command.show(["INC-1"], "U0READER"))
        stats = stats_answer(runtime.engine, runtime.playbooks, runtime.clock)
        took = time.monotonic() - begun
        writer.execute("COMMIT")
    finally:
        writer.close()
        runtime.engine.dispose()
    assert took < 5, f"answered after {took:.1f} s"
    assert "INC-" in listed and "INC-1" in shown and stats.strip()
