"""BdTracker against the bd double, through the executable (as TRIAGE_BD_BIN would point at bd)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from slackbot.clients.bd import LOCK_MARKERS, SUPPORTED_BD, BdTracker, check_bd_version, parse_bd_json
from slackbot.clients.tracker import BeadRequest, BeadTracker, TrackerError

FAKE_BD = str(Path(sys.executable).parent / "triagebot-fake-bd")
FAULT_VARS = ("FAKE_BD_FAIL", "FAKE_BD_HANG", "FAKE_BD_LOCKED", "FAKE_BD_VERSION", "BD_JSON_ENVELOPE")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*FAULT_VARS, "BEADS_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def beads_dir(tmp_path: Path) -> Path:
    path = tmp_path / ".beads"
    subprocess.run(
        [FAKE_BD, "init", "--prefix", "ci", "--quiet", "--non-interactive", "--skip-hooks", "--skip-agents"],
        env={**os.environ, "BEADS_DIR": str(path)},
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


class Sleeps:
    """An injectable sleep that records the backoff instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def tracker(beads_dir: Path, **kwargs: Any) -> BdTracker:
    return BdTracker(bin=FAKE_BD, beads_dir=str(beads_dir), **kwargs)


BASE_REQUEST = BeadRequest(
    title="integration: test_checkout failed on main",
    body="log excerpt\n  AssertionError: 500 != 200\n",
    priority=1,
    labels=("ci", "class:infra"),
    external_ref="https://github.com/acme/widgets/actions/runs/42",
    fingerprint="fp-base",
)


def request(fp: str = "fp-0001", **overrides: Any) -> BeadRequest:
    return dataclasses.replace(BASE_REQUEST, fingerprint=fp, **overrides)


def export(beads_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (beads_dir / "issues.jsonl").read_text().splitlines()]


