"""Acting as a person toward the bot: slash commands, clicks, modal submissions and Events API events.

Each request is built in the shape Slack really sends (the bolt-python fixtures in
``shared/fixtures/external`` and the field order of public captures, reference section 7), signed
with the v0 scheme and POSTed to the bot's ``/slack/events`` over real HTTP. Because the bot under
test runs Bolt's own signature check, a payload that only looks right but is signed wrong fails here
the way it would against Slack.

Interactions carry a fresh ``trigger_id`` and ``response_url`` issued by the workspace, so the bot's
``views.open`` and ``respond()`` go back to the emulator and are checked there (3-second trigger,
five uses per URL). Signatures use wall-clock time, not the emulator's clock: Bolt rejects
timestamps more than five minutes from its own ``time.time()``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from slackbot.emulator import validation
from slackbot.emulator.state import APP_ID, BOT_ID, BOT_USER_ID, Channel, Message, View, Workspace

SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
VERIFICATION_TOKEN = "emulator-verification-token"  # deprecated by Slack; sent because Slack sends it
FORM = "application/x-www-form-urlencoded"


@dataclass
class ActorResponse:
    """What the bot answered: HTTP status, raw body and the body as JSON when it is JSON."""

    status: int
    body: str
    json: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    sent: dict[str, Any] = field(default_factory=dict)  # the payload we delivered, for debugging


class SocketLink(Protocol):
    """Slack's end of a Socket Mode connection (``socket_mode.SocketModeServer``)."""

    @property
    def connected(self) -> bool: ...

    def deliver(
        self, type: str, payload: dict[str, Any], *, retry_attempt: int = 0, retry_reason: str = ""
    ) -> ActorResponse: ...


