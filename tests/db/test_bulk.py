"""insert_many stores exactly what SQLAlchemy's Core insert stores: the same JSON text, the same
times, the same defaults, on SQLite and PostgreSQL alike (its shortcuts must never show)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from slackbot.db.bulk import insert_many
from slackbot.db.models import TimelineEvent
from slackbot.incidents.effects import table

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _rows(marker: str) -> list[dict[str, Any]]:
    """Rows whose values repeat (one object, equal objects, equal instants in another zone) and
    whose JSON holds what json.dumps treats specially (non-ASCII, quotes, nesting, empties)."""
    same = T0 + timedelta(minutes=1)
    data: list[Any] = [
        {"org": "org-ä", "quote": 'say "hi"\n', "nested": {"b": [1, 2.5, None, True]}, "a": "z"},
        {},
        {"b": 1, "a": 2},
        {},
        {"emoji": "🔥", "list": []},
        {"ids": ["INC-1", "INC-2"]},
    ]
    times = [T0, T0, same, T0 + timedelta(minutes=1), same.astimezone(timezone(timedelta(hours=2))), same]
    return [
        {
            "incident_id": None,
            "run_pk": None,
            "at": at,
            "actor": "triagebot",
            "source": "ingest",
            "kind": "note",
            "message": f"{marker} {n}",
            "data": value,
        }
        for n, (at, value) in enumerate(zip(times, data, strict=True))
    ]


def _stored(engine: Engine, marker: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT at, CAST(data AS TEXT), actor, source, kind FROM timeline "
                    "WHERE message LIKE :marker ORDER BY id"
                ),
                {"marker": f"{marker} %"},
            )
        ]


def test_bulk_rows_are_stored_as_core_stores_them(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(table(TimelineEvent).insert(), _rows("core"))
        insert_many(session, table(TimelineEvent), _rows("bulk"))
        session.commit()
    core, bulk = _stored(engine, "core"), _stored(engine, "bulk")
    assert len(bulk) == 6
    assert bulk == core
    with Session(engine) as session:
        read = session.execute(select(TimelineEvent.data, TimelineEvent.at).order_by(TimelineEvent.id)).all()
    assert [d for d, _ in read[6:]] == [r["data"] for r in _rows("x")]
    assert [a.astimezone(UTC) if a.tzinfo else a.replace(tzinfo=UTC) for _, a in read[6:]] == [
        r["at"].astimezone(UTC) for r in _rows("x")
    ]


def test_a_value_shared_by_every_row_is_stored_as_core_stores_it(engine: Engine) -> None:
    """One time object and one dict in every row (an ingest's stamp, a shared payload)."""
    shared = {"org": "org-ä", "ids": ["INC-1"]}

    def rows(marker: str) -> list[dict[str, Any]]:
        return [{**row, "at": T0, "data": shared} for row in _rows(marker)]

    with Session(engine) as session:
        session.execute(table(TimelineEvent).insert(), rows("core"))
        insert_many(session, table(TimelineEvent), rows("bulk"))
        session.commit()
    bulk = _stored(engine, "bulk")
    assert len(bulk) == 6 and len(set(bulk)) == 1
    assert bulk == _stored(engine, "core")


def test_objects_met_again_between_others_are_stored_as_core_stores_them(engine: Engine) -> None:
    """One suggestion's votes are the same list in every incident it opens, between others' rows:
    each object is encoded once, and an equal but distinct one (keys in another order) as itself."""
    votes: list[Any] = [{"class": "product", "weight": 1.5, "reason": "2 similar incidents — «confirmed»"}]
    other: list[Any] = [{"class": "harness", "weight": 0.5}]
    reordered = [{"weight": 1.5, "reason": votes[0]["reason"], "class": "product"}]
    order = [votes, other, votes, reordered, other, votes]

    def rows(marker: str) -> list[dict[str, Any]]:
        return [{**row, "data": value} for row, value in zip(_rows(marker), order, strict=True)]

    with Session(engine) as session:
        session.execute(table(TimelineEvent).insert(), rows("core"))
        insert_many(session, table(TimelineEvent), rows("bulk"))
        session.commit()
    bulk = _stored(engine, "bulk")
    assert bulk == _stored(engine, "core")
    assert bulk[0][1] == bulk[2][1] == bulk[5][1] != bulk[3][1]
