"""Loading a card: the outbox does it for every redraw and thread post, so it must not wait for
the write lock (nor hold it) while the bot is busy writing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlalchemy.engine import Engine

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.reads.cardview import load_card_view
from slackbot.slack.card import render_card
from slackbot.sources.ingest import IngestService
from tests.factories import parsed, result


def test_a_card_loads_while_a_write_is_under_way_and_shows_what_was_committed(
    sqlite_engine: Engine, playbooks: Playbooks, clock: FakeClock
) -> None:
    IngestService(playbooks, clock).ingest_report(sqlite_engine, parsed(result(status="failed"), run_id="100"))
    with sqlite_engine.connect() as writer, ThreadPoolExecutor(1) as pool:
        writer.begin()  # BEGIN IMMEDIATE: holds SQLite's write lock until the rollback below
        writer.execute(text("UPDATE incidents SET repository = 'acme/uncommitted' WHERE id = 1"))
        try:
            # Waiting for the lock would take the busy timeout (30 s): 10 s is plenty for a read.
            view = pool.submit(load_card_view, sqlite_engine, playbooks, 1).result(timeout=10)
        finally:
            writer.rollback()
    assert view is not None and view.incident.id == 1
    assert view.incident.repository == "acme/dispatch"
    assert "acme/uncommitted" not in str(render_card(view))
    assert load_card_view(sqlite_engine, playbooks, 2) is None
