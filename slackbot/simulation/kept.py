"""The driver's own reads of the bot's database, asked thousands of times per run.

Between two simulated moments the driver asks what is due next (``Due``, twice a moment on average:
5,744 times in 14 days) and people look at the open incidents. Through a pooled SQLAlchemy
connection each ask cost a pool check-out and check-in, an execution context and a result object:
about 0.27 ms, 1.5 s of a 14-day run. Here each statement is compiled once for the engine's dialect
and run on one DBAPI connection kept for the bot process's life, in autocommit: every ask sees what
the bot committed before it, and nothing (no transaction, no snapshot, no lock) is held between
asks, on SQLite as on PostgreSQL. A restarted process builds its own (its engine is new).

Only constant statements (no parameters): their values are compiled into the SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select


class Compiled:
    """One constant SELECT, compiled for one dialect, with each column's result conversion (a
    ``DateTime`` read from SQLite's text, JSON, …) as SQLAlchemy itself would apply it."""

    def __init__(self, statement: Select, engine: Engine) -> None:
        dialect = engine.dialect
        self.sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        self.convert: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns
        ]

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if f is None else f(value) for f, value in zip(self.convert, raw, strict=True))


class KeptReads:
    """One connection, detached from the engine's pool (so it never goes back to it in autocommit)
    and closed with the process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._compiled: dict[int, tuple[Select, Compiled]] = {}
        pooled = engine.raw_connection()  # with the engine's connect-time pragmas (WAL, busy timeout)
        pooled.detach()
        self._pooled = pooled
        connection = pooled.dbapi_connection
        assert connection is not None
        engine.dialect.set_isolation_level(connection, "AUTOCOMMIT")
        self._cursor = connection.cursor()

    def rows(self, statement: Select) -> list[tuple[Any, ...]]:
        """``statement``'s rows now. Keep the statement in a module constant: it is compiled on
        first use and looked up by identity afterwards."""
        known = self._compiled.get(id(statement))
        if known is None or known[0] is not statement:
            known = (statement, Compiled(statement, self._engine))
            self._compiled[id(statement)] = known
        compiled = known[1]
        self._cursor.execute(compiled.sql)
        # fetchall: a half-read SQLite statement would keep its read snapshot open
        return [compiled.row(raw) for raw in self._cursor.fetchall()]

    def close(self) -> None:
        try:
            self._cursor.close()
        finally:
            self._pooled.close()
