"""The Slack emulator's Web API over real HTTP, driven by the real slack_sdk ``WebClient``."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from slackbot.emulator import SlackEmulator
from slackbot.emulator.api import BOT_SCOPES

# These tests check the emulator as a stand-in for Slack, methods the bot never calls included.
EVERY_SCOPE = BOT_SCOPES + ",channels:read,groups:history,users:read,users:read.email,reactions:write,files:read"

CHANNEL = "C0TRIAGE"
OTHER = "C0OTHER"
START = 1_700_000_000.0


class FakeClock:
    """The emulator's clock, moved by hand: rate limits and trigger expiry without sleeping."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(clock=clock, scopes=EVERY_SCOPE) as emulator:
        emulator.add_channel(CHANNEL, "triage")
        emulator.add_channel(OTHER, "other")
        emulator.add_user("U0ALICE", "alice", real_name="Alice Adams", tz="Europe/Berlin")
        emulator.add_user("U0BOB", "bob")
        emulator.add_usergroup("S0ONCALL", "oncall", ["U0ALICE", "U0BOB"])
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.base_url)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, label: str, value: str = "v") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}, "value": value}


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


# -- messages, threads, transcript ----------------------------------------------------------------


def test_post_update_and_thread_are_stored_and_read_like_slack(slack: SlackEmulator, client: WebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "nightly: 3 failures"}},
        section("*checkout* failed, owner <@U0ALICE>", fields=[{"type": "mrkdwn", "text": "*Run*\n42"}]),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "first seen today"}]},
        {"type": "actions", "elements": [button("ack", "Acknowledge"), button("snooze", "Snooze")]},
    ]
    posted = client.chat_postMessage(
        channel=CHANNEL,
        text="nightly: 3 failures",
        blocks=blocks,
        metadata={"event_type": "triage_card", "event_payload": {"incident": 7}},
        unfurl_links=False,
    )
    assert posted["ok"] and posted["channel"] == CHANNEL
    assert posted["message"]["bot_id"] == "B0BOT" and posted["message"]["user"] == slack.bot_user_id
    ts = posted["ts"]
    assert ts == "1700000000.000000"

    reply1 = client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="retry 1 failed")
    reply2 = client.chat_postMessage(channel=CHANNEL, thread_ts=reply1["ts"], text="alice is on it")
    assert ts < reply1["ts"] < reply2["ts"]  # strictly increasing even with a frozen clock
    updated = client.chat_update(channel=CHANNEL, ts=ts, text="nightly: 3 failures (acked)")
    assert updated["ts"] == ts and updated["text"] == "nightly: 3 failures (acked)"

    [card] = slack.messages(CHANNEL)
    assert card.edited == 1 and card.reply_count == 2 and card.blocks == blocks
    assert card.metadata == {"event_type": "triage_card", "event_payload": {"incident": 7}}
    assert [r.text for r in slack.replies(CHANNEL, ts)] == ["retry 1 failed", "alice is on it"]
    assert all(r.thread_ts == ts for r in slack.replies(CHANNEL, ts))

    history = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert [m["ts"] for m in history["messages"]] == [ts]
    assert history["messages"][0]["reply_count"] == 2 and history["messages"][0]["edited"]["user"] == "U0BOT"
    thread = client.conversations_replies(channel=CHANNEL, ts=reply1["ts"])
    assert [m["ts"] for m in thread["messages"]] == [ts, reply1["ts"], reply2["ts"]]

    transcript = slack.transcript(CHANNEL)
    assert transcript.splitlines() == [
        f"#triage ({CHANNEL})",
        f"  triagebot [{ts}] (edited x1)",
        "    *nightly: 3 failures*",
        "    *checkout* failed, owner @alice",
        "    *Run*",
        "    42",
        "    first seen today",
        "    [Acknowledge] [Snooze]",
        f"    > triagebot [{reply1['ts']}]",
        "    >   retry 1 failed",
        f"    > triagebot [{reply2['ts']}]",
        "    >   alice is on it",
    ]


def test_reply_broadcast_appears_in_channel_and_thread(slack: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="parent")["ts"]
    broadcast = client.chat_postMessage(channel=CHANNEL, text="fixed", thread_ts=parent, reply_broadcast=True)
    assert [m.ts for m in slack.messages(CHANNEL)] == [parent, broadcast["ts"]]
    assert slack.messages(CHANNEL)[1].subtype == "thread_broadcast"
    assert [m.ts for m in slack.replies(CHANNEL, parent)] == [broadcast["ts"]]


