"""The emulated workspace: users, groups, channels, messages with threads, views and what was said.

Everything a Web API call or a simulated user changes lives in one ``Workspace``. It has no HTTP in
it, so the rules (strictly increasing ``ts``, threads hanging off a parent, a DM per user, one-shot
trigger ids) are plain Python. The workspace is not locked method by method: the HTTP handlers, the
actor and the inspection helpers all hold ``workspace.lock`` (re-entrant) around a whole operation,
so a request sees and leaves a consistent state.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0TRIAGE"
BOT_NAME = "triagebot"

TRIGGER_TTL_SECONDS = 3.0
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60

# <@U123>, <@U123|name>, <!channel>, <!subteam^S123|@handle>, <#C123|name>: what Slack turns into
# pings or links in mrkdwn. Escaped text (&lt;!channel&gt;) does not match, which is the point.
MENTION_RE = re.compile(r"<([@#!])([^<>|]+)(?:\|([^<>]*))?>")


def format_ts(micros: int) -> str:
    """Slack's ``ts``: seconds, a dot and six digits of microseconds, e.g. ``1700000000.000100``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def ts_key(ts: str) -> int:
    """A ``ts`` string as microseconds, for ordering and comparisons."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6] or 0)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False
    tz: str = "UTC"
    email: str | None = None
    bot_id: str | None = None

    def to_api(self, team_id: str) -> dict[str, Any]:
        """``users.info``'s ``user`` object."""
        offset, label = _tz_details(self.tz)
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": label,
            "tz_offset": offset,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": self.real_name,
                "real_name_normalized": self.real_name,
                "display_name": self.name,
                "display_name_normalized": self.name,
                "email": self.email,
                "team": team_id,
                **({"bot_id": self.bot_id} if self.bot_id else {}),
            },
        }


def _tz_details(tz: str) -> tuple[int, str]:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return 0, tz
    now = datetime.now(zone)
    offset = now.utcoffset()
    return (int(offset.total_seconds()) if offset else 0), (now.tzname() or tz)


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    user_ids: list[str]
    created: int

    def to_api(self, team_id: str, *, include_users: bool = False) -> dict[str, Any]:
        """One item of ``usergroups.list``."""
        data: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.name,
            "description": "",
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created,
            "date_update": self.created,
            "date_delete": 0,
            "auto_type": None,
            "created_by": BOT_USER_ID,
            "updated_by": BOT_USER_ID,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.user_ids),
        }
        if include_users:
            data["users"] = list(self.user_ids)
        return data


@dataclass
class Message:
    """A channel message or thread reply, as stored (``to_api`` gives Slack's JSON)."""

    ts: str
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    reply_count: int = 0
    edited: int = 0  # number of chat.update calls
    metadata: dict[str, Any] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    bot_id: str | None = None
    subtype: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    parent_user_id: str | None = None
    replaced: int = 0  # times replaced through a response_url
    edited_ts: str | None = None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, *, team_id: str, include_metadata: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.subtype:
            data["subtype"] = self.subtype
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = APP_ID
        if self.blocks:
            data["blocks"] = self.blocks
        data["team"] = team_id
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.is_reply and self.parent_user_id:
            data["parent_user_id"] = self.parent_user_id
        if self.reply_count:
            data["reply_count"] = self.reply_count
            data["reply_users"] = list(self.reply_users)
            data["reply_users_count"] = len(self.reply_users)
            data["latest_reply"] = self.latest_reply
        if self.edited_ts:
            data["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.metadata is not None and include_metadata:
            data["metadata"] = self.metadata
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)} for name, users in self.reactions.items()
            ]
        if self.files:
            data["files"] = self.files
            data["upload"] = False
        return data

    def mrkdwn_texts(self) -> list[str]:
        """Every string Slack parses as mrkdwn here: the top-level text and mrkdwn text objects."""
        texts = [self.text] if self.text else []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                    texts.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.blocks)
        return texts

    def mentions(self) -> list[str]:
        """The live mentions in this message, e.g. ``["!channel", "@U0ALICE", "!subteam^S0ONCALL"]``.

        Slack parses ``<...>`` only in mrkdwn, so this is what would actually ping someone; escaped
        untrusted text (``&lt;!channel&gt;``) does not show up here.
        """
        found: list[str] = []
        for text in self.mrkdwn_texts():
            for sigil, target, _label in MENTION_RE.findall(text):
                if sigil in "@!":
                    found.append(f"{sigil}{target}")
        return found


