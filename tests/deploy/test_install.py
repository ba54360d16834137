"""Install paths: the wheel ``make dist`` builds (the Dockerfile's build stage runs the same
``pip wheel``) carries everything the bot runs, and works installed outside the repository.

``make image-test`` (deploy/image-test, run by CI after ``make test``) builds the image with a
real Docker engine and runs it; these tests, which need no engine, replay the Dockerfile's steps
in seconds: the files its build stage COPYs (parsed from it) are copied into a fresh directory,
its ``pip wheel`` RUN builds the wheel there, its ``pip install`` RUN installs it (into a
``--target`` directory; the dependencies are the test venv's), and its bd download step installs
a bd from a tar.gz. The installed ``triagebot`` then runs from an unrelated directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from slackbot.manifest import check_manifest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line[:-1] + "\n" if line.endswith("\\") else line
        if not line.endswith("\\"):
            joined.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def build_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [n for n, (name, _) in enumerate(steps) if name == "FROM"]
    return steps[starts[0] : starts[1]]


@dataclass
class Installed:
    target: Path
    wheel: Path
    env: dict[str, str]

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        script = self.target / "bin" / "triagebot"
        return subprocess.run(
            [sys.executable, str(script), *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    steps = instructions(DOCKERFILE)
    stage = build_stage(steps)
    context = tmp_path_factory.mktemp("context")
    for name, args in stage:
        if name == "COPY":
            *sources, _ = args.split()
            for source in sources:
                origin = REPO / source
                if origin.is_dir():
                    shutil.copytree(
                        origin, context / source, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(origin, context / source)
    [wheel_run] = [args for name, args in stage if name == "RUN" and " wheel " in args]
    pip_wheel = shlex.split(wheel_run.split("&&")[-1])
    assert pip_wheel[1:] == ["wheel", "--no-deps", "--wheel-dir", "/dist", "."]  # what `make dist` runs too
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dist), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("triagebot-*.whl")
    [install_run] = [args for name, args in steps if name == "RUN" and " install " in args and ".whl" in args]
    assert "pip install --no-compile /tmp/dist/*.whl" in install_run
    target = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-compile", "--no-deps", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The installed package first; its dependencies from the test venv (the image installs them).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    yield Installed(target, wheel, env)


def test_the_installed_wheel_runs_help_and_check_outside_the_repository(installed: Installed, tmp_path: Path) -> None:
    helped = installed.run("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "serve" in helped.stdout and "doctor" in helped.stdout
    checked = installed.run("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # it read the playbooks the wheel carries, not this checkout's
    shipped = installed.target / "slackbot" / "shipped" / "runbooks"
    assert checked.stdout.startswith(f"ok: {shipped} (playbooks: integration-triage, contract-drift,")
    assert not (installed.target / "slackbot" / "shipped" / "runbooks").is_symlink()
    upgraded = installed.run("db", "upgrade", cwd=tmp_path, **{})
    assert upgraded.returncode == 0 and "database at revision" in upgraded.stdout, upgraded.stderr
    assert (tmp_path / "triage.db").is_file()


def test_the_wheel_carries_every_runbook_file_and_the_manifest(installed: Installed) -> None:
    shipped = installed.target / "slackbot" / "shipped"
    in_repo = {p.relative_to(REPO / "runbooks") for p in (REPO / "runbooks").rglob("*") if p.is_file()}
    in_wheel = {p.relative_to(shipped / "runbooks") for p in (shipped / "runbooks").rglob("*") if p.is_file()}
    assert in_repo - in_wheel == set()
    assert (shipped / "manifest.yml").read_text() == (REPO / "manifest.yml").read_text()
    assert list((installed.target / "slackbot" / "emulator" / "static").glob("*.js"))  # the demo's page script


def test_manifest_for_a_host_from_the_installed_wheel(installed: Installed, tmp_path: Path) -> None:
    written = installed.run("manifest", "--url", "https://triage.acme.test/", "--out", "manifest.yml", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    text = (tmp_path / "manifest.yml").read_text()
    data = yaml.safe_load(text)
    urls = [
        data["features"]["slash_commands"][0]["url"],
        data["settings"]["event_subscriptions"]["request_url"],
        data["settings"]["interactivity"]["request_url"],
    ]
    assert urls == ["https://triage.acme.test/slack/events"] * 3
    assert "https://triagebot.example.com" not in text
    assert check_manifest(tmp_path / "manifest.yml") == []
    refused = installed.run("manifest", "--url", "http://triage.acme.test", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: --url must be https://HOST (Slack sends requests to HTTPS only), not 'http://triage.acme.test'"
    )


def test_the_dockerfile_bd_step_installs_bd_from_a_release_archive(tmp_path: Path) -> None:
    [bd_run] = [args for name, args in instructions(DOCKERFILE) if name == "RUN" and "BD_URL" in args]
    code = re.search(r'python -c "(.*?)"\s*\\?\n?\s*&& bd version', bd_run, re.S)
    assert code, bd_run
    fake = "#!/bin/sh\necho 'bd version 1.0.5'\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        member = tarfile.TarInfo("beads_1.0.5_linux_amd64/bd")
        member.size = len(fake)
        tar.addfile(member, io.BytesIO(fake.encode()))
    (tmp_path / "bd.tar.gz").write_bytes(archive.getvalue())
    destination = tmp_path / "bin" / "bd"
    destination.parent.mkdir()
    program = code.group(1).replace("\\\n", "").replace("/usr/local/bin/bd", str(destination))
    env = {**os.environ, "BD_URL": (tmp_path / "bd.tar.gz").as_uri()}
    good = subprocess.run(
        ["sh", "-c", f'python3 -c "{program}"'],
        env={**env, "BD_SHA256": hashlib.sha256(archive.getvalue()).hexdigest()},
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert subprocess.run([str(destination)], capture_output=True, text=True).stdout == "bd version 1.0.5\n"
    destination.unlink()
    bad = subprocess.run(
        ["sh", "-c", f'python3 -c "{program}"'], env={**env, "BD_SHA256": "0" * 64}, capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.strip() == "bd: sha256 mismatch" and not destination.exists()


def test_no_document_tells_anyone_to_pip_install_a_package_that_does_not_exist() -> None:
    """`pip install triagebot` asks PyPI, where there is no triagebot: every install line names the
    repository or a wheel."""
    documents = [REPO / "README.md", REPO / "docs" / "deploy.md", *(REPO / "examples").rglob("*.yml")]
    for document in documents:
        for number, line in enumerate(document.read_text().splitlines(), 1):
            if re.search(r"pip install\b", line) and "triagebot" in line:
                assert "git+" in line or ".whl" in line or "$TRIAGEBOT_PIP" in line, f"{document.name}:{number}: {line}"
    workflow = yaml.safe_load((REPO / "examples" / "github-actions" / "integration.yml").read_text())
    install = next(s for s in workflow["jobs"]["integration"]["steps"] if "TRIAGEBOT_PIP" in s.get("env", {}))
    assert install["env"]["TRIAGEBOT_PIP"].startswith("${{ vars.TRIAGEBOT_PIP || 'triagebot @ git+https://github.com/")
