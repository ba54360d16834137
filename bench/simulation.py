"""How long the founder-absence simulation takes: 14 simulated days, both worlds.

Targets (issue 15): ``triagebot simulate --days 14`` under 20 s of wall time on the 2-core machine,
``--days 30`` under 45 s, so that CI can run it on every change.

What runs: exactly what the command runs (``slackbot.simulation.simulate``), with the default
runbooks and faults, once with nobody answering and once with ``--responders``, for 14 and 30 days.
The shipped runbooks are one set (``runbooks/``: integration-triage, contract-drift,
library-incidents, operations); ``--runbooks`` takes such a directory whose default playbook has
integration-triage's classes and taxonomy (the stories are written for them), so every row runs all
four playbooks at once: CI traffic to integration-triage, the operations playbook's alerts. Real time and CPU
time (the process's, all threads) are reported with the amount of work done, since real time on a
shared machine also measures the neighbours. Usage: ``.venv/bin/python bench/simulation.py
[--days 14] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.benchdoc import update_section
from slackbot.simulation import SimulationConfig, simulate

TARGETS = {14: 20.0, 30: 45.0}  # days -> seconds of wall time


def measure(days: int, seed: int, responders: bool) -> dict[str, float | int | bool]:
    with tempfile.TemporaryDirectory() as workdir:
        wall, cpu = time.perf_counter(), time.process_time()
        result = simulate(SimulationConfig(days=days, seed=seed, responders=responders, workdir=Path(workdir)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    bot = result.figures["bot"]
    return {
        "wall": wall,
        "cpu": cpu,
        "passed": result.passed,
        "runs": result.figures["ci"]["runs"],
        "incidents": bot["incidents"],
        "effects": bot["outbox_rows"],
        "reminders": bot["reminders"],
        "restarts": bot["restarts"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    missed: list[str] = []
    for days, responders in ((14, False), (14, True), (30, False), (30, True)):
        figures = measure(days, args.seed, responders)
        world = f"{days} days, " + ("with responders" if responders else "nobody answering")
        print(world, figures)
        target = TARGETS[days]
        if figures["wall"] >= target:
            missed.append(world)
        rows.append(
            f"| {world} | {figures['wall']:.1f} s | {target:.0f} s | {figures['cpu']:.1f} s | {figures['runs']} | "
            f"{figures['incidents']} | {figures['effects']} | {figures['restarts']} | "
            f"{'PASS' if figures['passed'] else 'FAIL'} |"
        )
    body = "\n".join(
        [
            "## Founder-absence simulation (bench/simulation.py)",
            "",
            f"`triagebot simulate --days N --seed {args.seed}`: the real bot (services, outbox, timers, the Slack "
            "inbox, card rendering; the Slack emulator over HTTP, bd double, fake PagerDuty; CI reports as JSON and "
            "JUnit, the playbooks' alerts through the Alertmanager webhook) driven through the days in virtual "
            "time, with the default faults and crashes, then every promise checked (from the outside too).",
            "",
            "| run | real time | target | CPU time | CI runs | incidents | outbox effects | restarts | invariants |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            (f"**The targets are not met** ({', '.join(missed)})." if missed else "All targets are met."),
            "",
            "Every row runs the shipped runbook set (`runbooks/`: the four playbooks at once; CI traffic goes to "
            "integration-triage, the operations playbook's alerts through Alertmanager's webhook).",
            "",
            f"Measured with a load average of {load:.1f} at the start on the 2 cores (five other engineers' work "
            f"on the machine; {os.getloadavg()[0]:.1f} at the end): real time includes waiting for those processes; "
            "CPU time is this process's own work (all its threads: the driver, the bot, its server thread and the "
            "Slack emulator).",
            "",
            "The bot's cost per effect, which this measures: claiming and settling an outbox row are prebuilt "
            "statements on a plain connection (the claim's UPDATE returns the rows it won; before, a second "
            "read loaded them and every statement was built anew through the ORM), timers are found and claimed "
            "by prebuilt statements, a card view is four prebuilt reads and a thread post, DM or page reads only "
            "its incident and run. Those reads run in a read-only transaction that on SQLite neither waits for "
            "the write lock nor holds it (a waiting writer sleeps in SQLite's busy handler, 1 to 100 ms at a "
            "time, and the reads took the lock as if they wrote). Before (docs/benchmarks.md at 159e42b, load "
            "3.4): 36.6 s / 27.8 s CPU for 14 days nobody answering, 50.1 s with responders, 72.5 s / 52.1 s "
            "for 30 days, 90.9 s with responders; that checkout measured again beside this one at load 4.5: "
            "52.1 s / 34.8 s CPU for 14 days. A timer firing writes its reminders' and escalations' rows "
            "together and re-arms their timers with one prebuilt UPDATE (a reminder no longer reads and "
            "flushes its timer through the ORM), and a card's buttons and menus are drawn through slack_sdk's "
            "models once per state and reused. What is left is mostly the HTTP round trips (Slack emulator, "
            "PagerDuty), the ORM loading incidents for the timer firing and the deliveries, the hand-offs to "
            "the outbox's database threads, and each process's start (imports, the playbooks' YAML).",
        ]
    )
    update_section("simulation", body)
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