async def test_roundtrip_create_find_comment_update_close_reopen_show(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    assert isinstance(bd, BeadTracker) and bd.name == "bd"

    bead = await bd.create(request(assignee="alice"))
    assert bead.id.startswith("ci-") and bead.status == "open" and bead.url is None
    assert bead.labels == ("ci", "class:infra")
    stored = export(beads_dir)[0]
    assert stored["description"] == "log excerpt\n  AssertionError: 500 != 200\n"  # sent via --body-file -
    assert stored["metadata"] == {"ci_fingerprint": "fp-0001"}
    assert stored["external_ref"] == "https://github.com/acme/widgets/actions/runs/42"
    assert (stored["issue_type"], stored["priority"], stored["assignee"]) == ("bug", 1, "alice")
    assert stored["created_by"] == "triagebot"  # BEADS_ACTOR

    assert await bd.find_by_fingerprint("fp-0001") == bead
    assert await bd.find_by_fingerprint("fp-other") is None

    await bd.comment(bead.id, "seen again on run 43")
    await bd.comment(bead.id, "- a line that looks like a flag")
    updated = await bd.update(bead.id, status="in_progress", priority=0, add_labels=["sev1"])
    assert updated.status == "in_progress" and "sev1" in updated.labels
    assert (await bd.update(bead.id)).id == bead.id  # nothing to change: no bd error

    closed = await bd.close(bead.id, "fixed by #123")
    assert closed.status == "closed"
    assert await bd.find_by_fingerprint("fp-0001") == closed  # closed beads are found too

    dashed = await bd.create(request("fp-dash", title="-leading dash", labels=("-odd",)))
    assert (dashed.title, dashed.labels) == ("-leading dash", ("-odd",))
    assert (await bd.close(dashed.id, "--not a flag")).status == "closed"

    reopened = await bd.reopen(bead.id, "failed again")
    assert reopened.status == "open"
    shown = await bd.show(bead.id)
    assert (shown.id, shown.title, shown.status) == (bead.id, bead.title, "open")

    final = next(i for i in export(beads_dir) if i["id"] == bead.id)
    comments = final["comments"]
    assert isinstance(comments, list)
    assert [c["text"] for c in comments] == [
        "seen again on run 43",
        "- a line that looks like a flag",
        "failed again",
    ]
    assert final["status"] == "open" and "closed_at" not in final and "close_reason" not in final


@pytest.mark.parametrize(
    ("env_envelope", "version"),
    [(False, "1.0.5"), (True, "1.0.5"), (False, "1.0.2")],
    ids=["legacy-inline-schema_version", "envelope", "bare-1.0.2"],
)
async def test_all_three_json_shapes(beads_dir: Path, env_envelope: bool, version: str) -> None:
    bd = tracker(beads_dir, env_envelope=env_envelope, extra_env={"FAKE_BD_VERSION": version})
    assert await bd.version() == version
    bead = await bd.create(request())
    assert await bd.find_by_fingerprint("fp-0001") == bead
    assert (await bd.show(bead.id)).id == bead.id
    assert (await bd.close(bead.id, "done")).status == "closed"
    await bd.comment(bead.id, "note")


def test_parse_bd_json_unwraps_every_shape() -> None:
    issue = {"id": "ci-abc", "title": "<x> & y", "status": "open"}
    bare = json.dumps(issue)
    legacy = json.dumps({"schema_version": 1, **issue})
    envelope = json.dumps({"schema_version": 1, "data": issue})
    newer_envelope = json.dumps({"data": [issue], "pagination": {"returned": 1}, "schema_version": 1})
    for text in (bare, legacy, envelope):
        assert parse_bd_json(text) == issue
    assert parse_bd_json(newer_envelope) == [issue]
    assert parse_bd_json(json.dumps([issue])) == [issue]
    go_escaped = '{"id":"ci-abc","title":"\\u003cx\\u003e \\u0026 y","status":"open"}'
    assert parse_bd_json(go_escaped) == issue
    assert parse_bd_json("Note: tip of the day\n" + legacy) == issue
    with pytest.raises(ValueError):
        parse_bd_json("")


async def test_html_escaped_title_roundtrip(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    title = "<!channel> & co"
    bead = await bd.create(request(title=title, body="<b>bold</b> & more"))
    assert bead.title == title
    assert (await bd.show(bead.id)).title == title
    raw = (beads_dir / "issues.jsonl").read_text()
    assert "\\u003c!channel\\u003e \\u0026 co" in raw


async def test_create_is_idempotent_by_fingerprint(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    first = await bd.create(request("fp-same"))
    again = await bd.create(request("fp-same", title="a different title"))
    assert again == first
    await bd.close(first.id, "resolved")
    after_close = await bd.create(request("fp-same"))
    assert after_close.id == first.id and after_close.status == "closed"  # the caller decides to reopen
    other = await bd.create(request("fp-different"))
    assert other.id != first.id
    assert len(export(beads_dir)) == 2


async def test_lock_errors_are_retried_with_backoff_then_succeed(beads_dir: Path) -> None:
    sleeps = Sleeps()
    bd = tracker(beads_dir, sleep=sleeps, extra_env={"FAKE_BD_LOCKED": "3"})
    assert await bd.find_by_fingerprint("fp-x") is None
    assert sleeps.calls == [0.5, 1.0, 2.0]


async def test_lock_errors_exhausted_are_retryable(beads_dir: Path) -> None:
    sleeps = Sleeps()
    bd = tracker(beads_dir, sleep=sleeps, lock_retries=5, extra_env={"FAKE_BD_LOCKED": "100"})
    with pytest.raises(TrackerError) as caught:
        await bd.show("ci-whatever")
    err = caught.value
    assert err.retryable and err.exit_code == 1
    assert "still locked after 6 attempts" in err.message
    assert any(marker in err.message for marker in LOCK_MARKERS)
    assert sleeps.calls == [0.5, 1.0, 2.0, 4.0, 8.0]  # 0.5·2^min(n,4)


async def test_hung_bd_times_out_and_is_killed(beads_dir: Path) -> None:
    bd = tracker(beads_dir, timeout=1.0, extra_env={"FAKE_BD_HANG": "5"})
    started = time.monotonic()
    with pytest.raises(TrackerError) as caught:
        await bd.find_by_fingerprint("fp-x")
    elapsed = time.monotonic() - started
    assert caught.value.retryable
    assert caught.value.message.startswith("bd timed out after 1s")
    assert elapsed < 3.0
    assert not _processes_with_env(f"BEADS_DIR={beads_dir}")  # the hung process is gone


def _processes_with_env(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle.encode() + b"\0" in environ + b"\0" and b"FAKE_BD_HANG" in environ:
            found.append(int(entry.name))
    return found


async def test_missing_binary_is_retryable(tmp_path: Path) -> None:
    bd = BdTracker(bin=str(tmp_path / "no-such-bd"), beads_dir=str(tmp_path / ".beads"))
    with pytest.raises(TrackerError) as caught:
        await bd.version()
    assert caught.value.retryable
    assert caught.value.message == f"bd executable not found: {tmp_path / 'no-such-bd'}"


async def test_validation_error_is_not_retryable_and_carries_bds_message(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    with pytest.raises(TrackerError) as caught:
        await bd.create(request(priority=9))
    err = caught.value
    assert not err.retryable and err.exit_code == 1
    assert "invalid priority" in err.message and err.message.startswith("bd create failed (exit 1): ")
    assert export(beads_dir) == []


async def test_unknown_id_and_generic_failures_are_not_retryable(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    with pytest.raises(TrackerError) as caught:
        await bd.show("ci-nope")
    assert not caught.value.retryable and "no issues found" in caught.value.message
    with pytest.raises(TrackerError) as caught:
        await bd.close("ci-nope", "x")  # update/close report unknown ids as plain text on stderr
    assert not caught.value.retryable and "no issue found" in caught.value.message

    failing = tracker(beads_dir, extra_env={"FAKE_BD_FAIL": "1"})
    with pytest.raises(TrackerError) as caught:
        await failing.create(request())
    assert not caught.value.retryable and caught.value.exit_code == 1
    assert (await failing.create(request())).id  # the budget of one failure is spent


async def test_faults_file_switches_a_running_tracker(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    bead = await bd.create(request())
    (beads_dir / "fake-bd-faults.json").write_text(json.dumps({"unavailable": True}))
    with pytest.raises(TrackerError) as caught:
        await bd.show(bead.id)
    assert "failed to open database" in caught.value.message
    (beads_dir / "fake-bd-faults.json").unlink()
    assert (await bd.show(bead.id)).id == bead.id


async def test_twenty_concurrent_creates_on_one_workspace(beads_dir: Path) -> None:
    bd = tracker(beads_dir)
    beads = await asyncio.gather(*(bd.create(request(f"fp-{n:02d}", title=f"failure {n}")) for n in range(20)))
    assert len({b.id for b in beads}) == 20
    assert len(export(beads_dir)) == 20


async def test_concurrent_creates_of_one_incident_file_one_bead(beads_dir: Path) -> None:
    a, b = BdTracker(bin=FAKE_BD, beads_dir=str(beads_dir)), BdTracker(bin=FAKE_BD, beads_dir=str(beads_dir) + "/")
    beads = await asyncio.gather(*(t.create(request("fp-race")) for t in (a, b, a, b)))
    assert len({bead.id for bead in beads}) == 1
    assert len(export(beads_dir)) == 1


async def test_version_and_supported_range(beads_dir: Path) -> None:
    assert await tracker(beads_dir).version() == "1.0.5"
    assert SUPPORTED_BD == ">=1.0.4,<2"
    assert check_bd_version("1.0.5") is None
    assert check_bd_version("v1.0.4") is None
    assert check_bd_version("1.9.0-rc1") is None
    old = check_bd_version("1.0.2")
    assert old is not None and "not a supported version" in old and "1.0.2" in old
    assert check_bd_version("0.49.1") is not None
    assert check_bd_version("2.0.0") is not None
    assert check_bd_version("dev") is not None
