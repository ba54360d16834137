"""Bead trackers: where the bot files one ticket ("bead") per incident.

``tracker`` holds the port (:class:`BeadTracker`, value types, :class:`TrackerError`); ``bd`` and
``github`` hold the two adapters. Import the adapters from their modules; this package re-exports
only what every caller needs.
"""

from slackbot.beads.bd import SUPPORTED_BD, BdTracker, check_bd_version
from slackbot.beads.github import GitHubIssuesTracker
from slackbot.beads.tracker import Bead, BeadRequest, BeadTracker, TrackerError

__all__ = [
    "SUPPORTED_BD",
    "BdTracker",
    "Bead",
    "BeadRequest",
    "BeadTracker",
    "GitHubIssuesTracker",
    "TrackerError",
    "check_bd_version",
]
