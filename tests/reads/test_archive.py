"""``triagebot archive``: old occurrences and timelines of resolved incidents move, whole, to a gzip
JSONL file; open and recent incidents keep every row; what the bot answers does not change; a
second run does nothing; a run that dies half way is finished by the next one."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from slackbot.clock import FakeClock, as_utc
from slackbot.config import Playbooks
from slackbot.db.engine import session_scope
from slackbot.db.models import Incident, Occurrence, TimelineEvent
from slackbot.db.retention import ARCHIVED, Cutoffs, archive_rows, read_archive, verify
from slackbot.reads.queries import incident_json, list_incidents
from slackbot.reads.stats import StatsService, stats_text
from tests.reads.conftest import fill_history

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every row of the two tables, as the archive writes them, and the incidents' state."""
    with session_scope(engine) as session:
        rows: dict[tuple[str, int], dict[str, Any]] = {}
        for table, model in (("occurrences", Occurrence), ("timeline", TimelineEvent)):
            for row in session.exec(select(model)):
                data = {c.name: getattr(row, c.name) for c in model.__table__.columns}  # type: ignore[attr-defined]
                rows[(table, data["id"])] = {
                    k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()
                }
        incidents = {i.id: i for i in session.exec(select(Incident))}
    return {"rows": rows, "incidents": incidents}


def answers(engine: Engine, playbooks: Playbooks, clock: FakeClock) -> tuple[str, list[dict[str, Any]]]:
    with session_scope(engine) as session:
        listed = [incident_json(i) for i in list_incidents(session, limit=100_000)]
    return stats_text(StatsService(playbooks, clock).report(engine), None), listed


@pytest.fixture
def filled(engine: Engine, clock: FakeClock) -> Engine:
    fill_history(engine, clock, incidents=400, occurrences=4_000, open_incidents=40)
    return engine


def line_count(path: Path) -> int:
    with gzip.open(path, "rb") as lines:
        return sum(1 for _ in lines)


def old_resolved(before: dict[str, Any], cutoff: datetime) -> set[int]:
    return {
        i.id
        for i in before["incidents"].values()
        if i.status == "resolved" and i.resolved_at and as_utc(i.resolved_at) < cutoff
    }


def test_archive_moves_old_resolved_incidents_whole_and_the_bot_answers_the_same(
    filled: Engine, clock: FakeClock, playbooks: Playbooks, tmp_path: Path
) -> None:
    cutoff = clock.now() - timedelta(days=60)
    before = snapshot(filled)
    answered = answers(filled, playbooks, clock)
    out = tmp_path / "archive.jsonl.gz"

    report = archive_rows(filled, Cutoffs(cutoff, cutoff), out=out, now=clock.now(), batch=50)

    gone = old_resolved(before, cutoff)
    assert 100 < len(gone) < 400 and report.incidents == len(gone) and report.batches > 1
    after = snapshot(filled)
    moved = {key: row for key, row in before["rows"].items() if row["incident_id"] in gone}
    kept = {key: row for key, row in before["rows"].items() if row["incident_id"] not in gone}
    assert report.occurrences == sum(1 for table, _ in moved if table == "occurrences")
    assert report.timeline == sum(1 for table, _ in moved if table == "timeline")
    # Open and recently resolved incidents keep every row, unchanged.
    assert {k: v for k, v in after["rows"].items() if v.get("kind") != ARCHIVED} == kept
    # Each archived incident keeps one row that says what went where.
    markers = [v for v in after["rows"].values() if v.get("kind") == ARCHIVED]
    assert sorted(m["incident_id"] for m in markers) == sorted(gone)
    first = min(gone)
    marker = next(m for m in markers if m["incident_id"] == first)
    occurrences = sum(1 for t, _ in moved if t == "occurrences" and moved[(t, _)]["incident_id"] == first)
    assert marker["message"].startswith(f"Archived {occurrences} occurrences and ")
    assert marker["message"].endswith("timeline rows to archive.jsonl.gz") and marker["actor"] == "triagebot archive"
    # The archive holds exactly the rows that left, as they were.
    archived = {(r["table"], r["row"]["id"]): r["row"] for r in read_archive(out)}
    assert archived == moved
    assert verify(filled, out) == []
    # Counters, listings and /triage stats read the incident rows, which stay.
    assert answers(filled, playbooks, clock) == answered

    size = out.stat().st_size
    again = archive_rows(filled, Cutoffs(cutoff, cutoff), out=out, now=clock.now() + timedelta(hours=1))
    assert (again.incidents, again.rows) == (0, 0)
    assert out.stat().st_size == size and snapshot(filled)["rows"] == after["rows"]


def test_a_dry_run_counts_and_touches_nothing(filled: Engine, clock: FakeClock, tmp_path: Path) -> None:
    cutoff = clock.now() - timedelta(days=90)
    before = snapshot(filled)["rows"]
    dry = archive_rows(filled, Cutoffs(cutoff, None), out=None, now=clock.now(), dry_run=True)
    assert dry.incidents > 0 and dry.timeline == 0 and dry.occurrences > 0
    assert snapshot(filled)["rows"] == before and list(tmp_path.glob("*.gz")) == []
    real = archive_rows(filled, Cutoffs(cutoff, None), out=tmp_path / "a.jsonl.gz", now=clock.now())
    assert (real.incidents, real.occurrences, real.timeline) == (dry.incidents, dry.occurrences, 0)


