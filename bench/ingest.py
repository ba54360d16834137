"""Ingest throughput: reports of 1,000 and 10,000 failing results into SQLite.

Target (issue 2): 10,000 results in under 2 s, and 10x the results costing at most about 10x the
time. Each size runs on a fresh database file, three times; the best run counts (the others show
the noise). Results are spread over all taxonomy prefixes, with a share of repeats so grouping is
exercised, as a real nightly run would be.

``--baseline REV`` also measures a git revision, side by side in one run: the same report in this
tree and in a worktree of REV, each in a fresh process, alternating, and writes the ratio (these
machines are shared: only ratios measured together mean anything). Both processes first import
the server, so both carry the heap a running bot carries.

Usage: ``.venv/bin/python bench/ingest.py [--baseline REV] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["SCH", "BID", "NOS", "HLT", "API", "UI", "ADV"]
INVARIANTS = ["TENANT", "IDEMP", "NOTIF", "ASSIGN", "STATE"]


def report_json(count: int, run_id: str) -> dict[str, Any]:
    results = []
    for n in range(count):
        distinct = n % max(1, count * 4 // 5)  # 20% of results repeat an earlier fingerprint
        scenario = f"{SCENARIOS[distinct % 7]}-{distinct:05d}"
        invariant = f"{INVARIANTS[distinct % 5]}-{distinct % 97:03d}"
        results.append(
            {
                "scenarioId": scenario,
                "invariantId": invariant,
                "status": "failed",
                "message": f"expected 1 row for org-a, found {n % 7 + 2}",
                "testFile": f"tests/integration/{scenario.split('-')[0].lower()}.test.ts",
                "testName": f"{scenario} {invariant} case {n}",
                "organizationUnderTest": "org-a",
                "keyEntityIds": {"orgId": "org-a", "driverId": f"drv-{n}"},
                "evidence": [{"kind": "db_snapshot", "path": f"evidence/{scenario}/{n}.json"}],
            }
        )
    return {
        "schemaVersion": 1,
        "run": {"repository": "acme/dispatch", "runId": run_id, "suite": "nightly", "branch": "main"},
        "results": results,
    }


def _product() -> tuple[Any, Any, Any]:
    """(load the shipped runbooks, the ingest service class, the report model) of the tree on
    sys.path. Revisions before playbooks (issue 12) named them differently."""
    from slackbot.settings import DEFAULT_RUNBOOKS

    try:
        from slackbot.config import load_playbooks as load
        from slackbot.sources.ingest import IngestService
        from slackbot.sources.report import Report
    except ImportError:  # before playbooks
        from slackbot.report import Report  # type: ignore[import-not-found,no-redef]
        from slackbot.services.ingest import IngestService  # type: ignore[import-not-found,no-redef]

        from slackbot.config import load_runbook as load  # type: ignore[attr-defined,no-redef]
    return (lambda: load(DEFAULT_RUNBOOKS)), IngestService, Report


def measure(count: int, runs: int = 3) -> list[float]:
    from slackbot.clock import SystemClock
    from slackbot.db.engine import make_engine
    from slackbot.db.migrate import upgrade

    load, service_class, report_model = _product()
    playbooks = load()
    times = []
    for attempt in range(runs):
        report = report_model.model_validate(report_json(count, f"bench-{count}-{attempt}"))
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            upgrade(engine)
            service = service_class(playbooks, SystemClock())
            start = time.perf_counter()
            result = service.ingest_report(engine, report, source="bench")
            times.append(time.perf_counter() - start)
            assert result.failures == count
            engine.dispose()
    return times


def _child(count: int) -> None:
    """One process's measurement, for --baseline: the best of three, printed."""
    # the heap of a running bot: every full collection walks it too
    import slackbot.app
    import slackbot.server  # noqa: F401

    print(min(measure(count)))


def _run_child(tree: Path, count: int) -> float:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(count)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def compare(revision: str, rounds: int) -> list[str]:
    """Rows of a before/after table: each size, both trees, ``rounds`` alternating processes."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), revision], check=True)
        try:
            for count in (1_000, 10_000):
                ours, theirs = [], []
                for _ in range(rounds):
                    theirs.append(_run_child(worktree, count))
                    ours.append(_run_child(ROOT, count))
                ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
                rows.append(
                    f"| {count:,} | {statistics.median(theirs):.3f} s | {statistics.median(ours):.3f} s "
                    f"| {statistics.median(ratios):.2f}x | {min(ratios):.2f}x to {max(ratios):.2f}x |"
                )
                print(rows[-1])
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="a git revision to measure side by side with this tree")
    parser.add_argument("--rounds", type=int, default=7, help="alternating processes per size (--baseline)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(Path.cwd()))
        _child(args.child)
        return
    sys.path.insert(0, str(ROOT))
    from bench.benchdoc import update_section

    rows = []
    best: dict[int, float] = {}
    for count in (1_000, 10_000):
        times = measure(count)
        best[count] = min(times)
        rows.append(
            f"| {count:,} | {best[count]:.3f} s | {', '.join(f'{t:.3f}' for t in times)} | {count / best[count]:,.0f} |"
        )
        print(f"{count:>6} results: best {best[count]:.3f}s  runs {[round(t, 3) for t in times]}")
    ratio = best[10_000] / best[1_000]
    verdict_time = "meets" if best[10_000] < 2 else "MISSES"
    verdict_scale = "meets" if ratio <= 11 else "MISSES"
    baseline = ""
    if args.baseline:
        label = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h (%cs)", args.baseline], capture_output=True, text=True
        ).stdout.strip()
        compared = compare(args.baseline, args.rounds)
        baseline = f"""
Side by side with `{label}` ({args.rounds} alternating processes per size, each the best of three
ingests, after importing the server; the ratio is this tree's time over the baseline's, per round):

| failing results | baseline (median) | this tree (median) | ratio (median) | ratio range |
|---:|---:|---:|---:|---|
{chr(10).join(compared)}
"""
    body = f"""## Ingest (bench/ingest.py)

One report ingested in one transaction into a fresh SQLite file (WAL): run upsert, occurrence rows,
grouping into incidents (20% of results repeat a fingerprint), routing each to its playbook,
contract and taxonomy checks, timeline rows, card outbox rows and classification timers. Parsing
the JSON is not timed.

| failing results | best | all runs (s) | results/s |
|---:|---:|---|---:|
{chr(10).join(rows)}

- 10,000 results in {best[10_000]:.2f} s: {verdict_time} the target (< 2 s).
- 10x the results cost {ratio:.1f}x the time: {verdict_scale} the target (about 10x at most).
{baseline}"""
    update_section("ingest", body)
    print(f"ratio {ratio:.2f}; wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
