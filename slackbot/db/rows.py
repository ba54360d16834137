"""Model instances from Core rows, for the hot paths that read with prebuilt Core statements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


def from_row(model: type[M], values: Mapping[str, Any]) -> M:
    """A detached instance holding ``values`` (one per column), made as the ORM makes the rows it
    loads: ``__init__`` (validation and a tracked assignment per field) cost twenty times more,
    about a millisecond per incident, paid for every card the outbox draws."""
    instance: M = inspect(model).class_manager.new_instance()
    instance.__dict__.update(values)
    return instance
