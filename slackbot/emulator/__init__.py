"""Local stand-ins for the demo, the simulation and the tests: a Slack (below) and a bd
(``fake_bd``, ``beads``).

A local Slack: Web API, workspace state, a user to act as, HTML views.

``SlackEmulator`` answers the Web API methods the bot calls with Slack's shapes and errors (including
Block Kit limits and per-channel rate limits), keeps channels, threads, views and ephemerals, sends
signed slash commands, clicks and events to the bot, and shows each channel at ``web_url``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slackbot.emulator.actor import ActorResponse
    from slackbot.emulator.server import SlackEmulator
    from slackbot.emulator.state import Message, RecordedCall, UploadedFile, View

__all__ = ["ActorResponse", "Message", "RecordedCall", "SlackEmulator", "UploadedFile", "View"]

# Imported on first use, not with the package: the bd double (``fake_bd``) lives in this package
# and is started once per bd call, and the emulator's imports (aiohttp, httpx, slack_sdk) cost
# about 0.35 s of CPU at every start.
_HOMES = {
    "ActorResponse": "actor",
    "SlackEmulator": "server",
    "Message": "state",
    "RecordedCall": "state",
    "UploadedFile": "state",
    "View": "state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"slackbot.emulator.{home}"), name)
