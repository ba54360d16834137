"""The published runbooks (docs/<policy.document> of every playbook) are the bot's playbooks, rendered.

The drift test is the point: the documents are committed so people can read them on GitHub, and
they must never disagree with what the bot does. It covers every playbook that publishes a
document, so a playbook added to runbooks/workspace.yml is checked as soon as it lands. The other
tests check that a responder finds what seed 000/001 promise in docs/integration-triage-runbook.md
(the integration-triage playbook's document), with the exact values from runbooks/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slackbot.clock import FakeClock
from slackbot.config import Playbook, Playbooks, RunbookError
from slackbot.db.engine import make_engine
from slackbot.db.migrate import upgrade
from slackbot.documents.runbook import fill, output_path, render_all, render_directory
from slackbot.metrics import AppMetrics
from slackbot.slack.replies import usage_lines
from tests.conftest import REPO, RUNBOOKS

DOCUMENT = Path("docs") / "integration-triage-runbook.md"  # the integration-triage playbook's document
TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")


@pytest.fixture(scope="module")
def documents(playbooks: Playbooks) -> dict[Path, str]:
    """Every published document, by its path under the repository."""
    return render_all(playbooks, usage_lines())


@pytest.fixture(scope="module")
def document(documents: dict[Path, str]) -> str:
    return documents[DOCUMENT]


def section(document: str, title: str) -> str:
    """The text of one ``## title`` section, up to the next ``## `` heading outside code fences."""
    lines = document.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(f"## {title}"))
    fence: str | None = None
    for end in range(start + 1, len(lines)):
        marker = re.match(r"^(`{3,})", lines[end])
        if marker and fence is None:
            fence = marker.group(1)
        elif marker and marker.group(1) == fence:
            fence = None
        elif fence is None and lines[end].startswith("## "):
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def test_committed_documents_match_a_fresh_rendering(runbook: Playbook, documents: dict[Path, str]) -> None:
    assert output_path(runbook) == DOCUMENT and DOCUMENT in documents
    for path, text in documents.items():
        committed = (REPO / path).read_text(encoding="utf-8") if (REPO / path).is_file() else ""
        assert committed == text, (
            f"{path} is out of date with runbooks/ (or its template). "
            "Run `make runbook` and commit the result; do not edit the document by hand."
        )


def test_rendering_is_deterministic(documents: dict[Path, str]) -> None:
    assert render_directory(RUNBOOKS, usage_lines()) == documents
    for text in documents.values():
        assert text.endswith("\n") and not text.endswith("\n\n")
        assert not [n for n, line in enumerate(text.splitlines(), 1) if line != line.rstrip()]


def test_every_prefix_is_in_the_taxonomy_tables_with_its_meaning_and_evidence(runbook: Playbook, document: str) -> None:
    scenarios = section(document, "Scenario taxonomy")
    for entry in runbook.taxonomy.scenarios:
        row = next(line for line in scenarios.splitlines() if line.startswith(f"| `{entry.prefix}-*`"))
        assert entry.meaning in row and entry.failure_surface in row
    invariants = section(document, "Invariant taxonomy")
    for entry in runbook.taxonomy.invariants:
        row = next(line for line in invariants.splitlines() if line.startswith(f"| `{entry.prefix}-*`"))
        assert entry.meaning in row and all(item in row for item in entry.evidence)
    evidence = section(document, "Evidence to capture")
    for entry in [*runbook.taxonomy.scenarios, *runbook.taxonomy.invariants]:
        assert f"### `{entry.prefix}-*`" in evidence
        assert all(f"- {item}" in evidence for item in entry.evidence)


