"""Rendering every template of every playbook against sample data, before anyone relies on them.

A template is only known to work once it has rendered: a variable nobody passes, a filter that
does not exist or a front matter without a title passes YAML validation and then fails when the
first incident needs it. ``triagebot check`` (and ``serve`` before it starts) renders each one the
way the bot will, with the same context builders, for a sample incident of each playbook in two
shapes (every optional value present, then absent), and reports ``file:line: message``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError

from slackbot.config import ConfigProblem, Playbook, Playbooks
from slackbot.db.models import Incident, Occurrence, Run, RunbookExecution, TimelineEvent
from slackbot.documents.postmortem import PostmortemInputs, render_postmortem
from slackbot.documents.record import RecordInputs, render_record
from slackbot.documents.runbook import output_path, render_document
from slackbot.slack.card import CardView, summary_context
from slackbot.slack.posts import Mrkdwn, note_context, post_context, render_named

_NOW = datetime(2026, 1, 5, 3, 12, tzinfo=UTC)


@dataclass(frozen=True)
class _Sample:
    incident: Incident
    run: Run


def _sample(playbook: Playbook, *, full: bool) -> _Sample:
    taxonomy = playbook.taxonomy
    scenario = f"{taxonomy.scenarios[0].prefix}-001" if taxonomy.scenarios and full else None
    invariant = f"{taxonomy.invariants[0].prefix}-001" if taxonomy.invariants and full else None
    first_class = next(iter(playbook.classes))
    asked = {f.key: f"sample {f.label.lower()}" for m in playbook.milestones for f in m.asks} if full else {}
    incident = Incident(
        id=7,
        playbook=playbook.name,
        fingerprint="f" * 32,
        repository="acme/sample",
        scenario_id=scenario,
        invariant_id=invariant,
        test_identity="tests/sample.test.ts::sample",
        test_file="tests/sample.test.ts" if full else None,
        symptom="sample failure",
        organization_under_test="org-a" if full else None,
        key_entity_ids={"orgId": "org-a"} if full else {},
        suite=next(iter(playbook.routing.suites), "full"),
        channel=playbook.default_channel,
        status="resolved" if full else "open",
        milestone=playbook.milestones[-1].key if full else None,
        failure_class=first_class if full else None,
        class_source="human" if full else None,
        severity=playbook.policy.default_severity,
        flags=list(playbook.flags) if full else [],
        record=asked,
        assignee="U0SAMPLE" if full else None,
        suggested_class=first_class if full else None,
        suggested_reason="sample reason" if full else None,
        contract_violation=not full and playbook.policy.id_contract != "none",
        documentation_gap="sample gap" if full else None,
        multi_prefix=full,
        occurrence_count=2,
        first_seen=_NOW,
        last_seen=_NOW,
        classify_deadline=_NOW,
        classified_at=_NOW if full else None,
        acknowledged_at=_NOW if full else None,
        resolved_at=_NOW if full else None,
        resolution_note="sample root cause" if full else None,
        bead_id="ci-1" if full else None,
        bead_state="filed" if full else "none",
        created_at=_NOW,
        updated_at=_NOW,
    )
    run = Run(
        id=1,
        provider="github",
        repository="acme/sample",
        run_id="9187",
        url="https://github.com/acme/sample/actions/runs/9187" if full else None,
        suite=incident.suite,
        branch="main" if full else None,
        sha="3f2c9a1b7d4e" if full else None,
        finished_at=_NOW,
        received_at=_NOW,
        results_total=3,
        results_failed=2,
    )
    return _Sample(incident, run)


def _post_payloads(playbook: Playbook, sample: _Sample, full: bool) -> dict[str, dict[str, Any]]:
    classes = list(playbook.classes)
    severities = list(playbook.severities)
    milestone = next((m for m in playbook.milestones if not m.resolves), playbook.milestones[-1])
    flag = next(iter(playbook.flags), None)
    actor = "U0SAMPLE"
    fields = {f.key: "sample" for f in milestone.asks} if full else {}
    payloads: dict[str, dict[str, Any]] = {
        "acknowledged": {"actor": actor},
        "assigned": {"actor": actor, "assignee": "U0OTHER"},
        "classified": {
            "class": classes[0],
            "previous": classes[-1] if full else None,
            "actor": actor,
            # a run of classifications folded into one post (slackbot/incidents/coalescing.py)
            **(
                {
                    "sequence": [
                        {"class": classes[-1], "actor": "U0OTHER"},
                        {"skipped": 3},  # a long run names its first and last and counts the rest
                        {"class": classes[0], "actor": actor},
                    ]
                }
                if full
                else {}
            ),
        },
        "severity": {"actor": actor, "severity": severities[0], "previous": severities[-1]},
        "milestone": {"actor": actor, "milestone": milestone.key, "note": "sample" if full else "", "fields": fields},
        "resolved": {"actor": actor, "note": "sample root cause", "fields": fields},
        "occurrence": {"run_pk": 1, "added": 2},
        "reminder": {"quiet": "1h", "count": 1},
        "bead_filed": {"bead": "ci-1", "url": "https://example.com/ci-1" if full else None},
        "bead_failed": {"error": "bd: sample error"},
        "paged": {"reason": "unclassified", "level": 1, "note": "", "actor": actor, "targets": []},
    }
    if flag is not None:
        payloads["flag"] = {"actor": actor, "flag": flag, "on": full}
    return payloads


def _notes(sample: _Sample, full: bool) -> dict[str, dict[str, Any]]:
    return {
        "alert_runbook": {
            "alertname": "SampleAlert",
            "summary": "sample" if full else "",
            "description": "sample" if full else "",
            "detection": "metric > 1",
            "has_runbook": full,
            "steps": [{"phase": "detect", "text": "sample"}] if full else [],
            "runbook_url": "https://example.com/runbook" if full else "",
            "alerts": ["instance=a"] if full else [],
        },
        "alert_update": {"firing": ["instance=a"] if full else [], "resolved": [], "note": ""},
        "validation": {"url": sample.run.url, "label": "acme/sample #9188", "branch": "main", "sha": "3f2c9a1b7d4e"},
        "validation_interrupted": {
            "url": sample.run.url,
            "label": "acme/sample #9188 attempt 1",
            "counted": 1,
            "needed": 3,
            "branch": "main" if full else "",
        },
    }


def _checks(playbook: Playbook, playbooks: Playbooks, usage: list[str]) -> Iterator[tuple[str, Callable[[], object]]]:
    """(template file, render call) for every template the bot renders for this playbook."""
    for full in (True, False):
        sample = _sample(playbook, full=full)
        incident, run = sample.incident, sample.run
        for name, payload in _post_payloads(playbook, sample, full).items():
            context = post_context(playbook, name, {"template": name, **payload}, incident, run)
            yield f"slack/{name}.j2", partial(render_named, playbook, name, **context)
        for name, payload in _notes(sample, full).items():
            yield f"slack/{name}.j2", partial(render_named, playbook, name, **note_context(playbook, payload, incident))
        escalation = {
            "run_link": Mrkdwn("<https://example.com|run>"),
            "prefix_count": 2,
            "prefixes": "A-*, B-*",
            "mentions": Mrkdwn("<!subteam^S0SAMPLE>"),
            "incidents": "INC-1, INC-2",
        }
        yield "slack/run_escalation.j2", partial(render_named, playbook, "run_escalation", **escalation)
        view = CardView(playbook, incident, run, command="python3 check.py" if full else None)
        yield "slack/card_summary.j2", partial(render_named, playbook, "card_summary", **summary_context(view))
        reply = {
            "key": "INC-7",
            "ids": Mrkdwn("`A-1 / B-1`"),
            "channel": Mrkdwn("<#C0SAMPLE>"),
            "status": "open",
            "class": "",
            "created": full,
        }
        answer = {
            "incidents": [reply] if full else [],
            "validated": [reply] if full else [],
            "duplicate": not full,
            "note": "sample" if full else "",
        }
        yield "slack/alert_reply.j2", partial(render_named, playbook, "alert_reply", **answer)
        timeline = [
            TimelineEvent(
                id=1, incident_id=7, at=_NOW, actor="U0SAMPLE", source="button", kind="classified", message="s", data={}
            )
        ]
        occurrence = Occurrence(
            id=1,
            incident_id=7,
            run_pk=1,
            occurrence_key="k",
            status="failed",
            message="sample" if full else None,
            command="python3 check.py" if full else None,
            evidence=[{"kind": "log", "path": "logs/x"}] if full else [],
            key_entity_ids={"orgId": "org-a"} if full else {},
            occurred_at=_NOW,
        )
        executions = [
            RunbookExecution(
                id=1,
                incident_id=7,
                runbook="response",
                runbook_version=1,
                step_index=0,
                step_text="s",
                result="done",
                actor="U0SAMPLE",
                at=_NOW,
            )
        ]
        record = RecordInputs(
            playbook,
            incident,
            run if full else None,
            "expected",
            "observed",
            occurrence.command,
            "log" if full else "",
            timeline,
        )
        yield "bead.md.j2", partial(render_record, record)
        inputs = PostmortemInputs(
            playbook, incident, timeline, [occurrence], [run], executions if full else [], 1, _NOW
        )
        yield "postmortem.md.j2", partial(render_postmortem, inputs)
    if output_path(playbook) is not None:
        yield "runbook.md.j2", partial(render_document, playbook, playbooks, usage)


def _located(playbook: Playbook, root: Path, template: str, exc: BaseException) -> tuple[str, int]:
    """The template file and line an error happened on, as ``triagebot check`` shows them (from
    the runbooks directory)."""
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        return _relative(Path(exc.filename), root), exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2"):
            return _relative(Path(frame.filename), root), frame.lineno or 1
    found = next((d / template for d in playbook.template_dirs if (d / template).is_file()), None)
    return _relative(found, root) if found else f"templates/{template}", 1


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def check_templates(playbooks: Playbooks, usage: list[str]) -> list[ConfigProblem]:
    problems: dict[tuple[str, int, str], ConfigProblem] = {}
    for playbook in playbooks:
        for template, render in _checks(playbook, playbooks, usage):
            try:
                render()
            except TemplateNotFound as exc:
                dirs = ", ".join(str(d) for d in playbook.template_dirs)
                problem = ConfigProblem(f"templates/{template}", 1, "(template)", f"missing: {exc.name} in {dirs}")
                problems.setdefault((problem.file, 1, problem.message), problem)
            except Exception as exc:  # a template can fail in any way Python can; report them all
                file, line = _located(playbook, playbooks.directory, template, exc)
                kind = "undefined variable" if isinstance(exc, UndefinedError) else "template error"
                message = f"{kind} in the {playbook.name} playbook: {exc}"
                problems.setdefault((file, line, str(exc)), ConfigProblem(file, line, "(template)", message))
    return list(problems.values())


def check_directory(directory: Path) -> list[ConfigProblem]:
    """Everything ``triagebot check`` says about a runbooks directory: the data first, then (when
    the data is valid) every template rendered against it."""
    from slackbot.config import RunbookError, load_playbooks
    from slackbot.slack.replies import usage_lines

    try:
        playbooks = load_playbooks(directory)
    except RunbookError as exc:
        return exc.problems
    return check_templates(playbooks, usage_lines())