def test_mentions_tell_live_pings_from_escaped_text(slack: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="test_&lt;!channel&gt; failed, cc <!subteam^S0ONCALL>")
    [message] = slack.messages(CHANNEL)
    assert message.mentions() == ["!subteam^S0ONCALL"]
    assert "test_<!channel> failed, cc @oncall" in slack.transcript(CHANNEL)


def test_form_encoded_blocks_and_token_param_are_accepted(slack: SlackEmulator) -> None:
    blocks = json.dumps([section("from a form")])
    response = httpx.post(
        f"{slack.base_url}chat.postMessage",
        data={"token": slack.bot_token, "channel": "#triage", "blocks": blocks, "text": "fallback"},
        trust_env=False,
    )
    assert response.json()["ok"] is True
    assert response.headers["content-type"].startswith("application/json")
    [call] = slack.calls("chat.postMessage")
    assert call.body["blocks"] == [section("from a form")] and call.status == 200
    assert slack.messages(CHANNEL)[0].blocks == [section("from a form")]


def test_calls_are_recorded_with_headers_body_and_status(slack: SlackEmulator, client: WebClient) -> None:
    client.auth_test()
    client.chat_postMessage(channel=CHANNEL, text="hello")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0NOPE", text="hello")
    calls = slack.calls("chat.postMessage")
    assert [(c.body["channel"], c.status, (c.response or {}).get("ok")) for c in calls] == [
        (CHANNEL, 200, True),
        ("C0NOPE", 200, False),
    ]
    assert calls[0].headers["authorization"] == f"Bearer {slack.bot_token}"
    assert "slackclient" in calls[0].headers["user-agent"].lower()
    assert [c.method for c in slack.calls()] == ["auth.test", "chat.postMessage", "chat.postMessage"]


# -- refusals -------------------------------------------------------------------------------------


def test_auth_is_checked(slack: SlackEmulator) -> None:
    with pytest.raises(SlackApiError) as bad:
        WebClient(token="xoxb-wrong", base_url=slack.base_url).chat_postMessage(channel=CHANNEL, text="x")
    assert error_of(bad) == "invalid_auth" and bad.value.response.status_code == 200
    with pytest.raises(SlackApiError) as missing:
        WebClient(base_url=slack.base_url).auth_test()
    assert error_of(missing) == "not_authed"
    assert slack.messages(CHANNEL) == []


def test_unknown_channel_and_empty_message_are_refused(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as unknown:
        client.chat_postMessage(channel="C0NOPE", text="x")
    assert error_of(unknown) == "channel_not_found"
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel=CHANNEL, text="")
    assert error_of(empty) == "no_text"
    with pytest.raises(SlackApiError) as no_thread:
        client.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1600000000.000100")
    assert error_of(no_thread) == "thread_not_found"


def test_too_many_blocks_is_invalid_blocks_with_slack_message(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 51)
    assert error_of(exc) == "invalid_blocks"
    assert exc.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 51 items [json-pointer:/blocks]"
    ]
    assert client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 50)["ok"]


def test_long_section_text_is_invalid_blocks(client: WebClient) -> None:
    blocks = [section("ok"), section("x" * 3001)]
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=blocks)
    assert error_of(exc) == "invalid_blocks"
    assert exc.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"type": "header", "text": {"type": "mrkdwn", "text": "x"}},
            "[ERROR] must be one of plain_text [json-pointer:/blocks/0/text/type]",
        ),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (section(""), "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
        (
            {"type": "actions", "elements": [button(f"b{i}", "b") for i in range(26)]},
            "[ERROR] must be less than 26 items [json-pointer:/blocks/0/elements]",
        ),
        (
            {"type": "actions", "elements": [button("b", "L" * 76)]},
            "[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        ),
        ({"type": "sectoin", "text": "typo"}, "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0]"),
        (
            section("x", block_id="b" * 256),
            "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]",
        ),
        (
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
            "[ERROR] must be less than 11 items [json-pointer:/blocks/0/fields]",
        ),
    ],
)
def test_block_kit_limits(client: WebClient, block: dict[str, Any], message: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[block])
    assert error_of(exc) == "invalid_blocks"
    assert message in exc.value.response["response_metadata"]["messages"]


