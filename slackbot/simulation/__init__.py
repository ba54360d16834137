"""``triagebot simulate``: the founder-absence simulation (seed 004).

Days of CI traffic, outages and crashes, with nobody at the keyboard (or with simulated
responders), driven through the real bot in virtual time; then the bot's promises are checked.
Start at :mod:`slackbot.simulation.runner`.
"""

from slackbot.simulation.runner import SimulationConfig, SimulationResult, simulate

__all__ = ["SimulationConfig", "SimulationResult", "simulate"]
