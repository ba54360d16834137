"""Local stand-ins for the demo, the simulation and the tests: a Slack (below) and a bd
(``fake_bd``, ``beads``).

A local Slack: Web API, workspace state, a user to act as, HTML views.

``SlackEmulator`` answers the Web API methods the bot calls with Slack's shapes and errors (including
Block Kit limits and per-channel rate limits), keeps channels, threads, views and ephemerals, sends
signed slash commands, clicks and events to the bot, and shows each channel at ``web_url``.
"""

from slackbot.emulator.actor import ActorResponse
from slackbot.emulator.server import SlackEmulator
from slackbot.emulator.state import Message, RecordedCall, UploadedFile, View

__all__ = ["ActorResponse", "Message", "RecordedCall", "SlackEmulator", "UploadedFile", "View"]
