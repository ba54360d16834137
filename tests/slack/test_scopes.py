"""manifest.yml asks for exactly the bot scopes the code needs, derived from the code itself.

Every Slack Web API method the bot can call is collected from the source (calls on the slack_sdk
client in slackbot/ and handlers/, resolved through slack_sdk to the API method names they send),
every event from the manifest's subscriptions and the Bolt listeners; each is looked up in
``slackbot/emulator/scopes.py`` (Slack's documentation, recorded as data with its source) and the
union must equal the manifest's bot scopes. A new call without its scope, or a scope nothing uses
any more, fails here rather than in a reviewer's install dialog or at 3 a.m. with missing_scope.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackbot.emulator import SlackEmulator
from slackbot.emulator.api import BOT_SCOPES, METHOD_SCOPES
from slackbot.emulator.scopes import EVENTS, FEATURES, KINDS_THE_BOT_READS, METHODS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
# The bot's code: everything under these, except the emulator (it plays Slack, it is not the bot).
CODE_DIRS = (ROOT / "slackbot", ROOT / "handlers")
NOT_THE_BOT = (ROOT / "slackbot" / "emulator",)
# Calls Bolt makes on the bot's behalf: it authorizes each request with auth.test (cached), which
# needs no scope. respond() posts to the request's response_url, which is no Web API method.
BOLT_CALLS = {"auth.test"}
OPENAPI_EXTRACT = json.loads((Path(__file__).parent / "test_scopes_openapi_extract.json").read_text())


@cache
def _bot_sources() -> list[tuple[Path, ast.Module]]:
    files = [p for d in CODE_DIRS for p in sorted(d.rglob("*.py")) if not any(n in p.parents for n in NOT_THE_BOT)]
    return [(p, ast.parse(p.read_text(encoding="utf-8"), filename=str(p))) for p in files]


@cache
def _api_methods_of(client_method: str) -> frozenset[str]:
    """The Web API methods one slack_sdk client method sends: read from slack_sdk's own source,
    following helpers such as files_upload_v2 (files.getUploadURLExternal, then
    files.completeUploadExternal)."""
    source = inspect.getsource(getattr(AsyncWebClient, client_method))
    found = set(re.findall(r"api_call\(\s*\"([^\"]+)\"", source))
    for helper in re.findall(r"self\.(\w+)\(", source):
        if helper != client_method and helper in _client_methods():
            found |= _api_methods_of(helper)
    return frozenset(found)


@cache
def _client_methods() -> frozenset[str]:
    return frozenset(
        name
        for name, member in vars(AsyncWebClient).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    )


@cache
def called_methods() -> dict[str, list[str]]:
    """API method -> where the bot's code calls it (file:line)."""
    calls: dict[str, list[str]] = {}
    for path, tree in _bot_sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name = node.func.attr
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            methods: frozenset[str] = frozenset()
            if name == "api_call" and node.args and isinstance(node.args[0], ast.Constant):
                methods = frozenset({str(node.args[0].value)})
            elif name in _client_methods():
                methods = _api_methods_of(name)
            for method in methods:
                calls.setdefault(method, []).append(where)
    return calls


def listened_events() -> set[str]:
    """Event types the Bolt app has listeners for (``@app.event("...")``)."""
    events: set[str] = set()
    for _, tree in _bot_sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "app"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                events.add(str(node.args[0].value))
    return events


def has_command_listener() -> bool:
    return any(
        isinstance(node, ast.Attribute) and node.attr == "command" and getattr(node.value, "id", None) == "app"
        for _, tree in _bot_sources()
        for node in ast.walk(tree)
    )


def required_scopes() -> dict[str, set[str]]:
    """Scope -> what needs it (a method with where it is called, an event, a feature)."""
    needed: dict[str, set[str]] = {}

    def need(scope: str, why: str) -> None:
        needed.setdefault(scope, set()).add(why)

    calls = called_methods()
    for method in sorted(set(calls) | BOLT_CALLS):
        entry = METHODS[method]  # a KeyError names a method the data does not cover yet
        why = f"{method} ({', '.join(calls.get(method, ['Bolt']))})"
        if entry.action is not None:
            for kind in KINDS_THE_BOT_READS[method]:
                need(f"{kind}:{entry.action}", why)
        elif entry.any_of:
            # any_of lists the alternatives in the order of the bot's use: it opens DMs with one
            # user (im:write), never group DMs (mpim:write)
            need(entry.any_of[0], why)
        if entry.unjoined_public and "conversations.join" not in calls:
            # cards go to the channels routing.yml names; the bot never joins them itself
            need(entry.unjoined_public, f"{why}, into channels it has not joined")
    for event in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        scopes, _ = EVENTS[event]
        for scope in scopes:
            need(scope, f"event {event}")
    if MANIFEST["features"].get("slash_commands"):
        for scope in FEATURES["slash_commands"][0]:
            need(scope, "the /triage slash command")
    return needed


