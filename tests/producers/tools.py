"""Run the real JUnit producers on the sample projects here, and ingest what they write.

Each sample is copied into a directory named like the repository's checkout on GitHub Actions
(``…/dispatch/``, as in ``/home/runner/work/dispatch/dispatch/``) so the files a stack names are
where CI would have them. The npm
packages come from ``tests/producers/js`` (``make`` runs ``npm ci`` there); a missing tool is a
failure with the command that installs it, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.clock import FakeClock
from slackbot.config import Playbooks
from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade
from slackbot.db.models import Incident, Occurrence
from slackbot.sources.ingest import IngestService
from slackbot.sources.junit import parse_junit
from slackbot.sources.report import RunInfo

HERE = Path(__file__).resolve().parent
JS = HERE / "js"
NODE_MODULES = JS / "node_modules"
REPOSITORY = "acme/dispatch"
TIMEOUT = 120  # seconds per tool run: a cold start on a loaded 2-core machine, with room to spare


def checkout(base: Path, sample: str) -> Path:
    """The sample copied to ``base/<sample>/dispatch`` with the npm packages in its node_modules."""
    root = base / sample / REPOSITORY.split("/")[1]
    shutil.copytree(HERE / sample if (HERE / sample).exists() else JS / sample, root)
    if sample != "pytest-sample":
        if not (NODE_MODULES / ".installed").exists():
            stamp = (NODE_MODULES / ".installed").relative_to(HERE.parent.parent)
            raise AssertionError(f"the npm producers are not installed: run `make {stamp}`")
        (root / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    return root


def _run(command: list[str], cwd: Path, env: dict[str, str], output: Path) -> bytes:
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, "CI": "true", **env}, capture_output=True, timeout=TIMEOUT, check=False
    )
    # The samples fail on purpose (exit 1); anything else, or no file, is the tool not working.
    if done.returncode not in (0, 1) or not output.exists():
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode} without {output.name}:\n"
            f"{done.stdout.decode(errors='replace')[-3000:]}\n{done.stderr.decode(errors='replace')[-3000:]}"
        )
    return output.read_bytes()


def run_pytest(base: Path) -> bytes:
    project = checkout(base, "pytest-sample")
    output = base / "pytest.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={output}"]
    command.append("--continue-on-collection-errors")  # as CI runs it: one broken module is not the run
    # Plugin autoload off: the sample needs none, and the suite's own (xdist, asyncio …) cost a second.
    return _run(command, project, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, output)


def run_vitest(base: Path) -> bytes:
    project = checkout(base, "vitest-sample")
    output = base / "vitest.xml"
    command = ["node", str(NODE_MODULES / "vitest" / "vitest.mjs"), "run", "--reporter=junit", f"--outputFile={output}"]
    return _run(command, project, {}, output)


def run_jest(base: Path) -> bytes:
    project = checkout(base, "jest-sample")
    output = base / "jest.xml"
    command = [
        "node",
        str(NODE_MODULES / "jest" / "bin" / "jest.js"),
        "--ci",
        f"--cacheDirectory={base / 'jest-cache'}",
    ]
    env = {
        "JEST_JUNIT_OUTPUT_DIR": str(base),
        "JEST_JUNIT_OUTPUT_NAME": output.name,
        # Off by default: without it a test file that fails to load is missing from the file.
        "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS": "true",
    }
    return _run(command, project, env, output)


@dataclass(frozen=True)
class Seen:
    """An incident as a person sees it: the card's test line, class, ids, title, and the
    occurrences in its thread."""

    label: str
    failure_class: str | None
    contract_violation: bool
    scenario_id: str | None
    invariant_id: str | None
    symptom: str
    occurrences: tuple[tuple[str | None, str | None], ...]  # (test name, message)


def ingest(engine: Engine, playbooks: Playbooks, xml: bytes, repository: str) -> list[Seen]:
    """What ``POST /ingest/junit`` does (parse, then the ingest service), and the incidents it
    left for ``repository`` (one engine serves a module: each test sends as its own repository)."""
    run = RunInfo(repository=repository, run_id="9187", suite="nightly")
    report = parse_junit(xml, run)
    IngestService(playbooks, FakeClock()).ingest_report(engine, report, source="junit")
    with Session(engine) as session:
        incidents = session.exec(
            select(Incident).where(Incident.repository == repository).order_by(col(Incident.id))
        ).all()
        seen: list[Seen] = []
        for incident in incidents:
            occurrences = session.exec(
                select(Occurrence).where(Occurrence.incident_id == incident.id).order_by(col(Occurrence.id))
            ).all()
            seen.append(
                Seen(
                    incident.test_identity,
                    incident.failure_class,
                    incident.contract_violation,
                    incident.scenario_id,
                    incident.invariant_id,
                    incident.symptom,
                    tuple((o.test_name, o.message) for o in occurrences),
                )
            )
    return seen


def sqlite_db(directory: Path) -> Iterator[Engine]:
    """A migrated SQLite database for a module's tests (each sends as its own repository)."""
    engine = make_engine(f"sqlite:///{directory / 'triage.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()
