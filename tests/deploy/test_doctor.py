"""``triagebot doctor``: what `check` cannot see, each problem one line with its fix."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from slackbot.cli import main
from slackbot.config import load_playbooks
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.manifest import manifest_for_host
from slackbot.settings import DEFAULT_MANIFEST
from tests.conftest import RUNBOOKS

FAKE_BD = shutil.which("triagebot-fake-bd") or str(Path(__file__).parents[2] / ".venv/bin/triagebot-fake-bd")
PLACEHOLDER = re.compile(r"\b([UWCGSB]0[A-Z_]+)\b")


def doctor(env: dict[str, str], *args: str) -> Result:
    # Unset every setting the developer's shell may carry, then set the ones this test means.
    cleared = {name: None for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "BEADS_DIR")}
    cleared |= {name: None for name in ("TRIAGE_INGEST_SECRET", "TRIAGE_RUNBOOKS_DIR", "TRIAGE_BD_BIN")}
    return CliRunner().invoke(main, ["doctor", *args], env={**cleared, **env})


def test_doctor_on_the_shipped_config_lists_every_placeholder() -> None:
    result = doctor({"TRIAGE_RUNBOOKS_DIR": str(RUNBOOKS)})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    # every user, group and channel the playbooks name (the demo seeds its workspace from them)
    named, empty = SlackEmulator(), SlackEmulator().workspace
    seed_workspace(named, load_playbooks(RUNBOOKS))
    ids = set(named.workspace.users) | set(named.workspace.channels) | set(named.workspace.usergroups)
    ids -= set(empty.users) | set(empty.channels)  # the emulator's own bot user
    ids |= {"B0GHACTIONS", "U0GHACTIONS"}  # the CI notifier in workspace.yml
    for slack_id in sorted(ids):
        assert [line for line in lines if f" {slack_id} is a placeholder " in line], slack_id
    manifest_lines = [
        n
        for n, text in enumerate(DEFAULT_MANIFEST.read_text().splitlines(), 1)
        if "https://triagebot.example.com" in text
    ]
    assert len(manifest_lines) == 3
    for number in manifest_lines:
        assert any(line.startswith(f"manifest.yml:{number}: ") and "triagebot manifest --url" in line for line in lines)
    keys = {k for f in RUNBOOKS.rglob("*.yml") for k in re.findall(r"pagerduty_routing_key: (\w+)", f.read_text())}
    assert len(keys) == 5
    for key in keys:
        assert any(f"{key[:4]}…{key[-4:]} is the example workspace's placeholder" in line for line in lines)
    # a placeholder line says where and how to fix it
    line = next(line for line in lines if " S0LEADS is a placeholder " in line)
    assert re.match(r"runbooks/[\w/.-]+\.yml:\d+ \(and \d+ more place\(s\)\): S0LEADS is a placeholder usergroup", line)
    assert "TRIAGE_INGEST_SECRET is not set" in result.output and "SLACK_BOT_TOKEN is not set" in result.output
    assert lines[-1].startswith("error: ") and "problem(s)" in lines[-1]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[SlackEmulator, dict[str, str]]]:
    """A deployment whose ids are real-looking (every placeholder id given a digit) and whose
    workspace has all of them: doctor finds nothing; then the tests break one thing at a time."""
    runbooks = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, runbooks)
    for number, path in enumerate(sorted(runbooks.rglob("*.yml"))):
        text = PLACEHOLDER.sub(r"\g<1>9", path.read_text())
        text = re.sub(r"(pagerduty_routing_key: )\w+", rf"\g<1>{number:02d}{'a' * 30}", text)
        path.write_text(text)
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(manifest_for_host(DEFAULT_MANIFEST.read_text(), "https://triage.acme.test"))
    scopes = yaml.safe_load(manifest.read_text())["oauth_config"]["scopes"]["bot"]
    with SlackEmulator(scopes=",".join(s for s in scopes if s != "files:write")) as emulator:
        seed_workspace(emulator, load_playbooks(runbooks))
        emulator.add_user("U0GHACTIONS9", "github-actions", is_bot=True)  # the CI notifier workspace.yml names
        env = {
            "TRIAGE_RUNBOOKS_DIR": str(runbooks),
            "SLACK_BOT_TOKEN": emulator.bot_token,
            "SLACK_SIGNING_SECRET": emulator.signing_secret,
            "SLACK_API_URL": emulator.base_url,
            "TRIAGE_INGEST_SECRET": "s3cret",
            "TRIAGE_BD_BIN": FAKE_BD,
            "MANIFEST": str(manifest),
        }
        yield emulator, env


def test_doctor_checks_the_workspace_itself(workspace: tuple[SlackEmulator, dict[str, str]]) -> None:
    emulator, env = workspace
    manifest = env.pop("MANIFEST")
    first = doctor(env, "--manifest", manifest)
    # the token lacks one scope the manifest asks for; everything else is there
    assert first.exit_code == 1, first.output
    checking, ok, *problems, summary = first.output.splitlines()
    assert checking == f"checking: runbooks {env['TRIAGE_RUNBOOKS_DIR']}, manifest {manifest}"
    assert ok.startswith("slack: ok: ") and summary.startswith("error: 1 problem(s)")
    assert len(problems) == 1, first.output
    problem = problems[0]
    assert problem.startswith("slack: the bot token lacks the scope files:write that manifest.yml asks for: ")

    ws = emulator.workspace
    ws.channels["C0NIGHTLY9"].bot_is_member = False
    del ws.users["U0ERIN9"]
    del ws.usergroups["S0FLAKE9"]
    routing = Path(env["TRIAGE_RUNBOOKS_DIR"]) / "integration-triage" / "routing.yml"
    key = re.search(r"pagerduty_routing_key: (\w+)", routing.read_text())
    assert key
    routing.write_text(routing.read_text().replace(key.group(1), key.group(1)[:31]))  # one character lost
    second = doctor(env, "--manifest", manifest)
    lines = second.output.splitlines()
    assert any(
        re.match(
            r"runbooks/integration-triage/routing\.yml:\d+.*: "
            r"the bot is not in #\S+ \(C0NIGHTLY9\): run `/invite @triagebot`",
            x,
        )
        for x in lines
    ), lines
    assert any(": user U0ERIN9 not found (user_not_found): " in x for x in lines)
    assert any(": user group S0FLAKE9 does not exist in " in x for x in lines)
    assert any(
        re.match(
            r"runbooks/integration-triage/routing\.yml:\d+.*: pagerduty_routing_key \w{4}…\w{4} is not a "
            r"PagerDuty key \(32 letters and digits, this one has 31 characters\)",
            x,
        )
        for x in lines
    ), lines
    assert not any("placeholder" in x for x in lines)
