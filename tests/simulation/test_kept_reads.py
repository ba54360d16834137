"""The simulation's loop jumps to what the bot's database says is due next. It asks on one kept
connection (issue 15: thousands of asks per run); that connection must see each commit the bot
makes meanwhile, from other connections and threads, and hold nothing that blocks the bot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from slackbot.db.engine import session_scope
from slackbot.db.models import OutboxItem, Timer
from slackbot.simulation.kept import KeptReads
from slackbot.simulation.runner import Due

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _commit_in_another_thread(engine: Engine, rows: list[object]) -> None:
    def work() -> None:
        with session_scope(engine) as session:
            for row in rows:
                session.add(row)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


def test_the_kept_connection_sees_every_commit_and_blocks_no_writer(engine: Engine) -> None:
    reads = KeptReads(engine)
    try:
        assert Due.of(reads) == Due(None, None, None)

        _commit_in_another_thread(
            engine,
            [
                Timer(subject="incident:1", kind="classify", due_at=T0 + timedelta(minutes=20), token="a"),
                Timer(subject="incident:2", kind="classify", due_at=T0 + timedelta(minutes=5), token="b"),
                OutboxItem(kind="card", dedup_key="card:1", next_attempt_at=T0, created_at=T0),
            ],
        )
        assert Due.of(reads) == Due(T0 + timedelta(minutes=5), T0, None)

        # a worker claims the row and a timer fires: the next ask follows (no snapshot kept)
        with session_scope(engine) as session:
            session.execute(
                update(OutboxItem).values(state="sending", lease_until=T0 + timedelta(seconds=60), claimed_by="bot-1")
            )
            session.execute(update(Timer).where(col(Timer.token) == "b").values(state="fired"))
        due = Due.of(reads)
        assert due == Due(T0 + timedelta(minutes=20), None, T0 + timedelta(seconds=60))
        assert due.deliverable(T0 + timedelta(seconds=61)) and not due.deliverable(T0 + timedelta(seconds=59))

        # between asks the kept connection holds no lock: a writer goes straight through
        with Session(engine) as session:
            session.execute(update(Timer).values(state="cancelled"))
            session.commit()
        assert Due.of(reads).timer is None
    finally:
        reads.close()
