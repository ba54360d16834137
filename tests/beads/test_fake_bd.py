"""The bd double against the bd 1.0.5 contract (shared/reference/beads-github-junit.md Part A).

These pin the double's wire behaviour on its own, so that BdTracker tests passing against it mean
something about the real bd.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

FAKE_BD = str(Path(sys.executable).parent / "triagebot-fake-bd")
FAULT_VARS = ("FAKE_BD_FAIL", "FAKE_BD_HANG", "FAKE_BD_LOCKED", "FAKE_BD_VERSION", "BD_JSON_ENVELOPE", "BEADS_DB")


def run_bd(
    *args: str,
    beads_dir: Path | None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in FAULT_VARS and k != "BEADS_DIR"}
    if beads_dir is not None:
        full_env["BEADS_DIR"] = str(beads_dir)
    full_env["BEADS_ACTOR"] = "tester"
    full_env["GIT_AUTHOR_EMAIL"] = "tester@example.com"  # bd's owner comes from the git identity
    full_env.update(env or {})
    return subprocess.run(
        [FAKE_BD, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=30,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


@pytest.fixture
def beads_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ".beads"
    done = run_bd(
        "init", "--prefix", "ci", "--quiet", "--non-interactive", "--skip-hooks", "--skip-agents", beads_dir=path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    yield path


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def export_lines(beads_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (beads_dir / "issues.jsonl").read_text().splitlines()]


def create(beads_dir: Path, title: str, *extra: str) -> dict[str, Any]:
    value = ok(run_bd("create", title, *extra, "--json", beads_dir=beads_dir))
    assert isinstance(value, dict)
    return value


def test_init_marks_the_workspace_and_discovery_fails_without_one(tmp_path: Path, beads_dir: Path) -> None:
    assert (beads_dir / "metadata.json").is_file()
    assert (beads_dir / "issues.jsonl").read_text() == ""

    missing = run_bd("list", "--json", beads_dir=None, cwd=tmp_path.parent)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.startswith("Error: no beads database found\nHint: ")
    assert "BEADS_DIR" in missing.stderr

    # without BEADS_DIR, the workspace is found by walking up from cwd
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert ok(run_bd("list", "--json", beads_dir=None, cwd=nested)) == []


def test_removed_daemon_flags_are_unknown_flags(beads_dir: Path) -> None:
    for flag in ("--no-daemon", "--no-auto-flush", "--no-auto-import"):
        done = run_bd("list", flag, "--json", beads_dir=beads_dir)
        assert done.returncode == 1
        assert done.stderr.strip() == f"Error: unknown flag: {flag}"
        assert done.stdout == ""
    done = run_bd("--no-daemon", "list", beads_dir=beads_dir)
    assert (done.returncode, done.stderr.strip()) == (1, "Error: unknown flag: --no-daemon")
    done = run_bd("frobnicate", beads_dir=beads_dir)
    assert done.returncode == 1 and 'unknown command "frobnicate"' in done.stderr


def test_create_prints_pretty_legacy_json_with_go_html_escaping(beads_dir: Path) -> None:
    done = run_bd(
        "create",
        "<!channel> & co",
        "-t",
        "bug",
        "-p",
        "P1",
        "--body-file",
        "-",
        "-l",
        "ci,flaky",
        "-l",
        "team:infra",
        "--external-ref",
        "https://github.com/acme/widgets/actions/runs/1",
        "--metadata",
        '{"ci_fingerprint":"fp1"}',
        "-a",
        "alice",
        "--json",
        beads_dir=beads_dir,
        stdin="body with <b>tags</b> & more\n",
    )
    assert done.returncode == 0, done.stderr
    raw = done.stdout
    assert raw.startswith('{\n  "schema_version": 1,\n  "id": "ci-')
    assert '"title": "\\u003c!channel\\u003e \\u0026 co"' in raw
    assert "<" not in raw and "&" not in raw
    issue = json.loads(raw)
    assert issue["title"] == "<!channel> & co"
    assert issue["description"] == "body with <b>tags</b> & more\n"
    assert (issue["priority"], issue["issue_type"], issue["status"]) == (1, "bug", "open")
    assert issue["labels"] == ["ci", "flaky", "team:infra"]
    assert issue["metadata"] == {"ci_fingerprint": "fp1"}
    assert issue["assignee"] == "alice"
    assert issue["created_by"] == "tester"
    assert issue["id"].startswith("ci-") and len(issue["id"]) >= 6


def test_validation_errors_are_json_on_stderr_with_exit_1(beads_dir: Path) -> None:
    done = run_bd("create", "x", "-p", "9", "--json", beads_dir=beads_dir)
    assert done.returncode == 1
    assert done.stdout == ""
    err = json.loads(done.stderr)
    assert "invalid priority" in err["error"] and err["schema_version"] == 1

    for args, message in (
        (("create", "--json"), "title required"),
        (("create", "", "--json"), "title is required"),
        (("create", "t", "-t", "story", "--json"), "invalid issue type"),
        (("create", "x" * 501, "--json"), "title must be 500 characters or less"),
    ):
        done = run_bd(*args, beads_dir=beads_dir)
        assert done.returncode == 1
        assert message in json.loads(done.stderr)["error"]

    # pflag hands a value flag the next token even when it starts with '-'
    dashed = ok(run_bd("create", "--title", "-dash", "-p", "P0", "--json", beads_dir=beads_dir))
    assert (dashed["title"], dashed["priority"]) == ("-dash", 0)
    missing = run_bd("create", "x", "-p", beads_dir=beads_dir)
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: flag needs an argument: --priority")

    plain = run_bd("create", "x", "-p", "9", beads_dir=beads_dir)
    assert plain.returncode == 1 and plain.stderr.startswith("Error: invalid priority")
    assert [i["title"] for i in export_lines(beads_dir)] == ["-dash"]  # nothing else was stored


def test_list_filters_default_excludes_closed_and_limit(beads_dir: Path) -> None:
    a = create(beads_dir, "alpha", "-l", "x", "--metadata", '{"ci_fingerprint":"fa"}')
    b = create(beads_dir, "beta", "--metadata", '{"ci_fingerprint":"fb"}')
    ok(run_bd("close", str(b["id"]), "--json", beads_dir=beads_dir))

    assert [i["id"] for i in ok(run_bd("list", "--json", beads_dir=beads_dir))] == [a["id"]]
    everything = ok(run_bd("list", "--json", "--all", "-n", "0", beads_dir=beads_dir))
    assert isinstance(everything, list) and {i["id"] for i in everything} == {a["id"], b["id"]}
    assert set(everything[0]) >= {"id", "title", "status", "priority", "dependency_count", "comment_count"}

    found = ok(
        run_bd("list", "--json", "--all", "-n", "0", "--metadata-field", "ci_fingerprint=fb", beads_dir=beads_dir)
    )
    assert [i["id"] for i in found] == [b["id"]]
    assert ok(run_bd("list", "--json", "--metadata-field", "ci_fingerprint=nope", beads_dir=beads_dir)) == []
    assert len(ok(run_bd("list", "--json", "-s", "closed", beads_dir=beads_dir))) == 1
    assert len(ok(run_bd("list", "--json", "-l", "x", beads_dir=beads_dir))) == 1

    # default limit is 50: seed 55 issues straight into the store (its format is the export line)
    line = {
        "_type": "issue",
        "status": "open",
        "priority": 2,
        "issue_type": "task",
        "created_at": "2026-01-01T00:00:00Z",
    }
    with (beads_dir / "issues.jsonl").open("a") as fh:
        for n in range(55):
            fh.write(
                json.dumps({**line, "id": f"ci-z{n:02d}", "title": f"seed {n}", "updated_at": line["created_at"]})
                + "\n"
            )
    assert len(ok(run_bd("list", "--json", beads_dir=beads_dir))) == 50
    assert len(ok(run_bd("list", "--json", "-n", "0", beads_dir=beads_dir))) == 56


def test_show_update_close_reopen_comments(beads_dir: Path) -> None:
    issue = create(beads_dir, "gamma")
    bead_id = str(issue["id"])

    added = ok(run_bd("comments", "add", bead_id, "first <note>", "--json", beads_dir=beads_dir))
    assert isinstance(added, dict)
    assert added["schema_version"] == 1 and added["issue_id"] == bead_id and added["text"] == "first <note>"
    assert added["author"] == "tester" and isinstance(added["id"], str)

    shown = ok(run_bd("show", bead_id, "--json", beads_dir=beads_dir))
    assert isinstance(shown, list) and len(shown) == 1  # always an array, no schema_version
    assert shown[0]["comment_count"] == 1 and "comments" not in shown[0]  # 1.0.5: count-only
    with_bodies = ok(run_bd("show", bead_id, "--include-comments", "--json", beads_dir=beads_dir))
    assert with_bodies[0]["comments"][0]["text"] == "first <note>"

    updated = ok(
        run_bd("update", bead_id, "-s", "in_progress", "-p", "0", "--add-label", "sev1", "--json", beads_dir=beads_dir)
    )
    assert isinstance(updated, list)
    assert (updated[0]["status"], updated[0]["priority"], updated[0]["labels"]) == ("in_progress", 0, ["sev1"])
    assert "started_at" in updated[0]

    closed = ok(run_bd("close", bead_id, "--json", beads_dir=beads_dir))
    assert closed[0]["status"] == "closed" and closed[0]["close_reason"] == "Closed"
    assert "closed_at" in closed[0]

    reopened = ok(run_bd("reopen", bead_id, "-r", "regressed", "--json", beads_dir=beads_dir))
    assert reopened[0]["status"] == "open" and "closed_at" not in reopened[0]
    comments = ok(run_bd("comments", bead_id, "--json", beads_dir=beads_dir))
    assert [c["text"] for c in comments] == ["first <note>", "regressed"]

    # partial ids resolve by unique prefix (bd search "bd-5q" style)
    assert ok(run_bd("show", bead_id[:-1], "--json", beads_dir=beads_dir))[0]["id"] == bead_id

    # positional text starting with '-' after the '--' terminator
    dashed = ok(run_bd("comments", "add", "--json", "--", bead_id, "- bullet", beads_dir=beads_dir))
    assert dashed["text"] == "- bullet"


def test_not_found_and_respect_json_errors(beads_dir: Path) -> None:
    done = run_bd("show", "ci-nope", "--json", beads_dir=beads_dir)
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"] == "no issues found matching the provided IDs"

    for args in (("update", "ci-nope", "-s", "open"), ("close", "ci-nope")):
        done = run_bd(*args, "--json", beads_dir=beads_dir)
        assert done.returncode == 1
        assert "no issue found" in done.stderr

    issue = create(beads_dir, "delta")
    done = run_bd("update", str(issue["id"]), "-s", "bogus", "--json", beads_dir=beads_dir)
    assert done.returncode == 1 and "invalid status" in json.loads(done.stdout)["error"]


def test_json_shapes_envelope_and_pre_schema_versions(beads_dir: Path) -> None:
    env = {"BD_JSON_ENVELOPE": "1"}
    created = ok(run_bd("create", "eps", "--json", beads_dir=beads_dir, env=env))
    assert isinstance(created, dict) and set(created) == {"schema_version", "data"}
    listed = ok(run_bd("list", "--json", beads_dir=beads_dir, env=env))
    assert isinstance(listed, dict) and listed["schema_version"] == 1 and isinstance(listed["data"], list)
    err = run_bd("show", "ci-nope", "--json", beads_dir=beads_dir, env=env)
    assert json.loads(err.stdout) == {
        "schema_version": 1,
        "data": {"error": "no issues found matching the provided IDs"},
    }

    old = {"FAKE_BD_VERSION": "1.0.2"}
    created = ok(run_bd("create", "old", "-l", "x", "--json", beads_dir=beads_dir, env=old))
    assert isinstance(created, dict) and "schema_version" not in created and "labels" not in created
    assert ok(run_bd("version", "--json", beads_dir=beads_dir, env=old)) == {"version": "1.0.2", "build": "fake"}
    assert ok(run_bd("version", "--json", beads_dir=beads_dir)) == {
        "schema_version": 1,
        "version": "1.0.5",
        "build": "fake",
    }


def test_export_lines_have_the_real_bd_keys(beads_dir: Path) -> None:
    issue = create(beads_dir, "epsilon", "-d", "desc")
    ok(run_bd("comments", "add", str(issue["id"]), "hello", "--json", beads_dir=beads_dir))
    done = run_bd("export", beads_dir=beads_dir)
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.stdout.splitlines()[0].startswith('{"_type":"issue","id":')  # compact, one object per line
    assert (beads_dir / "issues.jsonl").read_text() == done.stdout

    real = [
        json.loads(line)
        for name in ("beads-issues-jsonl-bd-1.0.x-sample.jsonl", "beads-issues-jsonl-bd-0.49.1-sample.jsonl")
        for line in (FIXTURES / name).read_text().splitlines()
    ]
    always = set.intersection(*(set(r) for r in real))  # id, title, status, priority, issue_type, created_*, ...
    documented = set().union(*(set(r) for r in real)) | {
        "_type",
        "external_ref",
        "metadata",
        "close_reason",
        "design",
        "acceptance_criteria",
        "notes",
        "comment_count",
        "dependency_count",
        "dependent_count",
    }
    documented -= {"work_type"}  # a 0.49-only gastown field
    line = lines[0]
    assert always <= set(line)
    assert set(line) <= documented | {"work_type"}
    for key in always:
        assert type(line[key]) is type(real[0][key]), key
    assert {"dependency_count", "dependent_count", "comment_count"} <= set(line)  # as in the 1.0.x line
    assert line["_type"] == "issue" and line["comment_count"] == 1
    assert set(line["comments"][0]) == set(real[2]["comments"][0])  # id, issue_id, author, text, created_at


def test_injected_faults_from_env_and_from_the_faults_file(beads_dir: Path) -> None:
    fail = {"FAKE_BD_FAIL": "1"}
    done = run_bd("create", "f", "--json", beads_dir=beads_dir, env=fail)
    assert done.returncode == 1 and json.loads(done.stderr)["error"]
    assert ok(run_bd("list", "--json", beads_dir=beads_dir, env=fail)) == []  # reads are not "writes"
    create_ok = run_bd("create", "f", "--json", beads_dir=beads_dir, env=fail)  # budget of 1 used up
    assert create_ok.returncode == 0

    locked = run_bd("list", "--json", beads_dir=beads_dir, env={"FAKE_BD_LOCKED": "1"})
    assert locked.returncode == 1
    assert "one writer at a time" in locked.stderr and str(beads_dir) in locked.stderr

    faults = beads_dir / "fake-bd-faults.json"
    faults.write_text(json.dumps({"locked": 1, "fail": 1}))
    assert run_bd("list", "--json", beads_dir=beads_dir).returncode == 1  # locked
    assert (
        run_bd(
            "comments", "add", str(create_ok.stdout and json.loads(create_ok.stdout)["id"]), "x", beads_dir=beads_dir
        ).returncode
        == 1
    )
    assert json.loads(faults.read_text()) == {"locked": 0, "fail": 0}
    assert run_bd("list", "--json", beads_dir=beads_dir).returncode == 0

    faults.write_text(json.dumps({"unavailable": True}))
    down = run_bd("list", "--json", beads_dir=beads_dir)
    assert down.returncode == 1 and "failed to open database" in down.stderr
    assert run_bd("version", "--json", beads_dir=beads_dir).returncode == 0  # version needs no database
    faults.unlink()
    assert run_bd("list", "--json", beads_dir=beads_dir).returncode == 0


def test_concurrent_processes_serialise_on_the_store(beads_dir: Path) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda n: run_bd("create", f"parallel {n}", "--json", beads_dir=beads_dir), range(10)))
    ids = [json.loads(r.stdout)["id"] for r in results]
    assert all(r.returncode == 0 for r in results)
    assert len(set(ids)) == 10
    stored = [json.loads(line)["id"] for line in (beads_dir / "issues.jsonl").read_text().splitlines()]
    assert sorted(stored) == sorted(ids)
