"""The running bot of the Slack tests (emulator, real HTTP, fake PagerDuty), shared here."""

from tests.slack.conftest import bot

__all__ = ["bot"]
