"""Bulk inserts at the driver's speed, for the rows an ingest writes by the thousand.

A Core ``insert()`` given a list of rows ends in one ``executemany``, but on the way SQLAlchemy
builds each row's parameters in Python (every column's bind processor, per row): for a report of
10,000 failures that was most of the ingest (bench/ingest.py). Here the statement is compiled
once, each column's processor is looked up once, a value the processor has seen already (the one
timestamp of the whole ingest, ``{}``) is converted once, and the driver gets plain
tuples (or dicts, for a named parameter style). Stored values are the same as through Core: the
same processors, the same column defaults; SQLite and PostgreSQL alike. On SQLite a JSON column's
dicts and lists are encoded by one reused C encoder, text for text what ``json.dumps`` gives (a
1,000-result ingest encodes some 5,000 of them: ``json.dumps`` builds its encoder each call).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session

_UNSET = object()

RowObserver = Callable[[Session, Sequence[Mapping[str, Any]]], None]
_observers: dict[str, list[RowObserver]] = {}


def observe(table: Table, observer: RowObserver) -> None:
    """Call ``observer(session, rows)`` before every ``insert_many`` into ``table``. These rows never
    pass through the ORM's execute events, so whoever counts them (the metrics' escalations) asks here."""
    _observers.setdefault(table.name, []).append(observer)


def _json_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``json.dumps``'s text for dicts and lists (its defaults: ASCII, ``", "`` and ``": "``) from
    one encoder made once; anything else through the column's own ``process``. Without the
    circular check, which rows built from parsed JSON cannot need."""
    if c_make_encoder is None:  # a Python without the C accelerator
        return process
    encode = c_make_encoder(None, None, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    join = "".join

    def text(value: Any) -> Any:
        if type(value) is dict or type(value) is list:
            return join(encode(value, 0))
        return process(value)

    return text


def _convert(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """``[process(v) for v in values]``, converting once what repeats: a run of the same value
    (the one timestamp of an ingest, equal times built row by row, a default), empty JSON
    (``{}``, ``[]``) and a dict or list object met before (one suggestion's votes, shared by
    every incident it opens: 800 copies of a few kB each once the team has a past)."""
    if len(values) > 1 and values[-1] is values[0] and len(set(map(id, values))) == 1:
        # one object throughout (the ingest's one timestamp, a shared default): found in C,
        # converted once
        return [process(values[0])] * len(values)
    converted: list[Any] = []
    append = converted.append
    previous: Any = _UNSET
    result: Any = None
    empty: dict[type, Any] = {}
    shared: dict[int, Any] = {}
    for value in values:
        if value is not previous:
            kind = type(value)
            # equal times in the same zone convert alike; dicts may not (key order): only times
            if (
                kind is datetime
                and type(previous) is datetime
                and value == previous
                and value.tzinfo is previous.tzinfo
            ):
                pass
            elif kind in (dict, list):
                if not value:
                    if kind not in empty:
                        empty[kind] = process(value)
                    result = empty[kind]
                else:
                    # ``values`` keeps every object alive meanwhile, so an id is never reused
                    result = shared.get(id(value), _UNSET)
                    if result is _UNSET:
                        result = shared[id(value)] = process(value)
            else:
                result = process(value)
            previous = value
        append(result)
    return converted


def _statement(table: Table, dialect: str, skip_conflicts_on: str | None) -> Insert:
    if skip_conflicts_on is None:
        return table.insert()
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[skip_conflicts_on])


_Compiled = tuple[str, list[str], dict[str, Any], bool]  # SQL, parameter names, defaults, positional
# Per dialect (each engine has its own, compiled for its server): (table, keys, conflict column)
# -> the compiled statement. Small effect batches (a timer firing's timeline row and post) come
# by the thousand, and compiling the statement each time cost more than the insert.
_compiled_cache: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...], str | None], _Compiled]] = (
    weakref.WeakKeyDictionary()
)


def _compiled(table: Table, dialect: Dialect, keys: tuple[str, ...], skip_conflicts_on: str | None) -> _Compiled:
    cache = _compiled_cache.setdefault(dialect, {})
    cache_key = (table.fullname, keys, skip_conflicts_on)
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    # Columns the rows leave out get their scalar default here, as Core would have given them.
    defaults = {
        column.key: column.default.arg  # type: ignore[attr-defined]
        for column in table.columns
        if column.key not in keys and column.default is not None and column.default.is_scalar
    }
    statement = _statement(table, dialect.name, skip_conflicts_on)
    compiled = statement.compile(dialect=dialect, column_keys=[*keys, *defaults])
    names = list(compiled.positiontup or []) if compiled.positional else [*keys, *defaults]
    entry = (compiled.string, names, defaults, bool(compiled.positional))
    if len(cache) < 1000:  # row shapes are few; the bound keeps a surprise from growing it for ever
        cache[cache_key] = entry
    return entry


def insert_many(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], *, skip_conflicts_on: str | None = None
) -> None:
    """INSERT ``rows`` (dicts with the same keys) into ``table`` in one ``executemany``.
    ``skip_conflicts_on``: a unique column; a row that collides on it is not inserted."""
    if not rows:
        return
    for observer in _observers.get(table.name, ()):
        observer(session, rows)
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    if any(len(row) != len(keys) for row in rows):
        # rows of different shapes: Core sorts them out
        session.execute(_statement(table, dialect.name, skip_conflicts_on), list(rows))
        return
    sql, names, defaults, positional = _compiled(table, dialect, tuple(keys), skip_conflicts_on)
    # SQLite's JSON processor is json.dumps and nothing more (PostgreSQL's wraps psycopg's Json)
    plain_dumps = dialect.name == "sqlite" and dialect._json_serializer is None
    # Column by column: one C-level pass picks each column out of every row, and only the
    # columns with a processor (times, JSON) go through Python per value.
    columns: list[Sequence[Any]] = []
    for name in names:
        try:
            values: Sequence[Any] = (
                [defaults[name]] * len(rows) if name in defaults else list(map(itemgetter(name), rows))
            )
        except KeyError:  # as many keys as the first row, not the same ones
            session.execute(_statement(table, dialect.name, skip_conflicts_on), list(rows))
            return
        column_type = table.c[name].type
        process: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
        if process and plain_dumps and isinstance(column_type, JSON):
            process = _json_text(process)
        columns.append(_convert(process, values) if process else values)
    params: list[Any] = list(zip(*columns, strict=True))
    if not positional:
        params = [dict(zip(names, values, strict=True)) for values in params]
    connection.exec_driver_sql(sql, params)