def test_blocks_that_are_not_a_list_of_objects_are_invalid_blocks_format(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessage", params={"channel": CHANNEL, "text": "x", "blocks": "not json"})
    assert error_of(exc) == "invalid_blocks_format"
    with pytest.raises(SlackApiError) as exc:
        client.api_call("chat.postMessage", json={"channel": CHANNEL, "text": "x", "blocks": ["a"]})
    assert error_of(exc) == "invalid_blocks_format"


def test_update_refuses_long_text_and_other_peoples_messages(slack: SlackEmulator, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="short")["ts"]
    with pytest.raises(SlackApiError) as too_long:
        client.chat_update(channel=CHANNEL, ts=ts, text="x" * 4001)
    assert error_of(too_long) == "msg_too_long"
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel=CHANNEL, ts="1600000000.000001", text="x")
    assert error_of(missing) == "message_not_found"
    user_ts, _ = slack.post_as_user("U0ALICE", CHANNEL, "mine")
    with pytest.raises(SlackApiError) as not_ours:
        client.chat_update(channel=CHANNEL, ts=user_ts, text="x")
    assert error_of(not_ours) == "cant_update_message"
    assert slack.messages(CHANNEL)[0].edited == 0


def test_post_text_over_40000_chars_is_truncated(slack: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="y" * 40_010)
    assert len(slack.messages(CHANNEL)[0].text) == 40_000


# -- rate limits and injected failures ------------------------------------------------------------


def test_per_channel_rate_limit_answers_429_until_time_passes(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit_per_channel=1.0, burst=3) as slack:
        slack.add_channel(CHANNEL, "triage")
        slack.add_channel(OTHER, "other")
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        for i in range(3):
            client.chat_postMessage(channel=CHANNEL, text=f"burst {i}")
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel=CHANNEL, text="one too many")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "1"
        assert error_of(exc) == "ratelimited"
        assert client.chat_postMessage(channel=OTHER, text="other channel has its own bucket")["ok"]
        clock.advance(1.0)
        assert client.chat_postMessage(channel=CHANNEL, text="after a second")["ok"]
        assert [c.status for c in slack.calls("chat.postMessage")] == [200, 200, 200, 429, 200, 200]
        assert len(slack.messages(CHANNEL)) == 4


def test_rate_limit_can_be_switched_off(clock: FakeClock) -> None:
    with SlackEmulator(clock=clock, rate_limit_per_channel=0, burst=1) as slack:
        slack.add_channel(CHANNEL, "triage")
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        for i in range(20):
            client.chat_postMessage(channel=CHANNEL, text=str(i))
        assert len(slack.messages(CHANNEL)) == 20


def test_fail_next_503_then_success_with_server_error_retry_handler(slack: SlackEmulator, client: WebClient) -> None:
    client.retry_handlers.append(
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    )
    slack.fail_next("chat.postMessage", status=503)
    assert client.chat_postMessage(channel=CHANNEL, text="eventually")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [503, 200]
    assert [m.text for m in slack.messages(CHANNEL)] == ["eventually"]


def test_fail_next_shapes(slack: SlackEmulator, client: WebClient) -> None:
    slack.fail_next("chat.update", status=429, retry_after=7)
    slack.fail_next("auth.test", status=200, error="fatal_error", count=2)
    with pytest.raises(SlackApiError) as limited:
        client.chat_update(channel=CHANNEL, ts="1.1", text="x")
    assert limited.value.response.status_code == 429 and limited.value.response.headers["Retry-After"] == "7"
    for _ in range(2):
        with pytest.raises(SlackApiError) as fatal:
            client.auth_test()
        assert error_of(fatal) == "fatal_error"
    assert client.auth_test()["ok"]
    slack.fail_next("users.info", status=500)
    raw = httpx.post(f"{slack.base_url}users.info", trust_env=False)
    assert raw.status_code == 500 and raw.headers["content-type"].startswith("text/html")


# -- conversations, users, groups -----------------------------------------------------------------


