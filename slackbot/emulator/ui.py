"""The browser side of the emulator: what a person does in the page, done as Slack would.

The page (``html.channel_page``, ``html.home_page``) polls ``GET /ui/state`` for its fragments and
posts each gesture here as JSON. Every gesture becomes what Slack would send the app, through the
same ``Actor`` the tests use (one signer, one payload builder): a click is ``block_actions``, a
modal's submit ``view_submission``, a ``/command`` a signed slash command, a typed line a
``message`` event (and ``app_mention`` when it names the bot), a reaction ``reaction_added``,
opening Home ``app_home_opened``.

Bad input is answered as Slack answers it and never with a 5xx: an unknown ``/command`` gets
Slackbot's "is not a valid command", an app that fails or cannot be reached gets Slack's
``dispatch_failed`` notice, an unknown user ``user_not_found`` (400), a modal submitted twice
``view_closed`` (409, the first submission stands).
"""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from slackbot.emulator import html
from slackbot.emulator.actor import Actor, ActorResponse
from slackbot.emulator.api import ApiResponse
from slackbot.emulator.state import View, Workspace

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
REACTION_NAME = re.compile(r"^[a-z0-9_+\-']{1,100}$")
MAX_MESSAGE = 40_000  # Slack truncates longer messages; the composer refuses them
WORD = re.compile(r"(?<![\w<@#!])([@#])([a-z0-9][a-z0-9._\-]*)", re.I)


class BadGesture(Exception):
    """A gesture Slack itself would refuse: answered with ``status`` and Slack's error name."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _json(data: dict[str, Any], status: int = 200) -> ApiResponse:
    response = ApiResponse.json(data, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _outcome(response: ActorResponse | None, what: str) -> dict[str, Any]:
    """What the person sees after the app answered: nothing when it took it, else Slack's notice."""
    if response is None:
        return {"ok": True}
    if response.status == 200:
        return {"ok": True, "status": 200}
    return {
        "ok": False,
        "error": "dispatch_failed",
        "detail": f"{what} failed: the app responded with HTTP {response.status}",
        "status": response.status,
    }


