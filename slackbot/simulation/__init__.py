"""``triagebot simulate``: the founder-absence simulation (seed 004).

Days of CI traffic, outages and crashes, with nobody at the keyboard (or with simulated
responders), driven through the real bot in virtual time; then the bot's promises are checked.
Start at :mod:`slackbot.simulation.simulate`; :mod:`slackbot.simulation.runner` drives the bot.
"""

from slackbot.simulation.records import SimulationConfig
from slackbot.simulation.report import SimulationResult
from slackbot.simulation.simulate import simulate

__all__ = ["SimulationConfig", "SimulationResult", "simulate"]
