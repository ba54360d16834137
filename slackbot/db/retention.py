"""Retention: move old occurrences and audit rows of resolved incidents to a gzip JSONL archive.

What moves, and why this shape:

* Only incidents that are **resolved**, resolved before the cutoff. An open incident keeps every
  row (its card, thread and postmortem read them); so does one resolved recently (it may reopen).
* Whole incidents, never part of one: all of an incident's occurrences (occurrence cutoff) or all
  of its timeline (timeline cutoff) go together, so what stays is never a trail with holes in it.
* Each archived incident gets one ``archived`` timeline row saying how many rows went to which
  file, with the SHA-256 of the exact lines written: the database still tells its history, and the
  archive can be checked against it (``verify``). ``archived`` rows are never archived themselves.
* Per batch, in one transaction: read the rows, append them to the archive as a new gzip member and
  fsync it, then delete them and write the markers, then commit. A crash before the commit leaves
  the rows in the database and (perhaps) in the file; the next run writes them again, and readers
  keep one copy per row (``read_archive``). Running again after a complete run finds nothing.

The incident rows stay: their counters (``occurrence_count``, first and last seen) and every
listing, ``/triage stats`` and ``/api/incidents`` answer the same before and after an archive.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import as_utc
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, TimelineEvent

ARCHIVED = "archived"  # the timeline kind of the marker rows
ACTOR = "triagebot archive"
MIN_RETAIN_DAYS = 30  # /triage stats reads 30 days of incidents and whether they were reclassified
TABLES = {"occurrences": Occurrence, "timeline": TimelineEvent}


@dataclass(frozen=True)
class Cutoffs:
    """Incidents resolved before these moments (UTC) lose those rows; None keeps them forever."""

    occurrences: datetime | None
    timeline: datetime | None


@dataclass
class ArchiveReport:
    incidents: int = 0
    occurrences: int = 0
    timeline: int = 0
    dry_run: bool = False
    out: Path | None = None
    batches: int = 0
    incident_ids: list[int] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.occurrences + self.timeline


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _line(table: str, row: Any, batch: str) -> bytes:
    data = {column.name: _plain(getattr(row, column.name)) for column in row.__table__.columns}
    return _encode({"table": table, "row": data, "batch": batch})


def _candidates(session: Session, cutoffs: Cutoffs, after: int, limit: int) -> list[Incident]:
    latest = max(as_utc(c) for c in (cutoffs.occurrences, cutoffs.timeline) if c is not None)
    query = (
        select(Incident)
        .where(
            Incident.status == "resolved",
            col(Incident.resolved_at) < latest,
            col(Incident.id) > after,
        )
        .order_by(col(Incident.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # An incident reopening now waits for this batch; it then finds its history archived
        # and its marker row, never half of either. (SQLite's BEGIN IMMEDIATE already serialises.)
        query = query.with_for_update(of=Incident)
    return list(session.exec(query))


def _rows(session: Session, table: str, incident_ids: Sequence[int]) -> list[Any]:
    model: Any = TABLES[table]
    query = select(model).where(col(model.incident_id).in_(incident_ids))
    if table == "timeline":
        query = query.where(model.kind != ARCHIVED)
    return list(session.exec(query.order_by(col(model.incident_id), col(model.id))))


def archive_rows(
    engine: Engine,
    cutoffs: Cutoffs,
    *,
    out: Path | None,
    now: datetime,
    dry_run: bool = False,
    batch: int = 100,
) -> ArchiveReport:
    """Archive what ``cutoffs`` let go; ``out`` is appended to (a gzip member per batch)."""
    report = ArchiveReport(dry_run=dry_run, out=out)
    if cutoffs.occurrences is None and cutoffs.timeline is None:
        return report
    if not dry_run and out is None:
        raise ValueError("an archive needs a file to write to")
    after = 0
    while True:
        with session_scope(engine) as session:
            incidents = _candidates(session, cutoffs, after, batch)
            if not incidents:
                return report
            after = incidents[-1].id or after
            moved = _archive_batch(session, incidents, cutoffs, out, now, dry_run, report)
            if not moved:
                continue
            report.batches += 1


def _archive_batch(
    session: Session,
    incidents: list[Incident],
    cutoffs: Cutoffs,
    out: Path | None,
    now: datetime,
    dry_run: bool,
    report: ArchiveReport,
) -> bool:
    chosen: dict[str, list[int]] = {}
    for table in TABLES:
        cutoff = getattr(cutoffs, table)
        if cutoff is not None:
            chosen[table] = [
                i.id for i in incidents if i.id is not None and i.resolved_at and as_utc(i.resolved_at) < as_utc(cutoff)
            ]
    stamp = as_utc(now)
    # Names this batch's lines, so its markers find them even beside a dead run's copies.
    batch = uuid.uuid4().hex
    lines: dict[int, list[bytes]] = {}
    ids: dict[str, list[int]] = {}
    counts: dict[int, dict[str, int]] = {}
    for table, incident_ids in chosen.items():
        if not incident_ids:
            continue
        for row in _rows(session, table, incident_ids):
            lines.setdefault(row.incident_id, []).append(_line(table, row, batch))
            ids.setdefault(table, []).append(row.id)
            per = counts.setdefault(row.incident_id, {"occurrences": 0, "timeline": 0})
            per[table] += 1
    if not lines:
        return False
    report.incidents += len(lines)
    report.incident_ids.extend(sorted(lines))
    report.occurrences += len(ids.get("occurrences", []))
    report.timeline += len(ids.get("timeline", []))
    if dry_run:
        return True
    assert out is not None
    with out.open("ab") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            for incident_id in sorted(lines):
                packed.writelines(lines[incident_id])
        raw.flush()
        os.fsync(raw.fileno())  # the rows are safe in the file before they leave the database
    for table, row_ids in ids.items():
        model: Any = TABLES[table]
        for start in range(0, len(row_ids), 500):
            session.execute(delete(model).where(model.id.in_(row_ids[start : start + 500])))
    markers = []
    for incident_id in sorted(lines):
        per = counts[incident_id]
        markers.append(
            {
                "incident_id": incident_id,
                "at": stamp,
                "actor": ACTOR,
                "source": "cli",
                "kind": ARCHIVED,
                "message": (
                    f"Archived {per['occurrences']} occurrences and {per['timeline']} timeline rows to {out.name}"
                ),
                "data": {
                    "file": out.name,
                    "batch": batch,
                    "occurrences": per["occurrences"],
                    "timeline": per["timeline"],
                    "sha256": hashlib.sha256(b"".join(lines[incident_id])).hexdigest(),
                },
            }
        )
    session.execute(insert(TimelineEvent), markers)
    return True


# -- reading an archive back -------------------------------------------------------------------


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """Every archived row once, as ``{"table": ..., "row": {...}}``, in the order first written
    (a batch written again after a crash repeats rows; they are the same rows)."""
    seen: set[tuple[str, int]] = set()
    with gzip.open(path, "rb") as lines:
        for line in lines:
            record = json.loads(line)
            key = (record["table"], int(record["row"]["id"]))
            if key not in seen:
                seen.add(key)
                yield record


def verify(engine: Engine, path: Path) -> list[str]:
    """Problems found comparing an archive with the ``archived`` rows that point at it: the lines
    one run wrote for an incident must hash to what that run's marker recorded, and every marker
    must find its lines. Lines of a run that never committed (a crash) have no marker and are no
    problem: their rows stayed in the database or were archived again. Empty when all agree."""
    groups: dict[tuple[int, str], list[bytes]] = {}
    with gzip.open(path, "rb") as lines:
        for line in lines:
            record = json.loads(line)
            key = (int(record["row"]["incident_id"]), str(record["batch"]))
            groups.setdefault(key, []).append(_encode(record))
    problems = []
    with session_scope(engine) as session:
        markers = session.exec(select(TimelineEvent).where(TimelineEvent.kind == ARCHIVED))
        for marker in markers:
            if marker.data.get("file") != path.name or marker.incident_id is None:
                continue
            written = groups.get((marker.incident_id, str(marker.data.get("batch"))))
            if written is None:
                problems.append(
                    f"INC-{marker.incident_id}: its timeline says rows were archived to {path.name}; none are there"
                )
            elif hashlib.sha256(b"".join(written)).hexdigest() != marker.data.get("sha256"):
                problems.append(f"INC-{marker.incident_id}: the archived rows differ from what its timeline recorded")
    return problems


def cutoff_before(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
