"""Each playbook's published document (``docs/<policy.document>``), rendered from its data.

The responder at 3 a.m. reads the document; the bot reads the YAML. Both come from the same
files, so a routing change, a new prefix or a new command template shows up in both or in
neither: ``tests/docs`` fails when a committed document differs from a fresh rendering
(``make runbook`` regenerates them). The prose that is not data lives in the playbook's
``templates/runbook.md.j2`` next to the data it explains.

Rendering is deterministic: no "generated at" stamp, only the ``updated`` dates of the YAML
files, so rendering twice gives byte-identical output and the drift check is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slackbot.config import Playbook, Playbooks, load_playbooks
from slackbot.documents import templates
from slackbot.documents.commands import PLACEHOLDER_TEXT, fill

TEMPLATE = "runbook.md.j2"
DOCS = Path("docs")


def cell(text: object) -> str:
    """One Markdown table cell: a ``|`` would split the cell and a newline would end the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _example(playbooks_dir: Path) -> dict[str, Any] | None:
    """The bundled sample report (what ``triagebot demo`` posts), for a filled-in worked example."""
    path = playbooks_dir / "examples" / "nightly-report.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    failing = [r for r in data.get("results", []) if r.get("status") in ("failed", "error") and r.get("scenarioId")]
    if not failing:
        return None
    run, first = data["run"], failing[0]
    values = {
        **PLACEHOLDER_TEXT,
        "runId": str(run["runId"]),
        "date": str(run.get("finishedAt") or "")[:10] or PLACEHOLDER_TEXT["date"],
        "scenarioId": first["scenarioId"],
        "invariantId": first.get("invariantId") or "",
        "testFile": first.get("testFile") or "",
        "repository": run["repository"],
    }
    return {"run": run, "result": first, "values": values, "file": f"{path.parent.name}/{path.name}"}


def output_path(playbook: Playbook) -> Path | None:
    return DOCS / playbook.policy.document if playbook.policy.document else None


def render_document(playbook: Playbook, playbooks: Playbooks, usage: list[str]) -> str:
    """Render one already validated playbook's document."""
    policy, routing = playbook.policy, playbook.routing
    phases: dict[str, list[str]] = {}
    for step in policy.response_steps:
        phases.setdefault(step.phase or "steps", []).append(step.text)
    env = templates.markdown(playbook)
    env.filters["cell"] = cell
    env.filters["fill"] = fill
    text = env.get_template(TEMPLATE).render(
        playbook=playbook,
        workspace=playbooks.workspace,
        others=[p for p in playbooks if p.name != playbook.name],
        taxonomy=playbook.taxonomy,
        routing=routing,
        policy=policy,
        classes=list(routing.classes.items()),
        labels={k: r.label for k, r in routing.classes.items()},
        severities=list(policy.severities.items()),
        auto_bead=[name for name, rule in policy.severities.items() if rule.file_bead],
        phases=phases,
        usage=usage,
        example=_example(playbooks.directory),
        placeholders=PLACEHOLDER_TEXT,
    )
    # One trailing newline and no trailing spaces, whatever the template's whitespace does.
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def render_all(playbooks: Playbooks, usage: list[str], *, only: str | None = None) -> dict[Path, str]:
    """Every playbook's document by its path under the repository (those that publish one)."""
    out: dict[Path, str] = {}
    for playbook in playbooks:
        path = output_path(playbook)
        if only is not None and playbook.name != only:
            continue
        if path is not None:
            out[path] = render_document(playbook, playbooks, usage)
    return out


def render_directory(directory: Path, usage: list[str], *, only: str | None = None) -> dict[Path, str]:
    """Load and validate ``directory`` (raising ``RunbookError`` with ``file:line: field`` problems,
    exactly like ``triagebot check``) and render every document."""
    return render_all(load_playbooks(directory), usage, only=only)
