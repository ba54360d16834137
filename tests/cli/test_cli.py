"""The triagebot command as CI jobs and operators run it: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slackbot.app import build_asgi
from slackbot.runtime import build_runtime
from slackbot.serving import free_port, serve
from slackbot.settings import Settings
from tests.conftest import FIXTURES, RUNBOOKS

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")
SECRET = "cli-test-secret"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_"))}
    return subprocess.run(
        [TRIAGEBOT, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def broken_runbooks(tmp_path: Path) -> Path:
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target)
    policy = target / "integration-triage" / "policy.yml"
    policy.write_text(policy.read_text().replace("classify_within: 20m", "classify_within: twenty minutes"))
    return target


def test_check_passes_on_the_shipped_runbooks() -> None:
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok:" in result.stdout


def test_check_names_file_line_and_field_on_a_broken_copy(broken_runbooks: Path) -> None:
    result = run("check", "--runbooks", str(broken_runbooks))
    assert result.returncode == 1
    line = next(
        n
        for n, text in enumerate((broken_runbooks / "integration-triage" / "policy.yml").read_text().splitlines(), 1)
        if text.startswith("classify_within")
    )
    expected = f"integration-triage/policy.yml:{line}: classify_within: 'twenty minutes' is not a duration"
    assert expected in result.stdout


def test_serve_refuses_to_start_on_an_invalid_runbook_with_the_same_messages(
    broken_runbooks: Path, tmp_path: Path
) -> None:
    result = run(
        "serve",
        "--port",
        str(free_port()),
        env={"TRIAGE_RUNBOOKS_DIR": str(broken_runbooks), "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert result.returncode == 2
    assert "integration-triage/policy.yml:" in result.stderr and "classify_within" in result.stderr
    assert "refusing to start" in result.stderr


def test_serve_refuses_to_start_on_a_template_that_cannot_render(tmp_path: Path) -> None:
    """A template with an undefined variable passes YAML validation; it must not reach the first
    incident that needs it, so check and serve render every template first."""
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target)
    template = target / "templates" / "slack" / "acknowledged.j2"
    template.write_text(template.read_text() + "Pager: {{ pager_url }}\n")
    checked = run("check", "--runbooks", str(target))
    assert checked.returncode == 1
    assert "templates/slack/acknowledged.j2:2: (template): undefined variable" in checked.stdout
    assert "'pager_url' is undefined" in checked.stdout
    served = run(
        "serve",
        "--port",
        str(free_port()),
        env={"TRIAGE_RUNBOOKS_DIR": str(target), "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )
    assert served.returncode == 2 and "pager_url" in served.stderr and "refusing to start" in served.stderr


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    settings = Settings(TRIAGE_DATABASE_URL=url, TRIAGE_RUNBOOKS_DIR=RUNBOOKS, TRIAGE_INGEST_SECRET=SECRET)
    with serve(build_asgi(build_runtime(settings))) as base:
        yield base, url


def test_send_a_json_report_then_list_incidents(server: tuple[str, str]) -> None:
    base, db = server
    sample = RUNBOOKS / "examples" / "smoke-report.json"
    sent = run("send", str(sample), "--server", base, env={"TRIAGE_INGEST_SECRET": SECRET})
    assert sent.returncode == 0, sent.stderr
    assert "incident(s)" in sent.stdout and "INC-1 new" in sent.stdout
    again = run("send", str(sample), "--server", base, env={"TRIAGE_INGEST_SECRET": SECRET})
    assert "duplicate; nothing changed" in again.stdout
    listed = run("incidents", "--json", env={"TRIAGE_DATABASE_URL": db})
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows][:1] == ["INC-1"] and rows[0]["status"] == "open"
    table = run("incidents", env={"TRIAGE_DATABASE_URL": db})
    assert "INC-1" in table.stdout and "STATUS" in table.stdout


def test_send_junit_takes_run_metadata_from_the_github_actions_environment(server: tuple[str, str]) -> None:
    base, _ = server
    junit = FIXTURES / "vitest-junit-snapshot-hook-failures.xml"
    env = {
        "TRIAGE_INGEST_SECRET": SECRET,
        "GITHUB_REPOSITORY": "acme/dispatch",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF_NAME": "main",
    }
    sent = run("send", str(junit), "--server", base, "--suite", "smoke", env=env)
    assert sent.returncode == 0, sent.stderr
    assert "failing" in sent.stdout


def test_send_explains_what_is_wrong(server: tuple[str, str], tmp_path: Path) -> None:
    base, _ = server
    junit = FIXTURES / "vitest-junit-snapshot-hook-failures.xml"
    missing = run("send", str(junit), "--server", base, env={"TRIAGE_INGEST_SECRET": SECRET})
    assert missing.returncode == 2 and "--repository and --run-id" in missing.stderr
    no_secret = run("send", str(junit), "--server", base)
    assert no_secret.returncode == 2 and "TRIAGE_INGEST_SECRET" in no_secret.stderr
    wrong = run(
        "send",
        str(RUNBOOKS / "examples" / "smoke-report.json"),
        "--server",
        base,
        env={"TRIAGE_INGEST_SECRET": "not-the-secret"},
    )
    assert wrong.returncode == 1 and "401" in wrong.stderr and "does not match" in wrong.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"schemaVersion": 1, "run": {"repository": "acme/dispatch"}, "results": []}')
    rejected = run("send", str(bad), "--server", base, env={"TRIAGE_INGEST_SECRET": SECRET})
    assert rejected.returncode == 1 and "run.runId" in rejected.stderr
    unreachable = run(
        "send",
        str(bad),
        "--server",
        f"http://127.0.0.1:{free_port()}",
        "--retries",
        "0",
        env={"TRIAGE_INGEST_SECRET": SECRET},
    )
    assert unreachable.returncode == 3 and "could not reach" in unreachable.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    result = run("db", "upgrade", env={"TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert result.returncode == 0 and "database at revision" in result.stdout