def escape_typed(text: str) -> str:
    """What Slack's client sends for typed text: ``& < >`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode_mentions(text: str, ws: Workspace, *, labels: bool = False) -> str:
    """``@name``/``#channel`` typed in the composer as the client encodes them (``<@U1>``, ``<#C1>``,
    ``<!subteam^S1>``, ``<!here>``); a slash command with ``should_escape`` gets ``|labels`` too."""

    def swap(match: re.Match[str]) -> str:
        sigil, word = match.group(1), match.group(2)
        name = word.rstrip(".-")
        rest = word[len(name) :]
        if sigil == "#":
            channel = next((c for c in ws.channels.values() if not c.is_im and c.name == name), None)
            if channel:
                return (f"<#{channel.id}|{name}>" if labels else f"<#{channel.id}>") + rest
            return match.group(0)
        if name in ("here", "channel", "everyone"):
            return f"<!{name}>{rest}"
        user = next((u for u in ws.users.values() if u.name == name), None)
        if user:
            return (f"<@{user.id}|{name}>" if labels else f"<@{user.id}>") + rest
        group = next((g for g in ws.usergroups.values() if g.handle == name), None)
        if group:
            return (f"<!subteam^{group.id}|@{name}>" if labels else f"<!subteam^{group.id}>") + rest
        return match.group(0)

    return WORD.sub(swap, text)


def state_values(view: View, raw: dict[str, Any], ws: Workspace) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's raw values as Slack's ``view.state.values``, and the client's own refusals
    (a required input left empty never reaches the app: Slack's client says so under the field)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for block in view.spec.get("blocks", []):
        if not isinstance(block, dict) or block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        element = block["element"]
        block_id, action_id, kind = (
            str(block.get("block_id", "")),
            str(element.get("action_id", "")),
            element.get("type"),
        )
        given = (raw.get(block_id) or {}).get(action_id) if isinstance(raw.get(block_id), dict) else None
        chosen = [str(v) for v in given] if isinstance(given, list) else ([str(given)] if given else [])
        options = {o.get("value"): o for o in html._options(element)}
        state: dict[str, Any] = {"type": kind}
        if kind in ("static_select", "radio_buttons"):
            state["selected_option"] = options.get(chosen[0]) if chosen else None
        elif kind in ("checkboxes", "multi_static_select"):
            state["selected_options"] = [options[v] for v in chosen if v in options]
        elif kind == "users_select":
            state["selected_user"] = chosen[0] if chosen else None
        elif kind == "conversations_select":
            state["selected_conversation"] = chosen[0] if chosen else None
        elif kind == "channels_select":
            state["selected_channel"] = chosen[0] if chosen else None
        elif kind == "datepicker":
            state["selected_date"] = chosen[0] if chosen else None
        else:
            state["value"] = str(given) if isinstance(given, str) and given != "" else None
        empty = not any(v for k, v in state.items() if k != "type")
        if empty and not block.get("optional"):
            errors[block_id] = "Please complete this required field."
        values[block_id] = {action_id: state}
    return values, errors


class Ui:
    """Routes ``/ui/*`` and ``/static/*`` for one emulator."""

    def __init__(self, workspace: Workspace, actor: Actor, commands: tuple[str, ...]) -> None:
        self.ws = workspace
        self.actor = actor
        self.commands = commands  # the app's slash commands; the composer answers any other as Slack does
        self.routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "action": self.action,
            "submit": self.submit,
            "close": self.close,
            "compose": self.compose,
            "react": self.react,
            "home": self.home,
        }

    # -- plumbing ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: bytes) -> ApiResponse | None:
        """The answer for a UI route, or ``None`` when ``path`` is not one."""
        if path.startswith("/static/"):
            return self.static(path[len("/static/") :])
        if path == "/ui/state":
            return self.guarded(lambda: self.state(query))
        name = path[len("/ui/") :] if path.startswith("/ui/") else ""
        if name not in self.routes:
            return None
        if method != "POST":
            return _json({"ok": False, "error": "method_not_allowed", "detail": "POST a JSON body"}, 405)
        return self.guarded(lambda: self.routes[name](self.parse(body)))

    def guarded(self, work: Callable[[], dict[str, Any]]) -> ApiResponse:
        try:
            return _json(work())
        except BadGesture as bad:
            return _json({"ok": False, "error": bad.error, "detail": bad.detail}, bad.status)

    def static(self, name: str) -> ApiResponse:
        path = STATIC / name
        if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
            return ApiResponse.text("not found", status=404)
        response = ApiResponse(status=200, body=path.read_bytes(), content_type=STATIC_TYPES[path.suffix])
        response.headers["Cache-Control"] = "no-cache"
        return response

    @staticmethod
    def parse(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise BadGesture(400, "invalid_json", f"the body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadGesture(400, "invalid_json", "the body must be a JSON object")
        return data

    def user(self, data: dict[str, Any]) -> str:
        user = str(data.get("user") or "")
        with self.ws.lock:
            known = self.ws.users.get(user)
        if known is None or known.is_bot:
            raise BadGesture(400, "user_not_found", f"no user {user!r} in this workspace; pick one from the list")
        return user

    def channel(self, data: dict[str, Any]) -> str:
        channel = str(data.get("channel") or "")
        with self.ws.lock:
            if channel not in self.ws.channels:
                raise BadGesture(404, "channel_not_found", f"no channel {channel!r} in this workspace")
        return channel

    def deliver(self, what: str, send: Callable[[], ActorResponse | None]) -> dict[str, Any]:
        """Send to the app; an app that is down or not configured gets Slack's notice, not a 5xx."""
        try:
            return _outcome(send(), what)
        except RuntimeError as exc:  # no bot_url and no Socket Mode connection
            return {"ok": False, "error": "dispatch_failed", "detail": f"{what} failed: {exc}"}
        except httpx.HTTPError as exc:
            return {"ok": False, "error": "dispatch_failed", "detail": f"{what} failed: the app is unreachable ({exc})"}
        except LookupError as exc:
            raise BadGesture(404, "not_found", str(exc)) from exc

    def slackbot_says(self, user: str, channel: str, text: str) -> None:
        with self.ws.lock:
            self.ws.ephemerals.append(
                {
                    "user": user,
                    "channel": channel,
                    "text": text,
                    "blocks": [],
                    "thread_ts": None,
                    "ts": self.ws.next_ts(),
                    "source": "slackbot",
                }
            )

    # -- reading ----------------------------------------------------------------------------------

    def state(self, query: str) -> dict[str, Any]:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        user = self.user(params)
        with self.ws.lock:
            if params.get("home"):
                main = html.home_fragment(self.ws, user)
            else:
                channel = self.ws.channels.get(params.get("channel", ""))
                if channel is None:
                    raise BadGesture(404, "channel_not_found", f"no channel {params.get('channel')!r}")
                main = html.channel_fragment(self.ws, channel, user)
            return {"ok": True, "html": main, "modal": html.modal_html(self.ws, user)}

    # -- gestures ---------------------------------------------------------------------------------

    def action(self, data: dict[str, Any]) -> dict[str, Any]:
        """A click or a choice: ``container`` (kind message/ephemeral/view) and ``act`` (the element)."""
        user = self.user(data)
        container, act = data.get("container"), data.get("act")
        if not isinstance(container, dict) or not isinstance(act, dict) or not act.get("action_id"):
            raise BadGesture(400, "invalid_action", "an action needs a container and an element with an action_id")
        kind = container.get("kind")
        label = str(act.get("text") or act.get("action_id"))
        if kind == "view":
            view_id = str(container.get("view_id", ""))
            return self.deliver(label, lambda: self.actor.act_in_view(user, view_id, act))
        if kind not in ("message", "ephemeral"):
            raise BadGesture(400, "invalid_action", f"unknown container kind {kind!r}")
        channel, ts = self.channel(container), str(container.get("ts", ""))
        return self.deliver(label, lambda: self.actor.act(user, channel, ts, act, ephemeral=kind == "ephemeral"))

    def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        user, view_id = self.user(data), str(data.get("view_id", ""))
        raw = data.get("values") if isinstance(data.get("values"), dict) else {}
        assert isinstance(raw, dict)
        with self.ws.lock:
            view = self.ws.views.get(view_id)
            if view is None or view_id not in self.ws.modal_stacks.get(user, []):
                raise BadGesture(
                    409, "view_closed", "This form was already submitted or closed; the first submission stands."
                )
            values, errors = state_values(view, raw, self.ws)
            if errors:
                view.state_values, view.errors = values, errors
                return {"ok": False, "error": "required", "detail": "Please complete the required fields."}
        title = html._plain(view.spec.get("title")) or "the form"
        return self.deliver(title, lambda: self.actor.submit_view(user, view_id, values))

    def close(self, data: dict[str, Any]) -> dict[str, Any]:
        user, view_id = self.user(data), str(data.get("view_id", ""))
        with self.ws.lock:
            view = self.ws.views.get(view_id)
            if view is None or view_id not in self.ws.modal_stacks.get(user, []):
                return {"ok": True}  # closing twice closes nothing more
            self.ws.close_modal(user, view_id, all_views=True)
            notify = bool(view.spec.get("notify_on_close"))
        if not notify:
            return {"ok": True}
        return self.deliver("closing the form", lambda: self.actor.close_view(user, view))

    def compose(self, data: dict[str, Any]) -> dict[str, Any]:
        """A line typed in the composer: a ``/command`` or a message."""
        user, channel = self.user(data), self.channel(data)
        text = str(data.get("text") or "").strip("\n")
        thread_ts = str(data.get("thread_ts") or "") or None
        if not text.strip():
            raise BadGesture(400, "no_text", "type a message or a /command")
        if len(text) > MAX_MESSAGE:
            raise BadGesture(400, "msg_too_long", f"messages are limited to {MAX_MESSAGE} characters")
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            if command not in self.commands:
                self.slackbot_says(
                    user,
                    channel,
                    f"`{command}` is not a valid command. In Slack, all messages that start with the"
                    ' "/" character are interpreted as commands.\n\nIf you are trying to send a message'
                    ' and not run a command, try preceding the "/" with an empty space.',
                )
                return {"ok": True, "command": command, "valid": False}
            with self.ws.lock:
                encoded = encode_mentions(escape_typed(rest.strip()), self.ws, labels=True)
            try:
                response = self.actor.slash_command(user, channel, encoded, command)
            except (RuntimeError, httpx.HTTPError):
                response = None
            if response is None or response.status != 200:
                # Slack's own words when the app's endpoint fails or cannot be reached
                self.slackbot_says(user, channel, f'{command} failed with the error "dispatch_failed"')
            return {"ok": True, "command": command, "valid": True}
        with self.ws.lock:
            encoded = encode_mentions(escape_typed(text), self.ws)
            if thread_ts is not None and self.ws.channels[channel].find(thread_ts) is None:
                raise BadGesture(404, "thread_not_found", f"no message {thread_ts} to reply to")
        try:
            ts, responses = self.actor.say(user, channel, encoded, thread_ts)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": "dispatch_failed", "detail": f"the app is unreachable ({exc})"}
        failed = next((r for r in responses if r.status != 200), None)
        return {**_outcome(failed, "delivering the message"), "ts": ts}

    def react(self, data: dict[str, Any]) -> dict[str, Any]:
        user, channel = self.user(data), self.channel(data)
        name, ts = str(data.get("name") or "").strip(":"), str(data.get("ts") or "")
        if not REACTION_NAME.match(name):
            raise BadGesture(400, "invalid_name", f"{htmllib.escape(name)!r} is not an emoji name")
        with self.ws.lock:
            message = self.ws.channels[channel].find(ts)
            if message is None:
                raise BadGesture(404, "message_not_found", f"no message {ts} in {channel}")
            if user in message.reactions.get(name, []):
                return {"ok": False, "error": "already_reacted", "detail": f"you already reacted with :{name}:"}
        if not self.actor.has_target():
            with self.ws.lock:
                message.reactions.setdefault(name, []).append(user)
            return {"ok": True}
        return self.deliver(f":{name}:", lambda: self.actor.add_reaction(user, channel, ts, name))

    def home(self, data: dict[str, Any]) -> dict[str, Any]:
        user = self.user(data)
        return self.deliver("opening Home", lambda: self.actor.open_home(user))