def test_the_manifest_asks_for_exactly_the_scopes_the_code_needs() -> None:
    needed = required_scopes()
    granted = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    missing = {scope: sorted(why) for scope, why in needed.items() if scope not in granted}
    extra = sorted(granted - set(needed))
    assert missing == {}, f"manifest.yml lacks scopes the code needs: {missing}"
    assert extra == [], f"manifest.yml asks for scopes nothing uses: {extra}"
    # issue 14's cases: DM page recovery reads an IM back (find_posted); nothing adds reactions
    assert any(why.startswith("conversations.history (") for why in needed["im:history"])
    assert "reactions:write" not in granted


def test_the_emulator_grants_the_manifest_scopes_and_enforces_the_same_table() -> None:
    assert set(BOT_SCOPES.split(",")) == set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {m: e.any_of for m, e in METHODS.items() if e.any_of} == METHOD_SCOPES
    with SlackEmulator() as emulator:
        served = set(emulator.api.methods)
    assert served <= set(METHODS), f"methods the emulator serves without a scope entry: {served - set(METHODS)}"


def test_the_collector_sees_the_calls_the_bot_is_known_to_make() -> None:
    """Guards the collector itself: if it stopped finding calls, the exact-set test would pass on
    a near-empty set; these are calls whose loss would break a card, a page or a modal."""
    calls = called_methods()
    for method in (
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "conversations.open",
        "conversations.history",
        "conversations.replies",
        "usergroups.users.list",
        "views.open",
        "views.publish",
        "files.getUploadURLExternal",  # via files_upload_v2, resolved through slack_sdk
        "files.completeUploadExternal",
    ):
        assert method in calls, method
    assert set(KINDS_THE_BOT_READS) == {m for m in calls if METHODS[m].action}


def test_every_subscribed_event_has_a_listener_and_every_listener_a_subscription() -> None:
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    listened = listened_events()
    # Bolt's "message" listener receives every message.* subscription
    as_listened = {"message" if e.startswith("message.") else e for e in subscribed}
    assert as_listened == listened
    assert subscribed <= set(EVENTS)
    assert has_command_listener() and MANIFEST["features"]["slash_commands"]


def test_the_recorded_scopes_agree_with_slacks_published_spec() -> None:
    """Each entry the 2020 spec knows matches it, once its classic scopes are read as a bot token's
    (chat:write:bot -> chat:write, files:write:user -> files:write; "none": no scope)."""
    spec = OPENAPI_EXTRACT["methods"]
    assert set(spec) == set(METHODS) - {"files.getUploadURLExternal", "files.completeUploadExternal"}
    for method, published in spec.items():
        scopes = {re.sub(r":(bot|user)$", "", s) for s in published["slackAuth"] if s != "none"}
        entry = METHODS[method]
        if entry.action is not None:
            kinds = {f"{k}:{entry.action}" for k in ("channels", "groups", "im", "mpim")}
            assert scopes == kinds, method
        elif entry.classic:
            assert scopes == set(entry.classic), method
        else:
            assert set(entry.any_of) <= scopes, method
            assert bool(entry.any_of) == bool(scopes), method
        assert entry.source.endswith(f"/methods/{method}")


def test_the_emulator_refuses_per_token_what_its_scopes_do_not_cover() -> None:
    """The same table, enforced: a token without a method's scope, or without the scope of the
    conversation's kind, is refused as Slack refuses it; so a test of a call the manifest does not
    cover fails."""
    without = {"im:history", "chat:write.public"}
    scopes = ",".join(s for s in BOT_SCOPES.split(",") if s not in without)
    with SlackEmulator(scopes=scopes) as emulator:
        emulator.add_user("U0CAROL", "carol")
        emulator.api.ws.add_channel("C0UNJOINED", "unjoined", bot_is_member=False)
        client = WebClient(token=emulator.bot_token, base_url=emulator.base_url)
        dm = client.conversations_open(users="U0CAROL")["channel"]["id"]
        client.chat_postMessage(channel=dm, text="page")
        with pytest.raises(SlackApiError) as refused:
            client.conversations_history(channel=dm)
        assert refused.value.response.data == {
            "ok": False,
            "error": "missing_scope",
            "needed": "im:history",
            "provided": scopes,
        }
        with pytest.raises(SlackApiError) as unjoined:
            client.chat_postMessage(channel="C0UNJOINED", text="card")
        assert unjoined.value.response["error"] == "not_in_channel"
    with SlackEmulator() as emulator:  # the manifest's scopes cover both
        emulator.add_user("U0CAROL", "carol")
        emulator.api.ws.add_channel("C0UNJOINED", "unjoined", bot_is_member=False)
        client = WebClient(token=emulator.bot_token, base_url=emulator.base_url)
        dm = client.conversations_open(users="U0CAROL")["channel"]["id"]
        client.chat_postMessage(channel=dm, text="page")
        assert [m["text"] for m in client.conversations_history(channel=dm)["messages"]] == ["page"]
        assert client.chat_postMessage(channel="C0UNJOINED", text="card")["ok"]
