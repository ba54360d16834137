"""What the outbox's Slack client logs: its DEBUG dumps when DEBUG is configured, nothing otherwise."""

from __future__ import annotations

import logging
import uuid

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.outbox.slack_deliveries import SlackDeliveries
from tests.factories import result
from tests.outbox.rig import NIGHTLY, Rig, ingest


def _deliver(rig: Rig, logger: logging.Logger) -> None:
    client = AsyncWebClient(token=rig.emulator.bot_token, base_url=rig.emulator.base_url, logger=logger)
    worker = rig.worker("w1")
    worker.handlers.update(SlackDeliveries(rig.engine, client, rig.playbooks, rig.clock, "w1").handlers())
    ingest(rig, result("BID-001", "TENANT-001"))
    rig.drain(worker)
    assert len(rig.emulator.messages(NIGHTLY)) == 1


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
def test_the_slack_clients_request_dumps_are_logged_exactly_when_debug_is_configured(
    rig: Rig, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    name = f"tests.slack-client.{uuid.uuid4().hex}"  # its own logger: levels set here stay here
    caplog.set_level(level)  # the process's logging, configured before the workers are built
    _deliver(rig, logging.getLogger(name))
    dumps = [r for r in caplog.records if r.name == name and r.getMessage().startswith("Sending a request")]
    if level == logging.DEBUG:
        assert dumps and "chat.postMessage" in dumps[0].getMessage()
    else:
        assert dumps == []
