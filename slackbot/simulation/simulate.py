"""``triagebot simulate``: run the days, then check the invariants and count (the entry point)."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from slackbot.config import load_playbooks
from slackbot.db.engine import make_engine
from slackbot.simulation.invariants import Facts, check_all
from slackbot.simulation.records import SimulationConfig
from slackbot.simulation.report import SimulationResult, numbers
from slackbot.simulation.runner import Simulation, quiet_logs


def simulate(config: SimulationConfig) -> SimulationResult:
    """Run the simulation, then check the invariants and count, while its database still exists
    (a temporary work directory is removed on return)."""
    with quiet_logs(), ExitStack() as stack:
        workdir = config.workdir
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="triagebot-sim-")))
        workdir.mkdir(parents=True, exist_ok=True)
        run = Simulation(config).run(stack, workdir)
        engine = make_engine(run.database_url)
        try:
            playbooks = run.playbooks or load_playbooks(run.runbook_dir)
            facts = Facts.load(engine, playbooks.default, list(playbooks))
        finally:
            engine.dispose()
        return SimulationResult(run, check_all(run, facts), numbers(run, facts))