def test_conversations_open_gives_a_stable_dm(slack: SlackEmulator, client: WebClient) -> None:
    first = client.conversations_open(users="U0ALICE")["channel"]["id"]
    again = client.conversations_open(users=["U0ALICE"])
    assert first.startswith("D") and again["channel"]["id"] == first and again["already_open"] is True
    assert first == slack.dm_channel_id("U0ALICE")
    assert client.conversations_open(users="U0BOB")["channel"]["id"] != first
    full = client.conversations_open(users="U0ALICE", return_im=True)["channel"]
    assert full["is_im"] is True and full["user"] == "U0ALICE"
    client.chat_postMessage(channel=first, text="you are on call")
    assert [m.text for m in slack.messages(first)] == ["you are on call"]
    with pytest.raises(SlackApiError) as exc:
        client.conversations_open(users="U0NOBODY")
    assert error_of(exc) == "user_not_found"


def test_conversations_info_and_history_pagination(client: WebClient) -> None:
    info = client.conversations_info(channel=CHANNEL)["channel"]
    assert info["id"] == CHANNEL and info["name"] == "triage" and info["is_channel"] is True
    posted = [client.chat_postMessage(channel=CHANNEL, text=str(i))["ts"] for i in range(5)]
    page1 = client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["text"] for m in page1["messages"]] == ["4", "3"] and page1["has_more"] is True
    page2 = client.conversations_history(channel=CHANNEL, limit=2, cursor=page1["response_metadata"]["next_cursor"])
    assert [m["text"] for m in page2["messages"]] == ["2", "1"]
    window = client.conversations_history(channel=CHANNEL, oldest=posted[1], latest=posted[3], inclusive=True)
    assert [m["text"] for m in window["messages"]] == ["3", "2", "1"]


def test_users_and_usergroups_shapes(client: WebClient) -> None:
    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE" and user["name"] == "alice" and user["real_name"] == "Alice Adams"
    assert user["tz"] == "Europe/Berlin" and isinstance(user["tz_offset"], int)
    assert user["profile"]["real_name"] == "Alice Adams" and user["is_bot"] is False
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert [(g["id"], g["handle"], g["user_count"], g["users"]) for g in groups] == [
        ("S0ONCALL", "oncall", 2, ["U0ALICE", "U0BOB"])
    ]
    assert "users" not in client.usergroups_list()["usergroups"][0]
    assert client.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError) as exc:
        client.usergroups_users_list(usergroup="S0NOPE")
    assert error_of(exc) == "no_such_subteam"
    with pytest.raises(SlackApiError) as exc:
        client.users_info(user="U0NOPE")
    assert error_of(exc) == "user_not_found"