def test_every_class_has_owner_escalation_fallback_scope_raci_and_checklist(runbook: Playbook, document: str) -> None:
    routing = section(document, "Ownership and routing")
    for route in runbook.routing.classes.values():
        row = next(line for line in routing.splitlines() if line.startswith(f"| **{route.label}** |"))
        assert route.raci.responsible in row and route.raci.accountable in row
        assert route.escalation.describe() in row and route.fallback.describe() in row
        assert all(f"`{glob}`" in row for glob in route.scope)
        assert route.owner.oncall_user is None or f"`{route.owner.oncall_user}`" in row
        checklist = routing[routing.index(f"\n### {route.label}\n") :]
        for number, step in enumerate(route.first_response, 1):
            assert f"{number}. {step}" in checklist
    assert "GitHub issues in `acme/dispatch`" in routing  # data_schema_drift files GitHub issues
    for suite in runbook.routing.suites.values():
        assert f"`{suite.channel}`" in routing
    assert runbook.routing.release_maintainer.describe() in routing


def test_exact_commands_and_environment_contract(runbook: Playbook, document: str) -> None:
    commands = runbook.policy.commands
    reproduce = section(document, "Reproduce locally")
    assert "```bash\n" + "\n".join(commands.suites["smoke"]) + "\n```" in reproduce
    assert "```bash\n" + "\n".join(commands.suites["full"]) + "\n```" in reproduce
    assert 'pnpm exec vitest -c vitest.integration.config.ts tests/integration --run -t "<scenarioId>"' in reproduce
    for var in runbook.policy.environment:
        assert f'export {var.name}="{var.value}"' in reproduce
        assert f'$env:{var.name} = "{var.value}"' in reproduce
    artifacts = section(document, "Download CI artifacts")
    assert "gh run download <run-id> --dir logs/nightly/<YYYY-MM-DD>/ci-artifacts" in artifacts
    assert fill(commands.artifact_list) in artifacts
    assert "Permissions notes" in artifacts and "Actions: read" in artifacts
    # the worked example is the bundled sample report, filled in
    assert "gh run download 9187 --dir logs/nightly/2026-11-22/ci-artifacts" in artifacts


def test_escalation_rules_severities_and_flake_policy(runbook: Playbook, document: str) -> None:
    policy = runbook.policy
    escalation = section(document, "Escalation rules")
    assert "You cannot classify within 20 minutes" in escalation and "20-minute rule" in escalation
    assert f"{policy.multi_prefix_threshold} or more scenario prefixes" in escalation
    for level in policy.escalation.levels:
        assert " ".join(level.note.split()) in escalation
    for severity, rule in policy.severities.items():
        row = next(line for line in escalation.splitlines() if line.startswith(f"| **{severity}**"))
        assert rule.definition in row and f"`{rule.pagerduty_severity}`" in row
    flake = section(document, "Rerun and flake policy")
    assert " ".join(policy.flake.statement.split()) in flake
    assert "A resolved flake fails again within 7 days" in flake
    assert 'never offers a "rerun" button' in flake


def test_defect_bead_template_and_the_exact_bd_command(document: str) -> None:
    bead = section(document, "Defect bead template")
    assert "Title: `Integration failure: <scenarioId> / <invariantId> (<short symptom>)`" in bead
    fields = ("`scenarioId`:", "`invariantId`:", "CI run:", "Artifacts:", "Expected:", "Observed:", "Key entity ids:")
    assert all(field in bead for field in fields)
    assert (
        'bd create "Integration failure: <scenarioId> / <invariantId> (<short symptom>)" -t bug -p <priority>' in bead
    )
    assert "SEV-1 → 0, SEV-2 → 1, SEV-3 → 2" in bead
    assert "export CRON_SECRET=<cron_secret from your local secrets>" in bead  # secrets are never spelled out


def test_operational_alerts_and_bot_usage(playbooks: Playbooks, documents: dict[Path, str], document: str) -> None:
    # Operational alerts are published by the playbook that has them (the operations playbook),
    # with their detection and every step; integration-triage has none of its own any more.
    assert not playbooks.default.policy.alerts and "## Operational alerts" not in document
    for playbook in playbooks:
        path = output_path(playbook)
        if path is None:
            continue
        text = documents[path]
        for alert in playbook.policy.alerts:
            assert alert.alertname in text and alert.detection in text
            assert all(" ".join(step.text.split()) in text for step in alert.steps)
    usage = section(document, "Using the bot")
    for line in usage_lines():
        assert f"- {line}" in usage  # every /triage subcommand the bot answers to
    for button in ("Acknowledge", "Classify…", "Severity…", "Escalate", "File bead", "Runbook"):
        assert f"**{button}**" in usage
    assert "make runbook" in section(document, "How to change this document")