class Actor:
    """Builds, signs and delivers user-originated requests for one workspace.

    When the bot holds a Socket Mode connection (``socket`` set and connected), requests travel as
    envelopes over that socket instead of signed HTTP POSTs; the payloads are the same.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        signing_secret: str,
        bot_url: Callable[[], str | None],
        root_url: Callable[[], str],
        signing_clock: Callable[[], float] = time.time,
    ) -> None:
        self.ws = workspace
        self.verifier = SignatureVerifier(signing_secret)
        self.bot_url = bot_url
        self.root_url = root_url
        self.signing_clock = signing_clock
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self.socket: SocketLink | None = None

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                # trust_env=False: a proxy from the environment must never see loopback test traffic.
                self._http = httpx.Client(timeout=10.0, trust_env=False)
            return self._http

    # -- transport --------------------------------------------------------------------------------

    def _over_socket(self) -> bool:
        return self.socket is not None and self.socket.connected

    def has_target(self) -> bool:
        """Whether a bot is there to deliver to (an HTTP URL, or a Socket Mode connection)."""
        return self._over_socket() or bool(self.bot_url())

    def _target(self) -> str:
        if self._over_socket():
            return "socket"
        url = self.bot_url()
        if not url:
            raise RuntimeError(
                "no bot to deliver to: assign emulator.bot_url = 'http://host:port/slack/events',"
                " or connect the bot over Socket Mode"
            )
        return url

    def deliver(
        self,
        body: bytes,
        *,
        content_type: str,
        sent: dict[str, Any],
        headers: dict[str, str] | None = None,
        envelope: str | None = None,
    ) -> ActorResponse:
        """POST a signed body to the bot (never under the workspace lock: the bot calls back in).

        With a Socket Mode connection, ``sent`` goes as an ``envelope`` of that type instead.
        """
        if envelope is not None and self.socket is not None and self.socket.connected:
            retry = (headers or {}).get("x-slack-retry-num")
            return self.socket.deliver(
                envelope,
                sent,
                retry_attempt=int(retry) if retry else 0,
                retry_reason=(headers or {}).get("x-slack-retry-reason", "") if retry else "",
            )
        timestamp = str(int(self.signing_clock()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body) or ""
        all_headers = {
            "content-type": content_type,
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": signature,
            "user-agent": SLACK_USER_AGENT,
            **(headers or {}),
        }
        response = self._client().post(self._target(), content=body, headers=all_headers)
        parsed: dict[str, Any] | None = None
        if response.content:
            try:
                value = response.json()
                parsed = value if isinstance(value, dict) else None
            except ValueError:
                parsed = None
        return ActorResponse(
            status=response.status_code,
            body=response.text,
            json=parsed,
            headers=dict(response.headers),
            sent=sent,
        )

    def _deliver_interaction(self, payload: dict[str, Any]) -> ActorResponse:
        body = f"payload={quote(json.dumps(payload))}".encode()
        return self.deliver(body, content_type=FORM, sent=payload, envelope="interactive")

    # -- pieces of payloads -----------------------------------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        name = self.ws.user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.ws.team_id}

    def _team(self) -> dict[str, Any]:
        return {"id": self.ws.team_id, "domain": self.ws.team_domain}

    def _channel(self, channel_id: str) -> Channel:
        """A known channel; ``D<user id>`` names the bot's DM with that user, opened on demand."""
        channel = self.ws.channels.get(channel_id)
        if channel is None and channel_id.startswith("D") and channel_id[1:] in self.ws.users:
            channel = self.ws.dm_channel(channel_id[1:])
        if channel is None:
            raise LookupError(f"no channel {channel_id}")
        return channel

    def _channel_name(self, channel: Channel) -> str:
        return "directmessage" if channel.is_im else channel.name

    def _channel_type(self, channel: Channel) -> str:
        if channel.is_im:
            return "im"
        if channel.is_mpim:
            return "mpim"
        return "group" if channel.is_private else "channel"

    # -- slash commands ---------------------------------------------------------------------------

    def slash_command(self, user_id: str, channel_id: str, text: str, command: str = "/triage") -> ActorResponse:
        with self.ws.lock:
            channel = self._channel(channel_id)
            trigger_id = self.ws.issue_trigger(user_id)
            response_url = self.ws.issue_response_url(
                self.root_url(), kind="slash_command", user_id=user_id, channel_id=channel_id
            )
            fields = {  # the order real Slack uses
                "token": VERIFICATION_TOKEN,
                "team_id": self.ws.team_id,
                "team_domain": self.ws.team_domain,
                "channel_id": channel_id,
                "channel_name": self._channel_name(channel),
                "user_id": user_id,
                "user_name": self.ws.user_name(user_id),
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": response_url.url,
                "trigger_id": trigger_id,
            }
        response = self.deliver(urlencode(fields).encode(), content_type=FORM, sent=fields, envelope="slash_commands")
        self._show_command_reply(user_id, channel_id, response)
        return response

    def _show_command_reply(self, user_id: str, channel_id: str, response: ActorResponse) -> None:
        """An ack body (``ack("text")``) is shown to the user, like a response_url answer."""
        if response.status != 200 or not response.body.strip():
            return
        reply = response.json if response.json is not None else {"text": response.body}
        text, blocks = str(reply.get("text") or ""), reply.get("blocks")
        if not text and not blocks:
            return
        with self.ws.lock:
            blocks_list: list[dict[str, Any]] = blocks if validation.is_block_list(blocks) else []
            channel = self.ws.channels.get(channel_id)
            if reply.get("response_type") == "in_channel" and channel is not None:
                self.ws.post(channel, user=BOT_USER_ID, text=text, blocks=blocks_list, bot_id=BOT_ID)
                return
            self.ws.ephemerals.append(
                {
                    "user": user_id,
                    "channel": channel_id,
                    "text": text,
                    "blocks": blocks_list,
                    "thread_ts": None,
                    "ts": self.ws.next_ts(),
                    "source": "command_response",
                }
            )

    # -- block actions ----------------------------------------------------------------------------

    def _find_element(
        self, blocks: list[dict[str, Any]], action_id: str, kinds: tuple[str, ...], where: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """The element with ``action_id`` (and one of ``kinds``) in blocks, with its block id."""
        for block in blocks:
            candidates: list[Any] = []
            if block.get("type") == "actions":
                candidates = list(block.get("elements", []))
            elif isinstance(block.get("accessory"), dict):
                candidates = [block["accessory"]]
            elif block.get("type") == "input" and isinstance(block.get("element"), dict):
                candidates = [block["element"]]
            for element in candidates:
                if isinstance(element, dict) and element.get("action_id") == action_id and element.get("type") in kinds:
                    return str(block.get("block_id", "")), element
        raise LookupError(f"no {'/'.join(kinds)} with action_id {action_id!r} in {where}")

    def _block_actions(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, kinds: tuple[str, ...]
    ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """The common part of a ``block_actions`` payload and the element acted on."""
        payload, message = self._message_payload(user_id, channel_id, message_ts)
        block_id, element = self._find_element(message.blocks, action_id, kinds, f"message {message.ts}")
        return payload, element, block_id

    def _message_payload(self, user_id: str, channel_id: str, message_ts: str) -> tuple[dict[str, Any], Message]:
        """A ``block_actions`` payload without its actions, for a message in the channel.

        A deleted message still on someone's screen can be clicked: Slack then delivers the action
        with the message as it was, and the app decides what that means.
        """
        channel = self._channel(channel_id)
        message = channel.find(message_ts) or self.ws.deleted.get((channel_id, message_ts))
        if message is None:
            raise LookupError(f"no message {message_ts} in {channel_id}")
        response_url = self.ws.issue_response_url(
            self.root_url(), kind="block_actions", user_id=user_id, channel_id=channel_id, message_ts=message.ts
        )
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        if message.is_reply:
            container["thread_ts"] = message.thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": self.ws.issue_trigger(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self._channel_name(channel)},
            "message": message.to_api(team_id=self.ws.team_id),
            "state": {"values": {}},
            "response_url": response_url.url,
            "actions": [],
        }
        return payload, message

    def _ephemeral_payload(self, user_id: str, channel_id: str, message_ts: str) -> dict[str, Any]:
        """A ``block_actions`` payload for a click in an ephemeral message: Slack sends no ``message``."""
        channel = self._channel(channel_id)
        response_url = self.ws.issue_response_url(
            self.root_url(),
            kind="block_actions",
            user_id=user_id,
            channel_id=channel_id,
            message_ts=message_ts,
            is_ephemeral=True,
        )
        return {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": True},
            "trigger_id": self.ws.issue_trigger(user_id),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self._channel_name(channel)},
            "state": {"values": {}},
            "response_url": response_url.url,
            "actions": [],
        }

    def _seen_action(self, blocks: list[dict[str, Any]], seen: dict[str, Any]) -> dict[str, Any]:
        """The ``actions`` item for what the person clicked or chose, as their client showed it.

        The element is looked up in the blocks for its full definition (style, option objects); on a
        card redrawn since (a double click, a stale page) it may be gone, and the client then sends
        what it had on screen, as Slack's does.
        """
        action_id, kind = str(seen.get("action_id", "")), str(seen.get("type", "button"))
        element: dict[str, Any] = {}
        block_id = str(seen.get("block_id", ""))
        with contextlib.suppress(LookupError):  # redrawn since: what the client had on screen
            block_id, element = self._find_element(blocks, action_id, (kind,))
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id}
        if kind == "button":
            action.update(
                text=element.get("text") or {"type": "plain_text", "text": str(seen.get("text", "")), "emoji": True},
                value=element.get("value", seen.get("value")),
                type="button",
            )
            if element.get("style"):
                action["style"] = element["style"]
        else:
            value = str(seen.get("value", ""))
            options = list(element.get("options", []))
            for group in element.get("option_groups", []):
                options.extend(group.get("options", []) if isinstance(group, dict) else [])
            option = next((o for o in options if isinstance(o, dict) and o.get("value") == value), None)
            text = (
                option.get("text")
                if option
                else {"type": "plain_text", "text": str(seen.get("text", "")), "emoji": True}
            )
            action.update(type=kind, selected_option={"text": text, "value": value})
            if element.get("placeholder"):
                action["placeholder"] = element["placeholder"]
        action["action_ts"] = self.ws.next_ts()
        return action

    def act(
        self, user_id: str, channel_id: str, message_ts: str, seen: dict[str, Any], *, ephemeral: bool = False
    ) -> ActorResponse:
        """A click or a choice in a message (``seen``: action_id, block_id, type, value, text)."""
        with self.ws.lock:
            if ephemeral:
                payload = self._ephemeral_payload(user_id, channel_id, message_ts)
                eph = next((e for e in self.ws.ephemerals if e.get("ts") == message_ts), None)
                blocks = list(eph.get("blocks") or []) if eph else []
            else:
                payload, message = self._message_payload(user_id, channel_id, message_ts)
                blocks = message.blocks
            action = self._seen_action(blocks, seen)
            payload["actions"] = [action]
            if action["type"] != "button":
                chosen = {"type": action["type"], "selected_option": action["selected_option"]}
                payload["state"] = {"values": {action["block_id"]: {action["action_id"]: chosen}}}
        return self._deliver_interaction(payload)

    def act_in_view(self, user_id: str, view_id: str, seen: dict[str, Any]) -> ActorResponse:
        """A click or a choice in a Home tab or a modal: the container is the view."""
        with self.ws.lock:
            view = self.ws.views.get(view_id)
            if view is None or view.user_id != user_id:
                raise LookupError(f"no view {view_id} for {user_id}")
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": self._user(user_id),
                "api_app_id": APP_ID,
                "token": VERIFICATION_TOKEN,
                "container": {"type": "view", "view_id": view_id},
                "trigger_id": self.ws.issue_trigger(user_id, view_id=view_id if view.type == "modal" else None),
                "team": self._team(),
                "enterprise": None,
                "is_enterprise_install": False,
                "view": view.to_api(team_id=self.ws.team_id),
                "actions": [self._seen_action(list(view.spec.get("blocks", [])), seen)],
            }
        return self._deliver_interaction(payload)

    def click_button(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, value: str | None = None
    ) -> ActorResponse:
        with self.ws.lock:
            payload, button, block_id = self._block_actions(user_id, channel_id, message_ts, action_id, ("button",))
            action: dict[str, Any] = {
                "action_id": action_id,
                "block_id": block_id,
                "text": button.get("text"),
                "value": value if value is not None else button.get("value"),
                "type": "button",
                "action_ts": self.ws.next_ts(),
            }
            if button.get("style"):
                action["style"] = button["style"]
            payload["actions"] = [action]
        return self._deliver_interaction(payload)

    def select_option(
        self, user_id: str, channel_id: str, message_ts: str, action_id: str, option_value: str
    ) -> ActorResponse:
        with self.ws.lock:
            payload, select, block_id = self._block_actions(
                user_id, channel_id, message_ts, action_id, ("static_select",)
            )
            options = list(select.get("options", []))
            for group in select.get("option_groups", []):
                options.extend(group.get("options", []))
            option = next((o for o in options if o.get("value") == option_value), None)
            if option is None:
                raise LookupError(f"no option {option_value!r} in select {action_id!r}")
            action = {
                "type": "static_select",
                "action_id": action_id,
                "block_id": block_id,
                "selected_option": {"text": option.get("text"), "value": option_value},
                "action_ts": self.ws.next_ts(),
            }
            if select.get("placeholder"):
                action["placeholder"] = select["placeholder"]
            payload["actions"] = [action]
            payload["state"] = {"values": {block_id: {action_id: {"type": "static_select", "selected_option": option}}}}
        return self._deliver_interaction(payload)

    # -- modals -----------------------------------------------------------------------------------

    def submit_view(self, user_id: str, view_id: str, values: dict[str, dict[str, Any]]) -> ActorResponse:
        """Submit an open modal, then do what the bot's ack said (close, errors, update, push, clear)."""
        with self.ws.lock:
            view = self.ws.views.get(view_id)
            if view is None or view.type != "modal" or view_id not in self.ws.modal_stacks.get(user_id, []):
                raise LookupError(f"no open modal {view_id} for {user_id}")
            view.state_values = values
            payload = {
                "type": "view_submission",
                "team": self._team(),
                "user": self._user(user_id),
                "api_app_id": APP_ID,
                "token": VERIFICATION_TOKEN,
                "trigger_id": self.ws.issue_trigger(user_id, view_id=view_id),
                "view": view.to_api(team_id=self.ws.team_id),
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        response = self._deliver_interaction(payload)
        if response.status == 200:
            with self.ws.lock:
                self._apply_view_ack(user_id, view, response.json or {})
        return response

    def _apply_view_ack(self, user_id: str, view: View, ack: dict[str, Any]) -> None:
        action = ack.get("response_action")
        errors = ack.get("errors")
        view.errors = (
            {str(k): str(v) for k, v in errors.items()} if action == "errors" and isinstance(errors, dict) else {}
        )
        if action == "errors":
            return  # the modal stays open showing the errors
        if action == "clear":
            self.ws.close_modal(user_id, view.id, all_views=True)
        elif action == "update" and not validation.check_view(ack.get("view")):
            view.spec = ack["view"]
            view.hash = self.ws.new_hash()
        elif action == "push" and not validation.check_view(ack.get("view")):
            pushed = self.ws.new_view("modal", user_id, ack["view"], previous=view.id)
            self.ws.modal_stacks.setdefault(user_id, []).append(pushed.id)
        elif action is None:
            self.ws.close_modal(user_id, view.id)

    def close_view(self, user_id: str, view: View) -> ActorResponse:
        """``view_closed``, sent when a person closes a modal that asked for ``notify_on_close``."""
        with self.ws.lock:
            payload = {
                "type": "view_closed",
                "team": self._team(),
                "user": self._user(user_id),
                "api_app_id": APP_ID,
                "token": VERIFICATION_TOKEN,
                "view": view.to_api(team_id=self.ws.team_id),
                "is_cleared": True,
                "is_enterprise_install": False,
                "enterprise": None,
            }
        return self._deliver_interaction(payload)

    # -- Events API -------------------------------------------------------------------------------

    def send_event(
        self,
        event: dict[str, Any],
        *,
        retry_num: int | None = None,
        event_id: str | None = None,
        retry_reason: str = "http_timeout",
    ) -> ActorResponse:
        with self.ws.lock:
            inner = dict(event)
            inner.setdefault("event_ts", inner.get("ts") or self.ws.next_ts())
            envelope = {
                "token": VERIFICATION_TOKEN,
                "team_id": self.ws.team_id,
                "api_app_id": APP_ID,
                "event": inner,
                "type": "event_callback",
                "event_id": event_id or self.ws.new_id("Ev"),
                "event_time": int(self.ws.now()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": self.ws.team_id,
                        "user_id": BOT_USER_ID,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
                "event_context": f"4-{self.ws.new_id('ctx')}",
            }
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers = {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": retry_reason}
        body = json.dumps(envelope).encode()
        return self.deliver(
            body, content_type="application/json", sent=envelope, headers=headers, envelope="events_api"
        )

    def _store_user_message(
        self, user_id: str, channel_id: str, text: str, thread_ts: str | None, bot_id: str | None
    ) -> tuple[Message, dict[str, Any]]:
        """Store a message a person (or another bot) wrote and build its ``message`` event."""
        channel = self._channel(channel_id)
        message = self.ws.post(channel, user=user_id, text=text, thread_ts=thread_ts, bot_id=bot_id)
        event: dict[str, Any] = {
            "type": "message",
            "channel": channel_id,
            "user": user_id,
            "text": text,
            "ts": message.ts,
            "event_ts": message.ts,
            "channel_type": self._channel_type(channel),
            "team": self.ws.team_id,
        }
        if message.is_reply:
            event["thread_ts"] = message.thread_ts
            event["parent_user_id"] = message.parent_user_id
        if bot_id:
            event["bot_id"] = bot_id
        return message, event

    def post_as_user(
        self,
        user_id: str,
        channel_id: str,
        text: str,
        thread_ts: str | None = None,
        *,
        bot_id: str | None = None,
    ) -> tuple[str, ActorResponse | None]:
        with self.ws.lock:
            message, event = self._store_user_message(user_id, channel_id, text, thread_ts, bot_id)
        if not self.has_target():
            return message.ts, None
        return message.ts, self.send_event(event)

    def mention_bot(self, user_id: str, channel_id: str, text: str, thread_ts: str | None = None) -> ActorResponse:
        self._target()
        mention = f"<@{BOT_USER_ID}>"
        full_text = text if mention in text else f"{mention} {text}"
        with self.ws.lock:
            _message, event = self._store_user_message(user_id, channel_id, full_text, thread_ts, None)
            event = {k: v for k, v in event.items() if k != "channel_type"}
            event["type"] = "app_mention"
        return self.send_event(event)

    def say(
        self, user_id: str, channel_id: str, text: str, thread_ts: str | None = None
    ) -> tuple[str, list[ActorResponse]]:
        """A person types a message: Slack stores it, sends ``message`` to an app subscribed to the
        channel's messages (``message.channels``, so a bot member of a public channel), and when
        the text mentions the bot, ``app_mention`` as well: two events for one message."""
        with self.ws.lock:
            message, event = self._store_user_message(user_id, channel_id, text, thread_ts, None)
            channel = self._channel(channel_id)
            subscribed = channel.bot_is_member and self._channel_type(channel) == "channel"
            mention = {k: v for k, v in event.items() if k != "channel_type"} | {"type": "app_mention"}
        if not self.has_target():
            return message.ts, []
        responses = [self.send_event(event)] if subscribed else []
        if f"<@{BOT_USER_ID}>" in text:
            responses.append(self.send_event(mention))
        return message.ts, responses

    def add_reaction(self, user_id: str, channel_id: str, ts: str, name: str) -> ActorResponse:
        self._target()
        with self.ws.lock:
            message = self._channel(channel_id).find(ts)
            if message is None:
                raise LookupError(f"no message {ts} in {channel_id}")
            users = message.reactions.setdefault(name, [])
            if user_id not in users:
                users.append(user_id)
            event = {
                "type": "reaction_added",
                "user": user_id,
                "reaction": name,
                "item_user": message.user,
                "item": {"type": "message", "channel": channel_id, "ts": ts},
                "event_ts": self.ws.next_ts(),
            }
        return self.send_event(event)

    def open_home(self, user_id: str) -> ActorResponse:
        self._target()
        with self.ws.lock:
            channel = self.ws.dm_channel(user_id)
            event: dict[str, Any] = {
                "type": "app_home_opened",
                "user": user_id,
                "channel": channel.id,
                "tab": "home",
                "event_ts": self.ws.next_ts(),
            }
            home = self.ws.views.get(self.ws.home_views.get(user_id, ""))
            if home is not None:
                event["view"] = home.to_api(team_id=self.ws.team_id)
        return self.send_event(event)