@dataclass
class Channel:
    id: str
    name: str
    created: int
    is_im: bool = False
    is_mpim: bool = False
    is_private: bool = False
    is_archived: bool = False
    bot_is_member: bool = True
    dm_user: str | None = None
    timeline: list[Message] = field(default_factory=list)  # top-level messages and thread broadcasts
    threads: dict[str, list[Message]] = field(default_factory=dict)  # parent ts -> replies

    def to_api(self) -> dict[str, Any]:
        """``conversations.info``'s ``channel`` object."""
        data: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_im": self.is_im,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_im or self.is_mpim,
            "is_member": self.bot_is_member,
        }
        if self.is_im:
            data.update({"user": self.dm_user, "is_open": True, "is_user_deleted": False})
        else:
            data.update(
                {
                    "name": self.name,
                    "name_normalized": self.name,
                    "is_channel": not (self.is_private or self.is_mpim),
                    "is_group": self.is_private,
                    "is_general": False,
                    "is_shared": False,
                    "is_ext_shared": False,
                    "is_org_shared": False,
                    "topic": {"value": "", "creator": "", "last_set": 0},
                    "purpose": {"value": "", "creator": "", "last_set": 0},
                }
            )
        return data

    def find(self, ts: str) -> Message | None:
        """A top-level message or a reply with this ``ts``."""
        for message in self.timeline:
            if message.ts == ts:
                return message
        for replies in self.threads.values():
            for message in replies:
                if message.ts == ts:
                    return message
        return None

    def all_messages(self) -> list[Message]:
        """Top-level messages and replies (once each), oldest first."""
        seen: dict[str, Message] = {m.ts: m for m in self.timeline}
        for replies in self.threads.values():
            for reply in replies:
                seen.setdefault(reply.ts, reply)
        return sorted(seen.values(), key=lambda m: ts_key(m.ts))


@dataclass
class View:
    """An open modal or a published Home tab."""

    id: str
    type: str
    user_id: str
    spec: dict[str, Any]  # what the app sent: title, blocks, callback_id, private_metadata, ...
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    state_values: dict[str, Any] = field(default_factory=dict)
    closed: bool = False
    errors: dict[str, str] = field(default_factory=dict)  # the app's last ``response_action: errors``

    def to_api(self, *, team_id: str) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id,
            "team_id": team_id,
            "type": self.type,
            "blocks": spec.get("blocks", []),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "state": {"values": self.state_values},
            "hash": self.hash,
            "title": spec.get("title"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": spec.get("close"),
            "submit": spec.get("submit"),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": APP_ID,
            "external_id": spec.get("external_id", ""),
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        }


@dataclass
class Trigger:
    id: str
    issued_at: float
    user_id: str
    used: bool = False
    view_id: str | None = None  # set when issued from inside a modal (views.push target)


@dataclass
class ResponseUrl:
    """A ``response_url`` handed to the bot, and what the bot sent to it."""

    id: str
    url: str
    kind: str  # "slash_command" | "block_actions"
    user_id: str
    channel_id: str
    created_at: float
    message_ts: str | None = None  # the message whose button was clicked
    is_ephemeral: bool = False
    uses: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RecordedCall:
    """One request to the Web API, for assertions: what came in and what went out."""

    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    time: float
    status: int
    response: dict[str, Any] | None = None


@dataclass
class UploadedFile:
    """A file uploaded with the files.getUploadURLExternal / completeUploadExternal pair."""

    id: str
    name: str
    length: int
    created: int
    user: str
    title: str | None = None
    content: bytes | None = None
    snippet_type: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    ts: str | None = None  # the message that carries it

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8", errors="replace")

    def to_api(self, root_url: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": "text/plain",
            "filetype": self.snippet_type or "text",
            "pretty_type": "Plain Text",
            "user": self.user,
            "editable": True,
            "size": len(self.content or b""),
            "mode": "snippet",
            "is_external": False,
            "is_public": True,
            "url_private": f"{root_url}files/{self.id}",
            "permalink": f"{root_url}files/{self.id}",
            "channels": [self.channel] if self.channel else [],
            "groups": [],
            "ims": [],
        }
        if self.channel and self.ts:
            share: dict[str, Any] = {"ts": self.ts, "reply_count": 0, "channel_name": ""}
            if self.thread_ts:
                share["thread_ts"] = self.thread_ts
            data["shares"] = {"public": {self.channel: [share]}}
        return data


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``: Slack's ~1 message/s per channel with short bursts."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> int | None:
        """Spend a token; ``None`` when allowed, else the whole seconds to wait (``Retry-After``)."""
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self.tokens) / self.rate))


