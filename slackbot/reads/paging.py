"""``GET /api/incidents`` in pages: newest first, a keyset cursor, never a silent truncation.

The cursor names the last incident of a page (its ``created_at`` and id), so a page never repeats
or skips an incident when new ones open while a client walks the list. It is opaque to clients
(base64 of the two values) and checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, or_
from sqlmodel import Session, col

from slackbot.db.models import Incident
from slackbot.reads.queries import JSON_COLUMNS, QueryError, incident_filter

DEFAULT_LIMIT = 100
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    incidents: list[Row[Any]]  # each incident's ``JSON_COLUMNS``, for ``incident_json``
    next_cursor: str | None


def parse_limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_LIMIT):
        raise QueryError(f"limit must be a whole number from 1 to {MAX_LIMIT}; got '{text[:20]}'")
    return int(text)


def encode_cursor(incident: Incident | Row[Any]) -> str:
    raw = f"{incident.created_at.isoformat()}|{incident.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    bad = QueryError("cursor is not one this server gave out: pass the `next` value of the previous page as is")
    if not cursor.isascii() or len(cursor) > 200:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        if not (ident.isdigit() and len(ident) <= 18):
            raise bad
        return datetime.fromisoformat(stamp), int(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None


def incidents_page(
    session: Session,
    *,
    status: str | None = None,
    failure_class: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    query = incident_filter(status=status, failure_class=failure_class)
    if cursor:
        created, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                col(Incident.created_at) < created,
                and_(col(Incident.created_at) == created, col(Incident.id) < ident),
            )
        )
    query = query.order_by(col(Incident.created_at).desc(), col(Incident.id).desc()).limit(limit + 1)
    table = Incident.__table__  # type: ignore[attr-defined]
    # Plain rows of the columns the answer shows, past the ORM (no identity map, no instances).
    rows = list(session.connection().execute(query.with_only_columns(*(table.c[name] for name in JSON_COLUMNS))))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]) if more and rows else None)
