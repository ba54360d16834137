"""The emulator acting as a user toward a bot: signed slash commands, clicks, modals and events.

The "bot" here is a tiny stdlib HTTP server that checks every request with slack_sdk's
``SignatureVerifier`` (what Bolt's ``RequestVerification`` uses), records it, and answers with
whatever the test scripts, including calls back into the emulator's Web API and response_url.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from slackbot.emulator import SlackEmulator, html

CHANNEL = "C0TRIAGE"
SECRET = "actor-test-secret"


@dataclass
class Received:
    """One request the bot got."""

    headers: dict[str, str]
    raw: bytes
    fields: list[tuple[str, str]] = field(default_factory=list)  # form fields, in wire order
    payload: dict[str, Any] = field(default_factory=dict)  # interaction payload or event envelope

    @property
    def form(self) -> dict[str, str]:
        return dict(self.fields)


Reply = Callable[[Received], tuple[int, dict[str, Any] | None]]


class RecordingBot:
    """Verifies signatures like Bolt, records requests, answers through ``reply``."""

    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.received: list[Received] = []
        self.rejected = 0
        self.reply: Reply = lambda request: (200, None)
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not bot.verifier.is_valid_request(raw, headers):
                    bot.rejected += 1
                    self._answer(401, {"error": "invalid request"})
                    return
                request = Received(headers=headers, raw=raw)
                if headers.get("content-type", "").startswith("application/json"):
                    request.payload = json.loads(raw)
                else:
                    request.fields = parse_qsl(raw.decode(), keep_blank_values=True)
                    if "payload" in request.form:
                        request.payload = json.loads(request.form["payload"])
                bot.received.append(request)
                status, body = bot.reply(request)
                self._answer(status, body)

            def _answer(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if body is not None else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def last(self) -> Received:
        return self.received[-1]


@pytest.fixture
def bot() -> Iterator[RecordingBot]:
    bot = RecordingBot(SECRET)
    yield bot
    bot.stop()


@pytest.fixture
def slack(bot: RecordingBot) -> Iterator[SlackEmulator]:
    with SlackEmulator(signing_secret=SECRET, bot_url=bot.url) as emulator:
        emulator.add_channel(CHANNEL, "triage")
        emulator.add_user("U0ALICE", "alice")
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.base_url)


def card_blocks() -> list[dict[str, Any]]:
    return [
        {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*checkout* failed"}},
        {
            "type": "actions",
            "block_id": "card_actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "ack",
                    "text": {"type": "plain_text", "text": "Acknowledge"},
                    "value": "incident:7",
                    "style": "primary",
                },
                {
                    "type": "static_select",
                    "action_id": "assign",
                    "placeholder": {"type": "plain_text", "text": "Assign"},
                    "options": [
                        {"text": {"type": "plain_text", "text": "alice"}, "value": "U0ALICE"},
                        {"text": {"type": "plain_text", "text": "bob"}, "value": "U0BOB"},
                    ],
                },
            ],
        },
    ]


def modal_view() -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "snooze",
        "private_metadata": "incident=7",
        "title": {"type": "plain_text", "text": "Snooze"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "hours",
                "label": {"type": "plain_text", "text": "Hours"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }


# -- slash commands -------------------------------------------------------------------------------


def test_slash_command_is_signed_and_shaped_like_slack(slack: SlackEmulator, bot: RecordingBot) -> None:
    response = slack.slash_command("U0ALICE", CHANNEL, "status checkout")
    assert response.status == 200 and bot.rejected == 0
    request = bot.last
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-slack-signature"].startswith("v0=")
    assert [name for name, _ in request.fields] == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    form = request.form
    assert (form["command"], form["text"], form["channel_name"], form["user_name"]) == (
        "/triage",
        "status checkout",
        "triage",
        "alice",
    )
    assert form["team_id"] == "T0TRIAGE" and form["is_enterprise_install"] == "false"
    assert form["response_url"].startswith(f"{slack.web_url}response/")


def test_wrong_signing_secret_is_rejected_by_the_verifier(bot: RecordingBot) -> None:
    with SlackEmulator(signing_secret="not-the-bots-secret", bot_url=bot.url) as slack:
        slack.add_channel(CHANNEL, "triage")
        assert slack.slash_command("U0ALICE", CHANNEL, "x").status == 401
    assert bot.rejected == 1 and bot.received == []


def test_acting_needs_a_bot_url() -> None:
    with SlackEmulator() as slack:
        slack.add_channel(CHANNEL, "triage")
        with pytest.raises(RuntimeError, match="bot_url"):
            slack.slash_command("U0ALICE", CHANNEL, "x")
        ts, response = slack.post_as_user("U0ALICE", CHANNEL, "stored without a bot")
        assert response is None and slack.messages(CHANNEL)[0].ts == ts


def test_response_url_replies_are_ephemeral_or_in_channel_and_limited(slack: SlackEmulator, bot: RecordingBot) -> None:
    statuses: list[int] = []

    def reply(request: Received) -> tuple[int, dict[str, Any] | None]:
        webhook = WebhookClient(request.form["response_url"])
        statuses.append(webhook.send(text="only you see this", response_type="ephemeral").status_code)
        statuses.append(webhook.send(text="everyone sees this", response_type="in_channel").status_code)
        statuses.extend(webhook.send(text=f"extra {i}").status_code for i in range(4))
        return 200, None

    bot.reply = reply
    assert slack.slash_command("U0ALICE", CHANNEL, "status").status == 200
    assert statuses == [200, 200, 200, 200, 200, 404]  # five uses per response_url
    texts = [e["text"] for e in slack.ephemerals("U0ALICE")]
    assert texts == ["only you see this", "extra 0", "extra 1", "extra 2"]
    assert slack.ephemerals("U0ALICE")[0]["channel"] == CHANNEL
    assert [m.text for m in slack.messages(CHANNEL)] == ["everyone sees this"]
    assert [c.status for c in slack.calls("response_url")] == [200, 200, 200, 200, 200, 404]


def test_command_ack_text_is_shown_to_the_user(slack: SlackEmulator, bot: RecordingBot) -> None:
    bot.reply = lambda request: (200, {"text": "Working on it"})
    slack.slash_command("U0ALICE", CHANNEL, "status")
    [ephemeral] = slack.ephemerals("U0ALICE")
    assert ephemeral["text"] == "Working on it" and ephemeral["source"] == "command_response"


# -- modals ---------------------------------------------------------------------------------------


def test_modal_opened_from_a_command_then_submitted(slack: SlackEmulator, bot: RecordingBot, client: WebClient) -> None:
    opened: list[dict[str, Any]] = []

    def open_modal(request: Received) -> tuple[int, dict[str, Any] | None]:
        opened.append(client.views_open(trigger_id=request.form["trigger_id"], view=modal_view())["view"])
        return 200, None

    bot.reply = open_modal
    slack.slash_command("U0ALICE", CHANNEL, "snooze")
    [view] = opened
    assert [v.id for v in slack.open_modals("U0ALICE")] == [view["id"]]

    values = {"hours": {"value": {"type": "plain_text_input", "value": "oops"}}}
    bot.reply = lambda request: (200, {"response_action": "errors", "errors": {"hours": "a number, please"}})
    response = slack.submit_view("U0ALICE", view["id"], values)
    payload = bot.last.payload
    assert payload["type"] == "view_submission" and payload["response_urls"] == []
    assert payload["user"] == {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0TRIAGE"}
    assert payload["view"]["id"] == view["id"] and payload["view"]["callback_id"] == "snooze"
    assert payload["view"]["private_metadata"] == "incident=7"
    assert payload["view"]["state"]["values"] == values
    assert response.json == {"response_action": "errors", "errors": {"hours": "a number, please"}}
    assert len(slack.open_modals("U0ALICE")) == 1  # errors keep the modal open

    bot.reply = lambda request: (200, None)
    slack.submit_view("U0ALICE", view["id"], {"hours": {"value": {"type": "plain_text_input", "value": "4"}}})
    assert slack.open_modals("U0ALICE") == []
    with pytest.raises(LookupError):
        slack.submit_view("U0ALICE", view["id"], values)


# -- block actions --------------------------------------------------------------------------------


def test_click_button_sends_block_actions_for_the_button_in_the_message(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="card", blocks=card_blocks())["ts"]
    assert slack.click_button("U0ALICE", CHANNEL, ts, "ack").status == 200
    payload = bot.last.payload
    assert bot.last.headers["content-type"] == "application/x-www-form-urlencoded"
    assert bot.last.raw.startswith(b"payload=")
    assert payload["type"] == "block_actions" and payload["api_app_id"] == "A0TRIAGE"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": CHANNEL, "name": "triage"}
    assert payload["message"]["ts"] == ts and payload["message"]["blocks"] == card_blocks()
    assert payload["enterprise"] is None and payload["is_enterprise_install"] is False
    assert payload["state"] == {"values": {}} and payload["trigger_id"]
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "ack",
        "card_actions",
        "incident:7",
        "button",
    )
    assert action["text"] == {"type": "plain_text", "text": "Acknowledge"} and action["action_ts"]

    slack.click_button("U0ALICE", CHANNEL, ts, "ack", value="override")
    assert bot.last.payload["actions"][0]["value"] == "override"
    with pytest.raises(LookupError):
        slack.click_button("U0ALICE", CHANNEL, ts, "no-such-button")
    with pytest.raises(LookupError):
        slack.click_button("U0ALICE", CHANNEL, ts, "assign")  # a select, not a button


def test_button_response_url_replaces_the_original_unless_told_not_to(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="card", blocks=card_blocks())["ts"]

    def keep_original(request: Received) -> tuple[int, dict[str, Any] | None]:
        WebhookClient(request.payload["response_url"]).send(text="noted, thanks", replace_original=False)
        return 200, None

    bot.reply = keep_original
    slack.click_button("U0ALICE", CHANNEL, ts, "ack")
    assert [e["text"] for e in slack.ephemerals("U0ALICE")] == ["noted, thanks"]
    assert slack.messages(CHANNEL)[0].blocks == card_blocks()

    def replace(request: Received) -> tuple[int, dict[str, Any] | None]:
        WebhookClient(request.payload["response_url"]).send(text="acked by alice")
        return 200, None

    bot.reply = replace
    slack.click_button("U0ALICE", CHANNEL, ts, "ack")
    [card] = slack.messages(CHANNEL)
    assert card.text == "acked by alice" and card.blocks == [] and card.replaced == 1


def test_select_option_sends_the_selected_option(slack: SlackEmulator, bot: RecordingBot, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="card", blocks=card_blocks())["ts"]
    slack.select_option("U0ALICE", CHANNEL, ts, "assign", "U0BOB")
    [action] = bot.last.payload["actions"]
    assert action["type"] == "static_select" and action["block_id"] == "card_actions"
    assert action["selected_option"] == {"text": {"type": "plain_text", "text": "bob"}, "value": "U0BOB"}
    with pytest.raises(LookupError):
        slack.select_option("U0ALICE", CHANNEL, ts, "assign", "U0NOBODY")


# -- Events API -----------------------------------------------------------------------------------


def test_send_event_envelope_and_retry_headers(slack: SlackEmulator, bot: RecordingBot) -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> status", "channel": CHANNEL}
    slack.send_event(event, retry_num=1, event_id="Ev0RETRY")
    request = bot.last
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-slack-retry-num"] == "1" and request.headers["x-slack-retry-reason"] == "http_timeout"
    envelope = request.payload
    assert envelope["type"] == "event_callback" and envelope["event_id"] == "Ev0RETRY"
    assert envelope["team_id"] == "T0TRIAGE" and envelope["api_app_id"] == "A0TRIAGE"
    assert envelope["authorizations"][0]["user_id"] == "U0BOT" and isinstance(envelope["event_time"], int)
    assert envelope["event"]["text"] == "<@U0BOT> status" and envelope["event"]["event_ts"]

    slack.send_event(event)
    assert "x-slack-retry-num" not in bot.last.headers
    assert bot.last.payload["event_id"].startswith("Ev") and bot.last.payload["event_id"] != "Ev0RETRY"


def test_user_messages_mentions_reactions_and_home(slack: SlackEmulator, bot: RecordingBot) -> None:
    parent, _ = slack.post_as_user("U0ALICE", CHANNEL, "is checkout flaky?")
    message_event = bot.last.payload["event"]
    assert message_event["type"] == "message" and message_event["ts"] == parent
    assert message_event["channel_type"] == "channel" and message_event["user"] == "U0ALICE"

    reply_ts, _ = slack.post_as_user("U0ALICE", CHANNEL, "ping", thread_ts=parent)
    assert bot.last.payload["event"]["thread_ts"] == parent
    assert [m.ts for m in slack.replies(CHANNEL, parent)] == [reply_ts]

    slack.mention_bot("U0ALICE", CHANNEL, "status", thread_ts=parent)
    mention = bot.last.payload["event"]
    assert mention["type"] == "app_mention" and mention["text"] == "<@U0BOT> status"
    assert mention["thread_ts"] == parent

    slack.add_reaction("U0ALICE", CHANNEL, parent, "eyes")
    reaction = bot.last.payload["event"]
    assert reaction["type"] == "reaction_added" and reaction["item"] == {
        "type": "message",
        "channel": CHANNEL,
        "ts": parent,
    }
    assert slack.messages(CHANNEL)[0].reactions == {"eyes": ["U0ALICE"]}

    slack.open_home("U0ALICE")
    home = bot.last.payload["event"]
    assert home["type"] == "app_home_opened" and home["tab"] == "home"
    assert home["channel"] == slack.dm_channel_id("U0ALICE")


# -- what the page's gestures send (slackbot/emulator/ui.py) ---------------------------------------


def _gesture(slack: SlackEmulator, which: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{slack.web_url}ui/{which}", json=body, trust_env=False, timeout=10)
    data: dict[str, Any] = response.json()
    data["http_status"] = response.status_code
    return data


def _overflow_message(client: WebClient) -> str:
    options = [{"text": {"type": "plain_text", "text": t}, "value": t.lower()} for t in ("Mute", "Reopen")]
    blocks = [
        {
            "type": "section",
            "block_id": "row",
            "text": {"type": "mrkdwn", "text": "*INC-1*"},
            "accessory": {"type": "overflow", "action_id": "more", "options": options},
        },
        {
            "type": "actions",
            "block_id": "act",
            "elements": [
                {"type": "button", "action_id": "ack", "text": {"type": "plain_text", "text": "Ack"}, "value": "1"}
            ],
        },
    ]
    ts: str = client.chat_postMessage(channel=CHANNEL, text="INC-1", blocks=blocks)["ts"]
    return ts


def test_an_overflow_choice_in_the_page_is_a_signed_block_actions(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    ts = _overflow_message(client)
    act = {"action_id": "more", "block_id": "row", "type": "overflow", "value": "reopen", "text": "Reopen"}
    container = {"kind": "message", "channel": CHANNEL, "ts": ts}
    assert _gesture(slack, "action", user="U0ALICE", container=container, act=act)["ok"] is True
    assert bot.rejected == 0 and bot.last.headers["content-type"] == "application/x-www-form-urlencoded"
    payload = bot.last.payload
    assert payload["type"] == "block_actions" and payload["user"]["id"] == "U0ALICE"
    [action] = payload["actions"]
    assert action["type"] == "overflow" and action["block_id"] == "row"
    assert action["selected_option"] == {"text": {"type": "plain_text", "text": "Reopen"}, "value": "reopen"}
    assert payload["message"]["ts"] == ts and payload["response_url"].startswith(slack.web_url)


def test_a_click_on_a_redrawn_or_deleted_card_is_delivered_as_the_page_showed_it(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    ts = _overflow_message(client)
    client.chat_update(channel=CHANNEL, ts=ts, text="INC-1 acked", blocks=[])  # the button is gone
    act = {"action_id": "ack", "block_id": "act", "type": "button", "value": "1", "text": "Ack"}
    container = {"kind": "message", "channel": CHANNEL, "ts": ts}
    assert _gesture(slack, "action", user="U0ALICE", container=container, act=act)["ok"] is True
    [action] = bot.last.payload["actions"]
    assert (action["action_id"], action["value"], action["text"]["text"]) == ("ack", "1", "Ack")
    assert bot.last.payload["message"]["text"] == "INC-1 acked"  # the card as it is now
    client.chat_delete(channel=CHANNEL, ts=ts)
    assert _gesture(slack, "action", user="U0ALICE", container=container, act=act)["ok"] is True
    assert bot.last.payload["message"]["ts"] == ts and len(bot.received) == 2


def test_a_bot_that_fails_is_shown_as_slack_shows_it(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    bot.reply = lambda request: (500, {"error": "boom"})
    ts = _overflow_message(client)
    act = {"action_id": "ack", "block_id": "act", "type": "button", "value": "1", "text": "Ack"}
    answer = _gesture(
        slack, "action", user="U0ALICE", container={"kind": "message", "channel": CHANNEL, "ts": ts}, act=act
    )
    assert answer["http_status"] == 200 and answer["ok"] is False and "HTTP 500" in answer["detail"]
    _gesture(slack, "compose", user="U0ALICE", channel=CHANNEL, text="/triage list")
    assert slack.ephemerals("U0ALICE")[-1]["text"] == '/triage failed with the error "dispatch_failed"'


def test_the_composer_sends_commands_messages_and_mentions(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    bot.reply = lambda request: (200, {"text": "listed"} if request.form.get("command") else None)
    _gesture(slack, "compose", user="U0ALICE", channel=CHANNEL, text="/triage show @alice <x>")
    assert bot.last.form["command"] == "/triage" and bot.last.form["text"] == "show <@U0ALICE|alice> &lt;x&gt;"
    assert slack.ephemerals("U0ALICE")[-1]["text"] == "listed"
    _gesture(slack, "compose", user="U0ALICE", channel=CHANNEL, text="@triagebot triage BID-001 is red")
    message_event, mention_event = (r.payload["event"] for r in bot.received[-2:])
    assert message_event["type"] == "message" and mention_event["type"] == "app_mention"
    assert message_event["ts"] == mention_event["ts"]
    assert mention_event["text"] == "<@U0BOT> triage BID-001 is red"
    before = len(bot.received)
    answer = _gesture(slack, "compose", user="U0ALICE", channel=CHANNEL, text="/deploy now")
    assert answer["valid"] is False and len(bot.received) == before  # Slack never sends an unknown command
    assert "`/deploy` is not a valid command" in slack.ephemerals("U0ALICE")[-1]["text"]


def test_clicks_in_an_ephemeral_message_and_in_app_home_name_their_container(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    button = {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}, "value": "v"}
    blocks = [{"type": "actions", "block_id": "b", "elements": [button]}]
    eph_ts = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="pick", blocks=blocks)["message_ts"]
    act = {"action_id": "go", "block_id": "b", "type": "button"}
    _gesture(
        slack, "action", user="U0ALICE", container={"kind": "ephemeral", "channel": CHANNEL, "ts": eph_ts}, act=act
    )
    assert bot.last.payload["container"]["is_ephemeral"] is True and "message" not in bot.last.payload
    view_id = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": blocks})["view"]["id"]
    _gesture(slack, "action", user="U0ALICE", container={"kind": "view", "view_id": view_id}, act=act)
    assert bot.last.payload["container"] == {"type": "view", "view_id": view_id}
    assert bot.last.payload["actions"][0]["value"] == "v"


def test_a_modal_with_errors_keeps_what_was_typed_and_shows_the_error_under_the_field(
    slack: SlackEmulator, bot: RecordingBot, client: WebClient
) -> None:
    field_block = {
        "type": "input",
        "block_id": "why",
        "label": {"type": "plain_text", "text": "Why"},
        "element": {"type": "plain_text_input", "action_id": "text"},
    }
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Why"},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [field_block],
    }
    view_id = client.views_open(trigger_id=slack.issue_trigger("U0ALICE"), view=view)["view"]["id"]
    bot.reply = lambda request: (200, {"response_action": "errors", "errors": {"why": "Say <why>."}})
    answer = _gesture(slack, "submit", user="U0ALICE", view_id=view_id, values={"why": {"text": "because <b>"}})
    assert answer["ok"] is True
    assert bot.last.payload["view"]["state"]["values"] == {
        "why": {"text": {"type": "plain_text_input", "value": "because <b>"}}
    }
    with slack.workspace.lock:
        shown = html.modal_html(slack.workspace, "U0ALICE")
    assert 'value="because &lt;b&gt;"' in shown and '<div class="error">Say &lt;why&gt;.</div>' in shown
    bot.reply = lambda request: (200, None)
    assert _gesture(slack, "submit", user="U0ALICE", view_id=view_id, values={"why": {"text": "ok"}})["ok"] is True
    again = _gesture(slack, "submit", user="U0ALICE", view_id=view_id, values={"why": {"text": "ok"}})
    assert again["http_status"] == 409 and again["error"] == "view_closed" and slack.open_modals("U0ALICE") == []