def test_occurrences_and_timelines_keep_their_own_retention(filled: Engine, clock: FakeClock, tmp_path: Path) -> None:
    """Occurrences go after 60 days, timelines after 200: two runs, one file, both verifiable."""
    out = tmp_path / "archive.jsonl.gz"
    before = snapshot(filled)
    first = archive_rows(filled, Cutoffs(clock.now() - timedelta(days=60), None), out=out, now=clock.now())
    assert first.timeline == 0 and first.occurrences > 0
    clock.advance(timedelta(days=1))
    second = archive_rows(
        filled,
        Cutoffs(clock.now() - timedelta(days=60), clock.now() - timedelta(days=200)),
        out=out,
        now=clock.now(),
    )
    assert second.timeline > 0
    after = snapshot(filled)["rows"]
    long_ago = old_resolved(before, clock.now() - timedelta(days=200))
    audit = [v for v in after.values() if v.get("incident_id") in long_ago and v.get("kind") is not None]
    assert audit and all(v["kind"] == ARCHIVED for v in audit)  # whole timelines, no holes
    assert verify(filled, out) == []


def test_a_run_that_dies_before_its_commit_is_finished_by_the_next(
    filled: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    cutoff = clock.now() - timedelta(days=60)
    out = tmp_path / "archive.jsonl.gz"
    before = snapshot(filled)

    def die_on_delete(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE"):
            raise RuntimeError("the process died here")

    event.listen(filled, "before_cursor_execute", die_on_delete)
    with pytest.raises(RuntimeError):
        archive_rows(filled, Cutoffs(cutoff, cutoff), out=out, now=clock.now(), batch=50)
    event.remove(filled, "before_cursor_execute", die_on_delete)
    assert snapshot(filled)["rows"] == before["rows"]  # the batch's rows are still in the database
    written = line_count(out)
    assert written > 0

    archive_rows(filled, Cutoffs(cutoff, cutoff), out=out, now=clock.now(), batch=50)
    gone = old_resolved(before, cutoff)
    moved = {key for key, row in before["rows"].items() if row["incident_id"] in gone}
    assert {(r["table"], r["row"]["id"]) for r in read_archive(out)} == moved  # each row once
    assert line_count(out) == len(moved) + written  # the dead batch's copies too
    assert verify(filled, out) == []


def test_open_incidents_keep_everything_whatever_the_cutoff(filled: Engine, clock: FakeClock, tmp_path: Path) -> None:
    with session_scope(filled) as session:
        opened = list(session.exec(select(Incident.id).where(Incident.status == "open")))
        count = len(list(session.exec(select(Occurrence.id).where(col(Occurrence.incident_id).in_(opened)))))
    future = clock.now() + timedelta(days=3650)
    archive_rows(filled, Cutoffs(future, future), out=tmp_path / "a.jsonl.gz", now=clock.now())
    with session_scope(filled) as session:
        assert len(list(session.exec(select(Occurrence.id).where(col(Occurrence.incident_id).in_(opened))))) == count
        assert session.exec(select(Occurrence.id).where(col(Occurrence.incident_id).not_in(opened))).first() is None


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_"))}
    return subprocess.run([TRIAGEBOT, *args], env={**base, **env}, capture_output=True, text=True, timeout=60)


def test_the_command(sqlite_engine: Engine, clock: FakeClock, tmp_path: Path) -> None:
    fill_history(sqlite_engine, clock, incidents=200, occurrences=1_000, open_incidents=20)
    env = {"TRIAGE_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False)}
    nothing = run("archive", env=env)
    assert nothing.returncode == 0 and nothing.stdout.startswith("nothing to archive: every row is kept")
    bad = run("archive", "--before", "last year", env=env)
    assert bad.returncode == 2 and "--before must be a day like 2026-01-31; got 'last year'" in bad.stderr
    recent = datetime.now().date().isoformat()
    too_recent = run("archive", "--before", recent, env=env)
    assert too_recent.returncode == 2 and "at least 30 days ago" in too_recent.stderr
    out = tmp_path / "old.jsonl.gz"
    dry = run("archive", "--before", "2026-06-01", "--dry-run", env=env)
    assert dry.returncode == 0 and dry.stdout.startswith("would move ") and not out.exists()
    done = run("archive", "--before", "2026-06-01", "--out", str(out), env=env)
    assert done.returncode == 0 and done.stdout == dry.stdout.replace("would move", "moved").rstrip() + f" to {out}\n"
    assert verify(sqlite_engine, out) == []
    settings = run("archive", "--out", str(out), env={**env, "TRIAGE_RETAIN_TIMELINE_DAYS": "30"})
    assert settings.returncode == 0 and settings.stdout.startswith("moved 0 occurrences and ")
