"""Planted bugs that the simulation must catch: the proof that a passing run means something.

Each mutant is one small, plausible mistake in the code the promises depend on (the timed rule,
its timer, paging, grouping, the id contract, beads), written as text replacements in named files.
``run_mutants`` copies the package to a temporary directory, applies one mutant there and runs
``triagebot simulate`` from that copy in a subprocess (``PYTHONPATH`` puts the copy first), so the
working tree is never modified. A mutant is *killed* when the simulation exits 1 with a broken
promise; it *survived* when the simulation passed anyway (the checks missed a real bug). A crash
(exit 2 or a traceback) also counts as killed, and is reported as such.

A mutant that the unattended run does not kill (it only shows when people classify) is run again
with ``--responders``. ``triagebot simulate --mutants`` runs the whole list; ``make mutation`` too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import slackbot

PACKAGE = Path(slackbot.__file__).resolve().parent
SOURCE_ROOT = PACKAGE.parent  # the directory holding slackbot/ (and handlers/ in a checkout)


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str  # escalation, timer, paging, routing, grouping, contract, bead
    bug: str  # what the planted bug does, in words
    edits: tuple[tuple[str, str, str], ...]  # (file under slackbot/, old text, new text)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "deadline-x3",
        "timer",
        "the classification deadline is three times classify_within (issue 15's planted bug)",
        (
            (
                "incidents/opening.py",
                '"classify_deadline": now + within if',
                '"classify_deadline": now + 3 * within if',
            ),
        ),
    ),
    Mutant(
        "repeat-doubled",
        "timer",
        "the next escalation level comes twice repeat_every later",
        (("incidents/timers.py", '"due_at": utc(now + repeat_every)', '"due_at": utc(now + 2 * repeat_every)'),),
    ),
    Mutant(
        "one-level-short",
        "escalation",
        "the timed rule stops one repeat before max_repeats",
        (
            (
                "incidents/timers.py",
                "if step + 1 < len(policy.levels) + policy.max_repeats else None",
                "if step + 2 < len(policy.levels) + policy.max_repeats else None",
            ),
        ),
    ),
    Mutant(
        "level-stuck",
        "escalation",
        "every level pages the first level's targets (the release maintainer is never added)",
        (
            (
                "incidents/timers.py",
                "level = policy.levels[min(step, len(policy.levels) - 1)]",
                "level = policy.levels[0]",
            ),
        ),
    ),
    Mutant(
        "escalates-owner",
        "escalation",
        "the timed rule pages the class owner instead of the roles the level names",
        (
            (
                "incidents/timers.py",
                "targets_for(playbook, incident, list(level.notify))",
                'targets_for(playbook, incident, ["owner"])',
            ),
        ),
    ),
    Mutant(
        "keeps-escalating",
        "escalation",
        "classifying does not stop the timed rule: a classified incident is still paged as unclassified",
        (
            (
                "incidents/core.py",
                "does not restart it.\n"
                "    cancel_timer(turn.session, subject=timer_subject(turn.id), kind=TimerKind.CLASSIFY)",
                "does not restart it.",
            ),
            (
                "incidents/timers.py",
                "if incident.status != IncidentStatus.OPEN or incident.failure_class is not None or policy is None:",
                "if incident.status != IncidentStatus.OPEN or policy is None:",
            ),
            (
                "outbox/paging_deliveries.py",
                'return not (payload.get("reason") == "unclassified" and incident.failure_class is not None)',
                "return True",
            ),
        ),
    ),
    Mutant(
        "no-escalation-dm",
        "paging",
        "an escalation page skips the on-call person's DM",
        (
            (
                "incidents/paging.py",
                "        user = page_target.dm_user\n",
                '        user = page_target.dm_user if reason != "unclassified" else None\n',
            ),
        ),
    ),
    Mutant(
        "no-escalation-pagerduty",
        "paging",
        "an escalation page never reaches PagerDuty",
        (
            (
                "incidents/paging.py",
                "        if page_target.target.pagerduty_routing_key:\n",
                '        if page_target.target.pagerduty_routing_key and reason != "unclassified":\n',
            ),
        ),
    ),
    Mutant(
        "severity-pages-one-role",
        "paging",
        "a severity that pages several roles pages only the first",
        (
            (
                "incidents/core.py",
                "targets = targets_for(turn.playbook, incident, list(rule.pages))\n"
                '        enqueue_page(turn.effects, incident, targets, reason="severity", step=severity)',
                "targets = targets_for(turn.playbook, incident, list(rule.pages)[:1])\n"
                '        enqueue_page(turn.effects, incident, targets, reason="severity", step=severity)',
            ),
        ),
    ),
    Mutant(
        "multi-prefix-off-by-one",
        "escalation",
        "a run must span more than multi_prefix_threshold prefixes to escalate",
        (
            (
                "sources/ingest.py",
                "if len(found) >= playbooks[name].policy.multi_prefix_threshold",
                "if len(found) > playbooks[name].policy.multi_prefix_threshold",
            ),
        ),
    ),
    Mutant(
        "group-by-scenario",
        "grouping",
        "failures are grouped by scenario alone: two invariants of one scenario share an incident",
        (
            (
                "domain/ids.py",
                'basis = f"ids|{repository}|{scenario_id}|{invariant_id}"',
                'basis = f"ids|{repository}|{scenario_id}"',
            ),
        ),
    ),
    Mutant(
        "group-idless-together",
        "grouping",
        "every failure without ids falls into one incident",
        (
            (
                "domain/ids.py",
                'basis = f"test|{repository}|{normalise_test_identity(test_identity)}"',
                'basis = f"test|{repository}"',
            ),
        ),
    ),
    Mutant(
        "contract-needs-both-missing",
        "contract",
        "a failure is a contract violation only when both ids are missing",
        (
            (
                "config/playbook.py",
                "return not (scenario_id and invariant_id)",
                "return not (scenario_id or invariant_id)",
            ),
        ),
    ),
    Mutant(
        "severity-files-no-bead",
        "bead",
        "a severity with file_bead does not file one",
        (
            (
                "incidents/core.py",
                '    if rule.file_bead:\n        beads.auto_file(incident, turn.effects, "severity")',
                '    if rule.file_bead and False:\n        beads.auto_file(incident, turn.effects, "severity")',
            ),
        ),
    ),
    Mutant(
        "failed-step-pages-nobody",
        "paging",
        "a runbook step marked Failed escalates on the card but pages nobody (no DM, no PagerDuty)",
        (
            (
                "incidents/checklists.py",
                "targets_for(playbook, incident, failed_step_roles(playbook)),",
                "[],",
            ),
        ),
    ),
    Mutant(
        "playbook-cards-to-default-channel",
        "routing",
        "cards of every playbook but the default one go to the workspace's default channel, not their routing's",
        (
            (
                "incidents/opening.py",
                '"channel": playbook.channel_for_suite(opening.suite),',
                '"channel": playbook.channel_for_suite(opening.suite)\n'
                "        if playbook.name == playbook.workspace.default\n"
                "        else playbook.workspace.default_channel,",
            ),
        ),
    ),
    Mutant(
        "bead-priority-off-by-one",
        "bead",
        "beads are filed one priority lower than the severity says",
        (
            (
                "documents/record.py",
                "return playbook.severity_rule(incident.severity).bead_priority",
                "return playbook.severity_rule(incident.severity).bead_priority + 1",
            ),
        ),
    ),
)


@dataclass
class Verdict:
    mutant: Mutant
    killed: bool
    how: str  # the promises that broke, or why the run failed
    seconds: float
    runs: list[str] = field(default_factory=list)  # which worlds ran ("unattended", "responders")

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.mutant.name,
            "area": self.mutant.area,
            "bug": self.mutant.bug,
            "killed": self.killed,
            "how": self.how,
            "seconds": round(self.seconds, 1),
            "runs": self.runs,
        }


class MutantError(Exception):
    """A mutant no longer applies: the code it patches changed. Fix the list, not the code."""


def apply(mutant: Mutant, root: Path) -> None:
    """Apply ``mutant`` to the copy of the package under ``root``; every old text must occur once."""
    for relative, old, new in mutant.edits:
        path = root / "slackbot" / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise MutantError(
                f"mutant {mutant.name}: {relative} contains the text to replace {text.count(old)} times "
                f"(expected once): {old!r}"
            )
        path.write_text(text.replace(old, new))


def _copy(root: Path) -> None:
    shutil.copytree(PACKAGE, root / "slackbot", symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _simulate(
    root: Path, days: int, seed: int, runbooks: Path, responders: bool, faults: bool, out: Path
) -> tuple[int, str]:
    # The copy first on the path; the checkout (handlers/) after it. The child proves which
    # slackbot it imported before running, so a mutant never runs against the working tree.
    code = (
        "import sys, slackbot; from pathlib import Path\n"
        f"assert Path(slackbot.__file__).resolve().is_relative_to({str(root.resolve())!r}), slackbot.__file__\n"
        "from slackbot.cli import main\n"
        "sys.argv = ['triagebot'] + sys.argv[1:]\n"
        "main()\n"
    )
    args = [
        sys.executable,
        "-c",
        code,
        "simulate",
        "--days",
        str(days),
        "--seed",
        str(seed),
        "--runbooks",
        str(runbooks),
        "--json",
        str(out),
        *(["--responders"] if responders else []),
        *([] if faults else ["--no-faults"]),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_", "PAGERDUTY_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(SOURCE_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900, cwd=root)
    return done.returncode, done.stderr


def _broken(out: Path) -> str:
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError):
        return ""
    parts = []
    for check in data.get("invariants", []):
        if not check.get("passed"):
            first = (check.get("violations") or [""])[0]
            parts.append(f"{check['key']} ({first[:160]})")
    return "; ".join(parts)


BASELINE = Mutant("baseline", "none", "no planted bug: the unmodified copy must pass, or no verdict means anything", ())


def run_mutant(mutant: Mutant, *, days: int, seed: int, runbooks: Path, faults: bool = True) -> Verdict:
    began = time.monotonic()
    runs: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"triagebot-mutant-{mutant.name}-") as tmp:
        root = Path(tmp)
        _copy(root)
        apply(mutant, root)
        for responders in (False, True):
            runs.append("responders" if responders else "unattended")
            out = root / f"report-{len(runs)}.json"
            code, stderr = _simulate(root, days, seed, runbooks, responders, faults, out)
            if code == 1 and (broken := _broken(out)):
                return Verdict(mutant, True, broken, time.monotonic() - began, runs)
            if code != 0:
                tail = stderr.strip().splitlines()[-1:] or [f"exit {code}"]
                return Verdict(mutant, True, f"the simulation failed: {tail[0][:200]}", time.monotonic() - began, runs)
    return Verdict(mutant, False, "every promise held", time.monotonic() - began, runs)


def run_mutants(
    mutants: Sequence[Mutant] = MUTANTS,
    *,
    days: int = 4,
    seed: int = 7,
    runbooks: Path,
    faults: bool = True,
    progress: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """The baseline first: a copy that fails without any planted bug (a runbook the copy cannot
    read, a broken checkout) would otherwise make every mutant look killed."""
    baseline = run_mutant(BASELINE, days=days, seed=seed, runbooks=runbooks, faults=faults)
    if baseline.killed:
        raise MutantError(f"the simulation fails without any planted bug ({baseline.how}); fix that first")
    verdicts = []
    for mutant in mutants:
        verdict = run_mutant(mutant, days=days, seed=seed, runbooks=runbooks, faults=faults)
        verdicts.append(verdict)
        if progress is not None:
            progress(verdict)
    return verdicts


def select(names: Sequence[str]) -> list[Mutant]:
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise MutantError(f"no mutant named {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names] if names else list(MUTANTS)


def markdown(verdicts: Sequence[Verdict], *, days: int, seed: int, wall: float) -> str:
    killed = sum(v.killed for v in verdicts)
    lines = [
        "# Mutation proof of the founder-absence simulation",
        "",
        "Generated by `triagebot simulate --mutants` (`make mutation`): each planted bug below is applied to "
        "a temporary copy of the package (never the working tree), then `triagebot simulate "
        f"--days {days} --seed {seed}` runs against it, unattended first and with `--responders` when the "
        "unattended run passes. A mutant is killed when a promise breaks. The list is "
        "`slackbot/simulation/mutants.py`.",
        "",
        f"**{killed} of {len(verdicts)} mutants killed** in {wall / 60:.1f} min of wall time on the 2-core machine.",
        "",
        "| mutant | area | planted bug | killed | by | runs | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        how = v.how.replace("|", "\\|")
        lines.append(
            f"| `{v.mutant.name}` | {v.mutant.area} | {v.mutant.bug} | {'yes' if v.killed else '**SURVIVED**'} | "
            f"{how} | {', '.join(v.runs)} | {v.seconds:.0f} s |"
        )
    return "\n".join(lines) + "\n"