class Workspace:
    """All emulated state of one Slack workspace with our bot installed."""

    def __init__(self, *, team_id: str, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.team_id = team_id
        self.team_name = "Triage Emulator"
        self.team_domain = "triage-emulator"
        self.clock = clock
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.channels: dict[str, Channel] = {}
        self.views: dict[str, View] = {}
        self.modal_stacks: dict[str, list[str]] = {}  # user -> open modal view ids, root first
        self.home_views: dict[str, str] = {}  # user -> latest published home view id
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.calls: list[RecordedCall] = []
        self.files: dict[str, UploadedFile] = {}
        # Deleted messages by (channel, ts): a page still showing one can click it, and Slack then
        # still delivers the action with the message as it was.
        self.deleted: dict[tuple[str, str], Message] = {}
        self._last_ts = 0
        self._counter = itertools.count(1)
        self.add_user(BOT_USER_ID, BOT_NAME, real_name="Triage Bot", is_bot=True, bot_id=BOT_ID)

    # -- ids and time -----------------------------------------------------------------------------

    def now(self) -> float:
        return float(self.clock())

    def next_ts(self) -> str:
        """A message ``ts`` from the clock, strictly greater than every earlier one."""
        micros = int(self.now() * 1_000_000)
        self._last_ts = max(micros, self._last_ts + 1)
        return format_ts(self._last_ts)

    def new_id(self, prefix: str) -> str:
        """Slack-looking ids (``V0000000001``, ``F0000000002``): unique and readable in test output."""
        return f"{prefix}{next(self._counter):010d}"

    # -- seeding ----------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_bot: bool = False,
        tz: str = "UTC",
        email: str | None = None,
        bot_id: str | None = None,
    ) -> User:
        user = User(
            id=user_id,
            name=name,
            real_name=real_name or name,
            is_bot=is_bot,
            tz=tz,
            email=email or f"{name}@example.com",
            bot_id=bot_id,
        )
        self.users[user_id] = user
        return user

    def add_channel(
        self, channel_id: str, name: str, *, is_private: bool = False, bot_is_member: bool = True
    ) -> Channel:
        channel = Channel(
            id=channel_id,
            name=name.lstrip("#"),
            created=int(self.now()),
            is_private=is_private,
            bot_is_member=bot_is_member,
        )
        self.channels[channel_id] = channel
        return channel

    def add_usergroup(self, group_id: str, handle: str, user_ids: list[str]) -> Usergroup:
        group = Usergroup(id=group_id, handle=handle, name=handle, user_ids=list(user_ids), created=int(self.now()))
        self.usergroups[group_id] = group
        return group

    def user_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user else user_id

    # -- channels ---------------------------------------------------------------------------------

    def dm_channel(self, user_id: str) -> Channel:
        """The bot's DM with ``user_id``: ``D`` + the user id, created on first use, stable after."""
        channel_id = f"D{user_id}"
        channel = self.channels.get(channel_id)
        if channel is None:
            channel = Channel(id=channel_id, name=user_id, created=int(self.now()), is_im=True, dm_user=user_id)
            self.channels[channel_id] = channel
        return channel

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel by id, by ``#name``/``name``, or a user id (the bot's DM with them), like Slack."""
        if ref in self.channels:
            return self.channels[ref]
        if ref in self.users:
            return self.dm_channel(ref)
        name = ref.lstrip("#")
        for channel in self.channels.values():
            if not channel.is_im and channel.name == name:
                return channel
        return None

    # -- messages ---------------------------------------------------------------------------------

    def post(
        self,
        channel: Channel,
        *,
        user: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
        bot_id: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> Message:
        """Store a message; a ``thread_ts`` makes it a reply (``thread_ts`` of a reply means its thread).

        Raises ``LookupError`` when ``thread_ts`` names no message in the channel.
        """
        parent: Message | None = None
        if thread_ts is not None:
            target = channel.find(thread_ts)
            if target is None:
                raise LookupError(thread_ts)
            parent = channel.find(target.thread_ts) if target.is_reply and target.thread_ts else target
            assert parent is not None
        message = Message(
            ts=self.next_ts(),
            channel=channel.id,
            user=user,
            text=text,
            blocks=list(blocks or []),
            metadata=metadata,
            bot_id=bot_id,
            files=list(files or []),
        )
        if parent is None:
            channel.timeline.append(message)
            return message
        message.thread_ts = parent.ts
        message.parent_user_id = parent.user
        parent.thread_ts = parent.ts
        parent.reply_count += 1
        parent.latest_reply = message.ts
        if user not in parent.reply_users:
            parent.reply_users.append(user)
        channel.threads.setdefault(parent.ts, []).append(message)
        if broadcast:
            message.subtype = "thread_broadcast"
            channel.timeline.append(message)
        return message

    def delete(self, channel: Channel, message: Message) -> None:
        """Remove a message (``chat.delete``, ``delete_original``); a parent takes its thread with it."""
        self.deleted[(channel.id, message.ts)] = message
        channel.timeline = [m for m in channel.timeline if m.ts != message.ts]
        channel.threads.pop(message.ts, None)
        if message.is_reply and message.thread_ts:
            replies = [m for m in channel.threads.get(message.thread_ts, []) if m.ts != message.ts]
            channel.threads[message.thread_ts] = replies
            parent = channel.find(message.thread_ts)
            if parent is not None:
                parent.reply_count = len(replies)
                parent.latest_reply = replies[-1].ts if replies else None
                parent.reply_users = list(dict.fromkeys(m.user for m in replies))

    def top_level(self, channel_id: str) -> list[Message]:
        channel = self.channels.get(channel_id)
        return list(channel.timeline) if channel else []

    def thread(self, channel_id: str, thread_ts: str) -> list[Message]:
        channel = self.channels.get(channel_id)
        return list(channel.threads.get(thread_ts, [])) if channel else []

    # -- views, triggers, response urls -----------------------------------------------------------

    def issue_trigger(self, user_id: str, *, view_id: str | None = None) -> str:
        trigger_id = f"{int(self.now())}{next(self._counter):04d}.{self.team_id[1:]}.{secrets.token_hex(8)}"
        self.triggers[trigger_id] = Trigger(id=trigger_id, issued_at=self.now(), user_id=user_id, view_id=view_id)
        return trigger_id

    def issue_response_url(
        self,
        root_url: str,
        *,
        kind: str,
        user_id: str,
        channel_id: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
    ) -> ResponseUrl:
        url_id = f"{next(self._counter)}{secrets.token_hex(8)}"
        record = ResponseUrl(
            id=url_id,
            url=f"{root_url}response/{url_id}",
            kind=kind,
            user_id=user_id,
            channel_id=channel_id,
            created_at=self.now(),
            message_ts=message_ts,
            is_ephemeral=is_ephemeral,
        )
        self.response_urls[url_id] = record
        return record

    def new_view(self, view_type: str, user_id: str, spec: dict[str, Any], *, previous: str | None = None) -> View:
        view_id = self.new_id("V")
        root = self.views[previous].root_view_id if previous and previous in self.views else view_id
        view = View(
            id=view_id,
            type=view_type,
            user_id=user_id,
            spec=spec,
            hash=self.new_hash(),
            root_view_id=root,
            previous_view_id=previous,
        )
        self.views[view_id] = view
        return view

    def new_hash(self) -> str:
        return f"{int(self.now())}.{secrets.token_hex(4)}"

    def open_modals(self, user_id: str) -> list[View]:
        return [self.views[v] for v in self.modal_stacks.get(user_id, [])]

    def close_modal(self, user_id: str, view_id: str, *, all_views: bool = False) -> None:
        stack = self.modal_stacks.get(user_id, [])
        closing = list(stack) if all_views else [v for v in stack if v == view_id]
        for closed in closing:
            self.views[closed].closed = True
        self.modal_stacks[user_id] = [v for v in stack if v not in closing]