def test_ephemeral_permalink_and_reactions(slack: SlackEmulator, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert [(e["user"], e["text"]) for e in slack.ephemerals("U0ALICE")] == [("U0ALICE", "only you")]
    assert slack.ephemerals("U0BOB") == []
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"]
    assert link == f"{slack.web_url}archives/{CHANNEL}/p{ts.replace('.', '')}"
    client.reactions_add(channel=CHANNEL, timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel=CHANNEL, timestamp=ts, name="eyes")
    assert error_of(exc) == "already_reacted"
    assert slack.messages(CHANNEL)[0].reactions == {"eyes": ["U0BOT"]}


# -- views ----------------------------------------------------------------------------------------


def modal(title: str = "Snooze", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "snooze",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "private_metadata": "incident=7",
        "blocks": [
            {
                "type": "input",
                "block_id": "hours",
                "label": {"type": "plain_text", "text": "Hours"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
        **extra,
    }


def test_views_open_trigger_is_single_use_and_expires(
    slack: SlackEmulator, client: WebClient, clock: FakeClock
) -> None:
    trigger = slack.issue_trigger("U0ALICE")
    view = client.views_open(trigger_id=trigger, view=modal())["view"]
    assert view["id"].startswith("V") and view["type"] == "modal"
    assert view["state"] == {"values": {}} and view["private_metadata"] == "incident=7"
    assert view["callback_id"] == "snooze"
    assert [v.id for v in slack.open_modals("U0ALICE")] == [view["id"]]
    with pytest.raises(SlackApiError) as used:
        client.views_open(trigger_id=trigger, view=modal())
    assert error_of(used) == "exchanged_trigger_id"

    late = slack.issue_trigger("U0ALICE")
    clock.advance(3.5)
    with pytest.raises(SlackApiError) as expired:
        client.views_open(trigger_id=late, view=modal())
    assert error_of(expired) == "expired_trigger_id"
    with pytest.raises(SlackApiError) as unknown:
        client.views_open(trigger_id="123.456.abc", view=modal())
    assert error_of(unknown) == "invalid_trigger_id"


def test_views_are_validated(slack: SlackEmulator, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=slack.issue_trigger("U0ALICE"), view=modal(title="t" * 25))
    assert error_of(exc) == "invalid_arguments"
    assert exc.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    too_many = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U0ALICE", view=too_many)
    assert "[ERROR] must be less than 101 items [json-pointer:/view/blocks]" in exc.value.response["errors"]


def test_views_update_and_push(slack: SlackEmulator, client: WebClient) -> None:
    view = client.views_open(trigger_id=slack.issue_trigger("U0ALICE"), view=modal())["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=modal(title="Snooze (2)"))["view"]
    assert updated["id"] == view["id"] and updated["title"]["text"] == "Snooze (2)"
    with pytest.raises(SlackApiError) as exc:
        client.views_update(view_id=view["id"], hash=view["hash"], view=modal())
    assert error_of(exc) == "hash_conflict"
    pushed = client.views_push(trigger_id=slack.issue_trigger("U0ALICE"), view=modal(title="Confirm"))["view"]
    assert pushed["previous_view_id"] == view["id"] and pushed["root_view_id"] == view["id"]
    assert [v.id for v in slack.open_modals("U0ALICE")] == [view["id"], pushed["id"]]


def test_views_publish_keeps_the_latest_home_per_user(slack: SlackEmulator, client: WebClient) -> None:
    home = {"type": "home", "blocks": [section("3 open incidents")]}
    first = client.views_publish(user_id="U0ALICE", view=home)["view"]
    second = client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [section("all clear")]})
    assert second["view"]["id"] == first["id"] and second["view"]["type"] == "home"
    latest = slack.home_view("U0ALICE")
    assert latest is not None and latest["blocks"] == [section("all clear")]
    assert slack.home_view("U0BOB") is None
    with pytest.raises(SlackApiError) as exc:
        client.views_publish(user_id="U0ALICE", view=modal())
    assert error_of(exc) == "invalid_arguments"


# -- files ----------------------------------------------------------------------------------------


def test_files_upload_v2_into_a_thread(slack: SlackEmulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="incident 7")["ts"]
    response = client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=parent,
        content="# Postmortem\n\nroot cause: flaky DNS",
        filename="postmortem.md",
        title="Postmortem incident 7",
    )
    assert response["ok"] and response["file"]["title"] == "Postmortem incident 7"
    [upload] = slack.files()
    assert upload.text == "# Postmortem\n\nroot cause: flaky DNS" and upload.name == "postmortem.md"
    [reply] = slack.replies(CHANNEL, parent)
    assert reply.files[0]["id"] == upload.id and reply.thread_ts == parent
    assert "[file: Postmortem incident 7]" in slack.transcript(CHANNEL)
    assert [c.method for c in slack.calls()][-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


# -- pages ---------------------------------------------------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_html_pages_escape_untrusted_text(slack: SlackEmulator, client: WebClient) -> None:
    hostile = "test_<script>alert(1)</script> <!channel>"
    parent = client.chat_postMessage(
        channel=CHANNEL,
        text=hostile,
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": hostile}},
            {"type": "actions", "elements": [button("ack", "<b>Ack</b>")]},
        ],
    )["ts"]
    client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="reply with <script>x</script>")
    status, index = _get(slack.web_url)
    assert status == 200 and f'href="/channels/{CHANNEL}"' in index and "#triage" in index
    status, page = _get(f"{slack.web_url}channels/{CHANNEL}")
    assert status == 200
    assert "<script>" not in page and "<b>Ack</b>" not in page and "<!channel>" not in page
    assert "test_&lt;script&gt;alert(1)&lt;/script&gt; &lt;!channel&gt;" in page
    assert "&lt;b&gt;Ack&lt;/b&gt;</button>" in page  # a live button, its label escaped
    assert 'class="msg reply"' in page and "reply with &lt;script&gt;x&lt;/script&gt;" in page
    assert _get(f"{slack.web_url}channels/C0NOPE")[0] == 404
    status, state = _get(f"{slack.web_url}api/state.json")
    channels = {c["id"]: c for c in json.loads(state)["channels"]}
    assert channels[CHANNEL]["messages"][0]["ts"] == parent
