"""How long the founder-absence simulation takes: ``triagebot simulate`` as a person runs it.

Targets (issue 15): ``triagebot simulate --days 14`` under 20 s of wall time on the 2-core machine,
``--days 30`` under 45 s, so that CI can run it on every change, on each shipped playbook set.

What runs: the command itself, in a process of its own (imports, start-up and the report included),
with the default faults: the shipped runbook set (``runbooks/``: integration-triage, contract-drift,
library-incidents and operations at once) for 14 and 30 days, nobody answering and with
``--responders``; then each shipped playbook alone (a set holding that playbook and the shipped
workspace, as a team that adopts only one would have) for 14 days, both ways. Wall time and the
CPU time of the command's process and its children are reported with the amount of work done, since
wall time on a shared machine also measures the neighbours. Usage: ``.venv/bin/python
bench/simulation.py [--seed 7] [--no-doc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdoc import update_section  # noqa: E402
from slackbot.simulation.playbook_sets import playbook_names, single_playbook_set  # noqa: E402

TARGETS = {14: 20.0, 30: 45.0}  # days -> seconds of wall time
RUNBOOKS = ROOT / "runbooks"
TRIAGEBOT = Path(sys.executable).parent / "triagebot"


def measure(days: int, seed: int, responders: bool, runbooks: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [str(TRIAGEBOT), "simulate", "--days", str(days), "--seed", str(seed), "--runbooks", str(runbooks)]
        command += ["--json", str(out)] + (["--responders"] if responders else [])
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode not in (0, 1) or not out.exists():
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
        report = json.loads(out.read_text())
    figures = report.get("figures", report)
    bot = figures["bot"]
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "passed": done.returncode == 0,
        "runs": figures["ci"]["runs"],
        "incidents": bot["incidents"],
        "effects": bot["outbox_rows"],
        "restarts": bot["restarts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-doc", action="store_true", help="print the rows, do not write docs/benchmarks.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows: list[str] = []
    missed: list[str] = []

    def row(label: str, days: int, responders: bool, runbooks: Path) -> None:
        figures = measure(days, args.seed, responders, runbooks)
        world = f"{label}, {days} days, " + ("with responders" if responders else "nobody answering")
        print(world, figures, flush=True)
        target = TARGETS[days]
        if figures["wall"] >= target or not figures["passed"]:
            missed.append(world)
        rows.append(
            f"| {world} | {figures['wall']:.1f} s | {target:.0f} s | {figures['cpu']:.1f} s | {figures['runs']} | "
            f"{figures['incidents']} | {figures['effects']} | {figures['restarts']} | "
            f"{'PASS' if figures['passed'] else 'FAIL'} |"
        )

    for days, responders in ((14, False), (14, True), (30, False), (30, True)):
        row("`runbooks/` (all four)", days, responders, RUNBOOKS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in playbook_names(RUNBOOKS):
            alone = single_playbook_set(RUNBOOKS, name, Path(tmp) / name)
            for responders in (False, True):
                row(f"{name} alone", 14, responders, alone)
    body = "\n".join(
        [
            "## Founder-absence simulation (bench/simulation.py)",
            "",
            f"`triagebot simulate --days N --seed {args.seed} --runbooks SET [--responders]`, the command itself in a "
            "process of its own (imports, start-up and the report included): the real bot (services, outbox, timers, "
            "the Slack inbox, card rendering; the Slack emulator over HTTP and Socket Mode, bd double, fake "
            "PagerDuty and GitHub; CI through every door, the playbooks' alerts through the Alertmanager webhook) "
            "driven through the days in virtual time, with the default faults and crashes, then every promise "
            "checked (from the outside too). The shipped set runs all four playbooks at once; each playbook alone "
            "is a set of that playbook and the shipped workspace, as a team that adopts only one would have "
            "(promises its traffic never plans to test are left out, and the report names them).",
            "",
            "| run | real time | target | CPU time | CI runs | incidents | outbox effects | restarts | invariants |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            (f"**The targets are not met** ({', '.join(missed)})." if missed else "All targets are met."),
            "",
            f"Measured with a load average of {load:.1f} at the start on the {os.cpu_count()} cores "
            f"({os.getloadavg()[0]:.1f} at the end; the machine is shared with other engineers' work): real time "
            "includes waiting for those processes; CPU time is the command's process and its children (the bd "
            "double, the report parser).",
            "",
            "Where the time went before this round (14 days, nobody answering: 22.2 s wall, 16.9 s CPU in-process "
            "at load 0.8, 28 to 31 s on the same machine later in the day): the driver asked what was due next "
            "5,700 times through a pooled SQLAlchemy connection (now one kept autocommit connection with statements "
            "compiled once, 0.03 ms an ask instead of 0.3), each step ran through `asyncio.Runner.run` (which "
            "installs the SIGINT handler every time), full collections walked the 150,000 objects left by the "
            "imports (now frozen before the run), cards were built through slack_sdk's models and dumped for "
            "DEBUG logs nobody wrote (now plain dicts, the menus still through the models once per state), pages "
            "read their incident in two ORM lookups, SQLite's BEGIN went through SQLAlchemy's event, and every "
            "process compiled the project's bytecode anew (`PYTHONDONTWRITEBYTECODE`; `make` now compiles it).",
        ]
    )
    if args.no_doc:
        print(body)
        return
    update_section("simulation", body)
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
