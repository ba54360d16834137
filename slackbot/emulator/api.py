"""The Web API methods the bot calls, answered with Slack's shapes and Slack's refusals.

``WebApi.handle`` takes a request as the HTTP layer saw it (method name, content type, raw body, query
string, headers) and returns an ``ApiResponse``; it knows nothing about sockets, so the server stays a
thin router. Every call is recorded with what came in and what went out, because the tests that matter
assert on the blocks and text the bot actually sent.

Request decoding follows slack_sdk (reference section 2): some methods are sent as JSON, others as
form fields, and nested values (``blocks``, ``view``, ``metadata``) arrive as JSON strings in forms.
Every method accepts every encoding and ignores the HTTP verb, as Slack does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from slackbot.emulator import validation
from slackbot.emulator.scopes import METHODS, conversation_kind
from slackbot.emulator.state import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_SECONDS,
    TRIGGER_TTL_SECONDS,
    Channel,
    Message,
    RecordedCall,
    TokenBucket,
    UploadedFile,
    View,
    Workspace,
    ts_key,
)

POST_TEXT_MAX = 40_000  # chat.postMessage truncates above this
UPDATE_TEXT_MAX = 4_000  # chat.update refuses above this (msg_too_long)
ATTACHMENTS_MAX = 100
PUSH_STACK_MAX = 3
JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "files", "event_payload")
TS_RE = re.compile(r"^\d{9,11}\.\d{1,6}$")
REACTION_RE = re.compile(r"^[a-z0-9_+\-']+(?:::skin-tone-[2-6])?$")
# What the bot is granted: exactly the bot scopes of manifest.yml (a test keeps the two equal), so
# a call the manifest does not cover fails here as it would in a real workspace, with
# ``missing_scope`` (a call on an IM channel needs ``im:history``, not ``channels:history``).
BOT_SCOPES = (
    "commands,chat:write,chat:write.public,im:write,usergroups:read,reactions:read,"
    "app_mentions:read,channels:history,im:history,files:write,channels:read,users:read"
)
# Scopes a method needs (any one of them) and the methods that need the conversation kind's scope,
# both read from ``scopes.METHODS`` (the same data the manifest test derives the bot's scopes from).
METHOD_SCOPES: dict[str, tuple[str, ...]] = {name: m.any_of for name, m in METHODS.items() if m.any_of}
CONVERSATION_METHODS: dict[str, str] = {name: m.action for name, m in METHODS.items() if m.action}
SERVER_ERROR_HTML = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Server Error | Slack</title>'
    "</head><body><h1>Slack is having trouble</h1><p>Something went wrong on our end. "
    "Status {status}.</p></body></html>"
)


@dataclass
class ApiResponse:
    """An HTTP answer: status, body bytes, content type and extra headers (``Retry-After``)."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # the JSON document, when the body is one

    @classmethod
    def json(cls, data: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(status=status, body=json.dumps(data).encode(), headers=dict(headers or {}), data=data)

    @classmethod
    def text(cls, text: str, *, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> ApiResponse:
        return cls(status=status, body=text.encode(), content_type=content_type)


class SlackError(Exception):
    """A refusal in Slack's form: HTTP 200 (usually) with ``{"ok": false, "error": ...}``."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.messages = messages or []

    def response(self) -> ApiResponse:
        data: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            data["errors"] = list(self.messages)
            data["response_metadata"] = {"messages": list(self.messages)}
        return ApiResponse.json(data, status=self.status, headers=self.headers)


class _MissingScope(SlackError):
    """Slack's answer to a call the token's scopes do not cover: it names what was needed."""

    def __init__(self, needed: str, provided: str) -> None:
        super().__init__("missing_scope")
        self.needed, self.provided = needed, provided

    def response(self) -> ApiResponse:
        data = {"ok": False, "error": "missing_scope", "needed": self.needed, "provided": self.provided}
        return ApiResponse.json(data)


def _conversation_scope(channel: Channel, action: str) -> str:
    kind = conversation_kind(is_im=channel.is_im, is_mpim=channel.is_mpim, is_private=channel.is_private)
    return f"{kind}:{action}"


@dataclass
class Failure:
    """A scripted failure from ``fail_next``: the next ``remaining`` calls of a method fail so."""

    status: int
    remaining: int
    retry_after: int
    error: str | None

    def response(self) -> ApiResponse:
        if self.status == 429:
            return ApiResponse.json(
                {"ok": False, "error": self.error or "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if self.status >= 500:
            # Slack's edge answers outages with an HTML page, not JSON; clients must cope.
            html = SERVER_ERROR_HTML.format(status=self.status)
            return ApiResponse.text(html, status=self.status, content_type="text/html; charset=utf-8")
        return ApiResponse.json({"ok": False, "error": self.error or "internal_error"}, status=self.status)


def decode_params(content_type: str, raw: bytes, query: str) -> dict[str, Any]:
    """Query string, then a JSON or form body on top; nested JSON strings decoded where they parse."""
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    kind = content_type.split(";", 1)[0].strip().lower()
    if raw:
        if kind == "application/json":
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise SlackError("invalid_json") from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            params.update(body)
        elif kind.startswith("multipart/"):
            raise SlackError("invalid_form_data")
        else:
            form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
    for name in JSON_FIELDS:
        value = params.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # Unparseable JSON stays a string: the method reports the format error.
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params


class Params:
    """Typed access to decoded parameters, coercing form strings the way Slack reads them."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def required(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.get(name)
        if not value:
            raise SlackError(error)
        return value

    def flag(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return bool(value)

    def number(self, name: str, default: int) -> int:
        value = self.data.get(name)
        if value in (None, ""):
            return default
        try:
            return int(str(value))
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc


def _page(items: list[Any], params: Params, *, default_limit: int = 100) -> tuple[list[Any], str]:
    """Cursor pagination: an opaque cursor encoding the offset, like Slack's base64 cursors."""
    limit = max(1, min(params.number("limit", default_limit), 999))
    cursor = params.get("cursor") or ""
    offset = 0
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])
        except (ValueError, IndexError) as exc:
            raise SlackError("invalid_cursor") from exc
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    next_cursor = base64.urlsafe_b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
    return page, next_cursor


Handler = Callable[[Params], dict[str, Any]]


class WebApi:
    """Slack Web API methods over a ``Workspace``."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        bot_token: str,
        root_url: Callable[[], str],
        rate_limit_per_channel: float = 1.0,
        burst: int = 5,
        scopes: str = BOT_SCOPES,
    ) -> None:
        self.ws = workspace
        self.scopes = scopes
        self.bot_token = bot_token
        self.root_url = root_url
        self.rate_limit_per_channel = rate_limit_per_channel
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._failures: dict[str, deque[Failure]] = {}
        self.methods: dict[str, Handler] = {
            "api.test": lambda p: {"args": {k: v for k, v in p.data.items() if k != "token"}},
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.open": self.conversations_open,
            "conversations.info": self.conversations_info,
            "conversations.join": self.conversations_join,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "reactions.add": self.reactions_add,
            "reactions.remove": self.reactions_remove,
            "files.upload": self.files_upload,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "files.info": self.files_info,
        }

    # -- plumbing ---------------------------------------------------------------------------------

    def fail_next(self, method: str, *, status: int, count: int, retry_after: int, error: str | None) -> None:
        with self.ws.lock:
            self._failures.setdefault(method, deque()).append(
                Failure(status=status, remaining=count, retry_after=retry_after, error=error)
            )

    def _take_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.popleft()
        return failure

    def handle(self, method: str, *, content_type: str, raw: bytes, query: str, headers: dict[str, str]) -> ApiResponse:
        """Answer one ``POST /api/<method>`` and record it."""
        with self.ws.lock:
            data: dict[str, Any] = {}
            try:
                data = decode_params(content_type, raw, query)
                response = self._dispatch(method, Params(data), headers)
            except SlackError as exc:
                response = exc.response()
            response.headers.setdefault("x-oauth-scopes", self.scopes)
            self.ws.calls.append(
                RecordedCall(
                    method=method,
                    headers={k.lower(): v for k, v in headers.items()},
                    body=data,
                    time=self.ws.now(),
                    status=response.status,
                    response=response.data,
                )
            )
            return response

    def _dispatch(self, method: str, params: Params, headers: dict[str, str]) -> ApiResponse:
        failure = self._take_failure(method)
        if failure is not None:
            return failure.response()
        self._authenticate(params, headers)
        handler = self.methods.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        self._authorize(method, params)
        return ApiResponse.json({"ok": True, **handler(params)})

    def _authenticate(self, params: Params, headers: dict[str, str]) -> None:
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        token = token or (params.get("token") or "")
        if not token:
            raise SlackError("not_authed")
        if token != self.bot_token:
            raise SlackError("invalid_auth")

    def _authorize(self, method: str, params: Params) -> None:
        granted = set(self.scopes.split(","))
        needed = METHOD_SCOPES.get(method, ())
        if method in CONVERSATION_METHODS:
            channel = self.ws.resolve_channel(params.get("channel") or "")
            if channel is not None:
                needed = (_conversation_scope(channel, CONVERSATION_METHODS[method]),)
        if needed and not granted.intersection(needed):
            raise _MissingScope(",".join(needed), self.scopes)
        unjoined = METHODS[method].unjoined_public if method in METHODS else None
        if unjoined and unjoined not in granted:
            # Slack's answer to a post into a public channel the bot has not joined, without the
            # scope that allows it (a private one is refused by ``_writable`` either way).
            channel = self.ws.resolve_channel(params.get("channel") or "")
            if channel is not None and not channel.bot_is_member and not channel.is_private and not channel.is_im:
                raise SlackError("not_in_channel")

    # -- shared checks ----------------------------------------------------------------------------

    def _channel(self, params: Params, name: str = "channel") -> Channel:
        ref = params.get(name)
        channel = self.ws.resolve_channel(ref) if ref else None
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _writable(self, channel: Channel) -> None:
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.bot_is_member and channel.is_private:
            raise SlackError("not_in_channel")

    def _message(self, channel: Channel, ts: str | None) -> Message:
        message = channel.find(ts) if ts else None
        if message is None:
            raise SlackError("message_not_found")
        return message

    def _blocks(self, params: Params) -> list[dict[str, Any]] | None:
        raw = params.data.get("blocks")
        if raw is None or raw == "":
            return None
        if not validation.is_block_list(raw):
            raise SlackError("invalid_blocks_format")
        problems = validation.check_blocks(raw)
        if problems:
            raise SlackError("invalid_blocks", messages=problems)
        return list(raw)

    def _metadata(self, params: Params) -> dict[str, Any] | None:
        raw = params.data.get("metadata")
        if raw is None or raw == "":
            return None
        if not isinstance(raw, dict):
            raise SlackError("invalid_metadata_format")
        if not isinstance(raw.get("event_type"), str) or not isinstance(raw.get("event_payload", {}), dict):
            raise SlackError("invalid_metadata_schema")
        return {"event_type": raw["event_type"], "event_payload": raw.get("event_payload", {})}

    def _rate_limit(self, channel_id: str) -> None:
        if self.rate_limit_per_channel <= 0:
            return
        now = self.ws.now()
        bucket = self._buckets.get(channel_id)
        if bucket is None:
            bucket = TokenBucket(self.rate_limit_per_channel, self.burst, float(self.burst), now)
            self._buckets[channel_id] = bucket
        wait = bucket.take(now)
        if wait is not None:
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(wait)})

    def _message_json(self, message: Message, params: Params | None = None) -> dict[str, Any]:
        # Slack returns other apps' metadata only with include_all_metadata; our own always.
        include = message.bot_id == BOT_ID or (params is not None and params.flag("include_all_metadata"))
        return message.to_api(team_id=self.ws.team_id, include_metadata=include)

    # -- auth, chat -------------------------------------------------------------------------------

    def auth_test(self, params: Params) -> dict[str, Any]:
        return {
            "url": f"https://{self.ws.team_domain}.slack.com/",
            "team": self.ws.team_name,
            "user": BOT_NAME,
            "team_id": self.ws.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        self._writable(channel)
        self._rate_limit(channel.id)
        text = params.get("text") or ""
        blocks = self._blocks(params)
        attachments = params.data.get("attachments")
        if isinstance(attachments, list) and len(attachments) > ATTACHMENTS_MAX:
            raise SlackError("too_many_attachments")
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        thread_ts = params.get("thread_ts") or None
        if thread_ts is not None and not TS_RE.match(thread_ts):
            raise SlackError("invalid_thread_ts", messages=[f"[ERROR] {thread_ts} is not a valid thread_ts"])
        metadata = self._metadata(params)
        try:
            message = self.ws.post(
                channel,
                user=BOT_USER_ID,
                text=text[:POST_TEXT_MAX],
                blocks=blocks,
                thread_ts=thread_ts,
                broadcast=params.flag("reply_broadcast"),
                metadata=metadata,
                bot_id=BOT_ID,
            )
        except LookupError as exc:
            raise SlackError("thread_not_found") from exc
        return {"channel": channel.id, "ts": message.ts, "message": self._message_json(message)}

    def chat_update(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._message(channel, params.get("ts"))
        if message.user != BOT_USER_ID:
            raise SlackError("cant_update_message")
        text = params.get("text")
        blocks = self._blocks(params)
        if text is not None and len(text) > UPDATE_TEXT_MAX:
            raise SlackError("msg_too_long")
        if not text and blocks is None and params.data.get("attachments") is None:
            raise SlackError("no_text")
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        metadata = self._metadata(params)
        if metadata is not None:
            message.metadata = metadata
        message.edited += 1
        message.edited_ts = self.ws.next_ts()
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def chat_delete(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._message(channel, params.get("ts"))
        if message.user != BOT_USER_ID:
            raise SlackError("cant_delete_message")
        self.ws.delete(channel, message)
        return {"channel": channel.id, "ts": message.ts}

    def chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not user or user not in self.ws.users:
            raise SlackError("user_not_found")
        text = params.get("text") or ""
        blocks = self._blocks(params)
        if not text and not blocks and not params.data.get("attachments"):
            raise SlackError("no_text")
        ts = self.ws.next_ts()
        self.ws.ephemerals.append(
            {
                "user": user,
                "channel": channel.id,
                "text": text,
                "blocks": blocks or [],
                "thread_ts": params.get("thread_ts"),
                "ts": ts,
                "source": "chat.postEphemeral",
            }
        )
        return {"message_ts": ts}

    def chat_get_permalink(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._message(channel, params.get("message_ts"))
        link = f"{self.root_url()}archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # -- conversations ----------------------------------------------------------------------------

    def conversations_open(self, params: Params) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._channel(params)
            return {"channel": channel.to_api() if params.flag("return_im") else {"id": channel.id}}
        users = [u.strip() for u in (params.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        for user in users:
            if user not in self.ws.users:
                raise SlackError("user_not_found")
        if len(users) > 1:
            raise SlackError("not_supported")  # group DMs are not emulated
        existed = f"D{users[0]}" in self.ws.channels
        channel = self.ws.dm_channel(users[0])
        data: dict[str, Any] = {"channel": channel.to_api() if params.flag("return_im") else {"id": channel.id}}
        if existed:
            data.update({"no_op": True, "already_open": True})
        return data

    def conversations_info(self, params: Params) -> dict[str, Any]:
        return {"channel": self._channel(params).to_api()}

    def conversations_join(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        if channel.is_archived:
            raise SlackError("is_archived")
        if channel.is_private or channel.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        channel.bot_is_member = True
        return {"channel": channel.to_api()}

    def _window(self, messages: list[Message], params: Params) -> list[Message]:
        """Apply ``oldest``/``latest``/``inclusive`` the way Slack does (exclusive by default)."""
        inclusive = params.flag("inclusive")
        oldest, latest = params.get("oldest"), params.get("latest")
        kept = []
        for message in messages:
            key = ts_key(message.ts)
            if oldest and (key < ts_key(oldest) or (key == ts_key(oldest) and not inclusive)):
                continue
            if latest and (key > ts_key(latest) or (key == ts_key(latest) and not inclusive)):
                continue
            kept.append(message)
        return kept

    def conversations_history(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        newest_first = sorted(channel.timeline, key=lambda m: ts_key(m.ts), reverse=True)
        page, cursor = _page(self._window(newest_first, params), params)
        return {
            "messages": [self._message_json(m, params) for m in page],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_replies(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        ts = params.required("ts", "thread_not_found")
        message = channel.find(ts)
        if message is None:
            raise SlackError("thread_not_found")
        parent = channel.find(message.thread_ts) if message.is_reply and message.thread_ts else message
        assert parent is not None
        thread = [parent, *channel.threads.get(parent.ts, [])]
        page, cursor = _page(self._window(thread, params), params, default_limit=1000)
        return {
            "messages": [self._message_json(m, params) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    # -- users and groups -------------------------------------------------------------------------

    def users_info(self, params: Params) -> dict[str, Any]:
        user = self.ws.users.get(params.get("user") or "")
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_api(self.ws.team_id)}

    def users_list(self, params: Params) -> dict[str, Any]:
        members = [u.to_api(self.ws.team_id) for u in self.ws.users.values()]
        page, cursor = _page(members, params, default_limit=1000)
        return {"members": page, "cache_ts": int(self.ws.now()), "response_metadata": {"next_cursor": cursor}}

    def users_lookup_by_email(self, params: Params) -> dict[str, Any]:
        email = (params.get("email") or "").lower()
        for user in self.ws.users.values():
            if user.email and user.email.lower() == email:
                return {"user": user.to_api(self.ws.team_id)}
        raise SlackError("users_not_found")

    def usergroups_list(self, params: Params) -> dict[str, Any]:
        include = params.flag("include_users")
        return {"usergroups": [g.to_api(self.ws.team_id, include_users=include) for g in self.ws.usergroups.values()]}

    def usergroups_users_list(self, params: Params) -> dict[str, Any]:
        group = self.ws.usergroups.get(params.get("usergroup") or "")
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.user_ids)}

    # -- views ------------------------------------------------------------------------------------

    def _view_spec(self, params: Params, *, expected: str) -> dict[str, Any]:
        raw = params.data.get("view")
        if not isinstance(raw, dict):
            raise SlackError("invalid_arguments", messages=["[ERROR] must be an object [json-pointer:/view]"])
        problems = validation.check_view(raw)
        if not problems and raw.get("type") != expected:
            problems = [f"[ERROR] must be {expected} [json-pointer:/view/type]"]
        if problems:
            raise SlackError("invalid_arguments", messages=problems)
        return raw

    def _exchange_trigger(self, params: Params) -> str:
        """A trigger id is good once, within 3 seconds of the interaction (reference section 4)."""
        trigger = self.ws.triggers.get(params.get("trigger_id") or "")
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self.ws.now() - trigger.issued_at > TRIGGER_TTL_SECONDS:
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger.user_id

    def _view_response(self, view: View) -> dict[str, Any]:
        return {"view": view.to_api(team_id=self.ws.team_id)}

    def views_open(self, params: Params) -> dict[str, Any]:
        spec = self._view_spec(params, expected="modal")
        user_id = self._exchange_trigger(params)
        view = self.ws.new_view("modal", user_id, spec)
        for old in self.ws.modal_stacks.get(user_id, []):
            self.ws.views[old].closed = True
        self.ws.modal_stacks[user_id] = [view.id]
        return self._view_response(view)

    def views_push(self, params: Params) -> dict[str, Any]:
        spec = self._view_spec(params, expected="modal")
        trigger = self.ws.triggers.get(params.get("trigger_id") or "")
        stack = self.ws.modal_stacks.get(trigger.user_id, []) if trigger else []
        if len(stack) >= PUSH_STACK_MAX:
            raise SlackError("push_limit_reached")
        user_id = self._exchange_trigger(params)
        view = self.ws.new_view("modal", user_id, spec, previous=stack[-1] if stack else None)
        self.ws.modal_stacks[user_id] = [*stack, view.id]
        return self._view_response(view)

    def views_update(self, params: Params) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        view: View | None = None
        if view_id:
            view = self.ws.views.get(view_id)
        elif external_id:
            view = next((v for v in self.ws.views.values() if v.spec.get("external_id") == external_id), None)
        else:
            raise SlackError("invalid_arguments")
        if view is None or view.closed:
            raise SlackError("not_found")
        spec = self._view_spec(params, expected=view.type)
        expected_hash = params.get("hash")
        if expected_hash and expected_hash != view.hash:
            raise SlackError("hash_conflict")
        view.spec = spec
        view.hash = self.ws.new_hash()
        return self._view_response(view)

    def views_publish(self, params: Params) -> dict[str, Any]:
        user_id = params.get("user_id") or ""
        if user_id not in self.ws.users:
            raise SlackError("user_not_found")
        spec = self._view_spec(params, expected="home")
        current = self.ws.views.get(self.ws.home_views.get(user_id, ""))
        expected_hash = params.get("hash")
        if current is not None and expected_hash and expected_hash != current.hash:
            raise SlackError("hash_conflict")
        if current is None:
            current = self.ws.new_view("home", user_id, spec)
            self.ws.home_views[user_id] = current.id
        else:
            current.spec = spec
            current.hash = self.ws.new_hash()
        return self._view_response(current)

    # -- reactions --------------------------------------------------------------------------------

    def _reaction_target(self, params: Params) -> tuple[Message, str]:
        channel = self._channel(params)
        message = self._message(channel, params.get("timestamp"))
        name = params.get("name") or ""
        if not REACTION_RE.match(name):
            raise SlackError("invalid_name")
        return message, name

    def reactions_add(self, params: Params) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        users = message.reactions.setdefault(name, [])
        if BOT_USER_ID in users:
            raise SlackError("already_reacted")
        users.append(BOT_USER_ID)
        return {}

    def reactions_remove(self, params: Params) -> dict[str, Any]:
        message, name = self._reaction_target(params)
        users = message.reactions.get(name, [])
        if BOT_USER_ID not in users:
            raise SlackError("no_reaction")
        users.remove(BOT_USER_ID)
        if not users:
            del message.reactions[name]
        return {}

    # -- files ------------------------------------------------------------------------------------

    def files_upload(self, params: Params) -> dict[str, Any]:
        """Slack retired the one-step ``files.upload``; clients must use ``files_upload_v2``."""
        raise SlackError("method_deprecated")

    def files_get_upload_url_external(self, params: Params) -> dict[str, Any]:
        filename = params.required("filename")
        length = params.number("length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        upload = UploadedFile(
            id=self.ws.new_id("F"),
            name=filename,
            length=length,
            created=int(self.ws.now()),
            user=BOT_USER_ID,
            snippet_type=params.get("snippet_type"),
        )
        self.ws.files[upload.id] = upload
        return {"upload_url": f"{self.root_url()}upload/v1/{upload.id}", "file_id": upload.id}

    def receive_upload(self, file_id: str, raw: bytes) -> ApiResponse:
        """Step 2 of the v2 upload: the bytes POSTed to the URL step 1 handed out."""
        with self.ws.lock:
            upload = self.ws.files.get(file_id)
            if upload is None:
                return ApiResponse.text("Not Found", status=404)
            upload.content = raw
            return ApiResponse.text(f"OK - {len(raw)}")

    def files_complete_upload_external(self, params: Params) -> dict[str, Any]:
        items = params.data.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        uploads: list[UploadedFile] = []
        for item in items:
            upload = self.ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            upload.title = item.get("title") or upload.title
            uploads.append(upload)
        if params.get("channel_id") or params.get("channels"):
            ref = params.get("channel_id") or (params.get("channels") or "").split(",")[0]
            channel = self.ws.resolve_channel(ref)
            if channel is None:
                raise SlackError("channel_not_found")
            self._writable(channel)
            thread_ts = params.get("thread_ts") or None
            root = self.root_url()
            try:
                message = self.ws.post(
                    channel,
                    user=BOT_USER_ID,
                    text=params.get("initial_comment") or "",
                    thread_ts=thread_ts,
                    bot_id=BOT_ID,
                )
            except LookupError as exc:
                raise SlackError("thread_not_found") from exc
            for upload in uploads:
                upload.channel, upload.thread_ts, upload.ts = channel.id, message.thread_ts, message.ts
            message.files = [upload.to_api(root) for upload in uploads]
        return {"files": [upload.to_api(self.root_url()) for upload in uploads]}

    def files_info(self, params: Params) -> dict[str, Any]:
        upload = self.ws.files.get(params.get("file") or "")
        if upload is None or upload.content is None:
            raise SlackError("file_not_found")
        return {"file": upload.to_api(self.root_url()), "content": upload.text}

    # -- response_url -----------------------------------------------------------------------------

    def receive_response(self, url_id: str, raw: bytes, headers: dict[str, str]) -> ApiResponse:
        """What the bot POSTs to a ``response_url`` (Bolt's ``respond()``): at most 5 times in 30 min.

        For a button in a message, Slack replaces the original message unless the app says
        ``replace_original: false`` (howdyai/botkit#446 ran into exactly that); for a slash command
        there is no original, and the answer is ephemeral unless ``response_type`` is ``in_channel``.
        """
        with self.ws.lock:
            now = self.ws.now()
            record = self.ws.response_urls.get(url_id)
            body: dict[str, Any] = {}
            if record is None:
                response = ApiResponse.json({"ok": False, "error": "invalid_url"}, status=404)
            elif now - record.created_at > RESPONSE_URL_TTL_SECONDS:
                response = ApiResponse.json({"ok": False, "error": "expired_url"}, status=404)
            elif len(record.uses) >= RESPONSE_URL_MAX_USES:
                response = ApiResponse.json({"ok": False, "error": "used_url"}, status=404)
            else:
                response = self._parse_and_apply(record.id, raw, body)
            self.ws.calls.append(
                RecordedCall(
                    method="response_url",
                    headers={k.lower(): v for k, v in headers.items()},
                    body={"url_id": url_id, **body},
                    time=now,
                    status=response.status,
                    response=response.data,
                )
            )
            return response

    def _parse_and_apply(self, url_id: str, raw: bytes, body: dict[str, Any]) -> ApiResponse:
        """Decode the JSON body into ``body`` (kept for the call record) and act on it."""
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            return ApiResponse.text("invalid_payload", status=400)
        if not isinstance(parsed, dict):
            return ApiResponse.text("invalid_payload", status=400)
        body.update(parsed)
        return self._apply_response(url_id, body)

    def _apply_response(self, url_id: str, body: dict[str, Any]) -> ApiResponse:
        record = self.ws.response_urls[url_id]
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return ApiResponse.text("invalid_blocks_format", status=400)
        if blocks is not None:
            if not validation.is_block_list(blocks):
                return ApiResponse.text("invalid_blocks_format", status=400)
            if validation.check_blocks(blocks):
                return ApiResponse.text("invalid_blocks", status=400)
        text = str(body.get("text") or "")
        record.uses.append({**body, "time": self.ws.now()})
        channel = self.ws.channels.get(record.channel_id)
        original = None
        if channel is not None and record.message_ts and not record.is_ephemeral:
            original = channel.find(record.message_ts)
        replace_default = record.kind == "block_actions"
        if channel is not None and original is not None and body.get("delete_original"):
            self.ws.delete(channel, original)
            return ApiResponse.text("ok")
        if original is not None and body.get("replace_original", replace_default) is not False:
            original.text = text
            original.blocks = list(blocks or [])
            original.replaced += 1
            return ApiResponse.text("ok")
        if channel is not None and body.get("response_type") == "in_channel":
            thread_ts = body.get("thread_ts")
            try:
                self.ws.post(channel, user=BOT_USER_ID, text=text, blocks=blocks, thread_ts=thread_ts, bot_id=BOT_ID)
            except LookupError:
                return ApiResponse.text("thread_not_found", status=404)
            return ApiResponse.text("ok")
        self.ws.ephemerals.append(
            {
                "user": record.user_id,
                "channel": record.channel_id,
                "text": text,
                "blocks": list(blocks or []),
                "thread_ts": body.get("thread_ts"),
                "ts": self.ws.next_ts(),
                "source": "response_url",
                "response_url": record.id,
                "replace_original": body.get("replace_original"),
            }
        )
        return ApiResponse.text("ok")