def test_tables_are_well_formed(documents: dict[Path, str]) -> None:
    """A stray ``|`` in runbook text must not break a table for the reader."""
    for document in documents.values():
        lines = document.splitlines()
        for index, line in enumerate(lines):
            if line.startswith("|") and (index == 0 or not lines[index - 1].startswith("|")):
                width = len(re.split(r"(?<!\\)\|", line))
                body = []
                for row in lines[index:]:
                    if not row.startswith("|"):
                        break
                    body.append(row)
                assert all(len(re.split(r"(?<!\\)\|", row)) == width for row in body), body[0]


def test_a_change_in_runbooks_shows_in_the_document(tmp_path: Path) -> None:
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target)
    routing = target / "integration-triage" / "routing.yml"
    text = routing.read_text()
    text = text.replace('handle: "@schema-owners"', 'handle: "@data-platform"')
    text = text.replace("@schema-owners (schema/migrations owners)", "@data-platform | schema owners")
    routing.write_text(text)
    document = render_directory(target, usage_lines())[DOCUMENT]
    assert "| @data-platform |" in section(document, "Classify the failure")
    row = next(line for line in document.splitlines() if line.startswith("| **Data/schema drift** |"))
    assert row.startswith("| **Data/schema drift** | @data-platform \\| schema owners |")  # escaped, one cell
    assert "@schema-owners (schema" not in document


def test_an_invalid_runbook_is_refused_like_triagebot_check(tmp_path: Path) -> None:
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target)
    policy = target / "integration-triage" / "policy.yml"
    policy.write_text(policy.read_text().replace("classify_within: 20m", "classify_within: 20"))
    line = next(n for n, text in enumerate(policy.read_text().splitlines(), 1) if text.startswith("classify_within"))
    with pytest.raises(RunbookError) as caught:
        render_directory(target, usage_lines())
    assert [str(p) for p in caught.value.problems] == [
        f"integration-triage/policy.yml:{line}: classify_within: durations need a unit, e.g. '20s' or '20m'"
    ]

    out = tmp_path / "docs"
    out.mkdir()
    (out / DOCUMENT.name).write_text("previous version\n")
    result = subprocess.run(
        [TRIAGEBOT, "runbook", "render", "--runbooks", str(target), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"integration-triage/policy.yml:{line}: classify_within: durations need a unit" in result.stdout
    assert "nothing was written" in result.stderr
    assert [f.name for f in out.iterdir()] == [DOCUMENT.name]
    assert (out / DOCUMENT.name).read_text() == "previous version\n"


def test_the_cli_writes_every_document(tmp_path: Path, documents: dict[Path, str]) -> None:
    out = tmp_path / "docs"
    result = subprocess.run(
        [TRIAGEBOT, "runbook", "render", "--runbooks", str(RUNBOOKS), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    written = {f.name: f.read_text(encoding="utf-8") for f in out.iterdir()}
    assert written == {path.name: text for path, text in documents.items()}


def test_every_metric_the_document_names_is_served(document: str, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    upgrade(engine)
    served = {
        family.name for family in text_string_to_metric_families(AppMetrics(engine, FakeClock()).exposition().decode())
    }
    named = set(re.findall(r"`(triagebot_[a-z_]+)", section(document, "Using the bot")))
    assert len(named) >= 10
    assert {name.removesuffix("_total") for name in named} <= served  # counters are families without _total


def test_internal_links_point_at_headings(documents: dict[Path, str]) -> None:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces become hyphens; a document
    may also set its own with ``<a id="...">``."""
    for path, document in documents.items():
        headings = {
            re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in document.splitlines()
            if line.startswith("#")
        }
        anchors = set(re.findall(r'<a (?:id|name)="([^"]+)"></a>', document))
        links = set(re.findall(r"\]\(#([^)]+)\)", document))
        assert links and links <= headings | anchors, (path, links - headings - anchors)
