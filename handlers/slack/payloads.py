"""Reading what Slack sent, defensively.

Slack's own payloads always have the shapes below. One that does not (a corrupted body, a broken
proxy, a replay, a leaked signing secret) must cost a 4xx or an answer to its sender, never a
KeyError in a listener after the ack (the person then hears nothing) or a 500 before it. So every
payload is checked once, here, before Bolt or a listener indexes into it, and the pieces listeners
read (the chosen option, the incident a button names, a modal's metadata and inputs) are read
through the functions below, which raise ``BadPayload`` with a message for the sender.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from yarl import URL

from slackbot.domain.ids import IncidentRefError, echo, parse_incident_ref

MAX_DEPTH = 32  # Slack's deepest payload (a modal's state) is about 6 levels
MAX_ID = 255  # action ids, block ids and callback ids are capped at 255 characters by Slack
INTERACTIONS = frozenset({"block_actions", "view_submission", "view_closed"})
EVENT_TYPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: PostgreSQL refuses them


class BadPayload(ValueError):
    """A payload we cannot act on; the message says why, fit to show the person who sent it."""


@dataclass(frozen=True)
class Problem:
    """Why a (well-enveloped) payload cannot be acted on, and who to tell."""

    message: str
    user: str | None
    response_url: str | None
    modal: bool  # a modal submission: the answer is the ack's body (the modal shows it)


# -- the body ---------------------------------------------------------------------------------------


def parse_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request as Slack meant it: JSON for events, ``payload=<JSON>`` for interactions, form
    fields for commands. Unlike Bolt's parser, a command whose text contains the word "payload"
    stays a command, and every string comes back storable (NUL and lone surrogates replaced)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("the body is not UTF-8") from None
    if (content_type or "").split(";")[0].strip().lower() == "application/json":
        return _object(text, "the body")
    fields = form_fields(text)
    if "payload" in fields:
        return _object(fields["payload"], "the payload")
    return {key: storable(value) for key, value in fields.items()}


def form_fields(text: str) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` fields, as ``dict(urllib.parse.parse_qsl(text,
    keep_blank_values=True))`` reads them (the last of a repeated field wins), decoded by yarl's
    C unquoter (yarl comes with aiohttp). urllib's is pure Python: a click on a card is a 14 KB
    ``payload`` with some 2,000 escapes, and decoding it took a third of the acking loop's time
    (bench/ack_latency.py, profiled), ten times what yarl takes."""
    return dict(URL.build(query_string=text, encoded=True).query.items())


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise BadPayload(f"{what} is nested too deeply") from None
    except ValueError as exc:
        raise BadPayload(f"{what} is not valid JSON ({echo(exc, 80)})") from None
    if not isinstance(data, dict):
        raise BadPayload(f"{what} must be a JSON object, not {type(data).__name__}")
    cleaned = _clean(data, 1)
    assert isinstance(cleaned, dict)
    return cleaned


def _clean(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise BadPayload(f"the payload is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def storable(text: str) -> str:
    return text if text.isascii() and "\x00" not in text else _UNSTORABLE.sub("\ufffd", text)


# -- the envelope: what Bolt itself reads while building a request -------------------------------------


def envelope_problem(body: dict[str, Any]) -> str | None:
    """Why Bolt could not even build a request from ``body`` (it reads users, teams, channels and
    events while building its context), or None. Nobody is told: such a body names nobody."""
    kind = body.get("type")
    if kind is not None and not isinstance(kind, str):
        return "type must be a string"
    if kind is None:
        if isinstance(body.get("command"), str) or body.get("ssl_check") == "1":
            return None
        return "not a Slack event, command or interaction"
    if kind not in INTERACTIONS and kind not in EVENT_TYPES:
        return f"unsupported Slack request type '{echo(kind)}'"
    for key in ("user", "team", "enterprise", "channel"):
        value = body.get(key)
        if value is not None and not isinstance(value, str | dict):
            return f"{key} must be an object"
        if isinstance(value, dict) and not isinstance(value.get("id", ""), str):
            return f"{key}.id must be a string"
    for key in ("container", "message", "view", "event", "state"):
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"{key} must be an object"
    for key in ("authorizations", "response_urls", "actions"):
        value = body.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            return f"{key} must be a list of objects"
    if body.get("response_url") is not None and not isinstance(body["response_url"], str):
        return "response_url must be a string"
    event = body.get("event")
    if kind == "event_callback" and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return "event_callback needs an event with a type"
    if isinstance(event, dict):
        for key in ("ts", "thread_ts", "text", "subtype", "bot_id", "reaction", "tab"):
            if event.get(key) is not None and not isinstance(event[key], str):
                return f"event.{key} must be a string"
        for key in ("user", "channel", "item"):  # an id, or an object for some event types
            if event.get(key) is not None and not isinstance(event[key], str | dict):
                return f"event.{key} has the wrong type"
    return None


# -- what our listeners need, with somebody to tell -----------------------------------------------------


def user_of(body: dict[str, Any]) -> str | None:
    """The person an interaction comes from (``user.id``: listeners read it so)."""
    user = body.get("user")
    found = user.get("id") if isinstance(user, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ID else None


def problem(body: dict[str, Any]) -> Problem | None:
    """Why an interaction cannot be acted on (with whom to tell), or None. Events and commands
    are plain enough once the envelope holds; their listeners read them field by field."""
    kind = body.get("type")
    if kind not in INTERACTIONS:
        return None
    user = user_of(body)
    url = body.get("response_url")
    response_url = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    why = _action_problem(body) if kind == "block_actions" else _view_problem(body, kind == "view_submission")
    if why is None and user is None:
        why = "it names no user"
    if why is None:
        return None
    return Problem(
        f"I could not read that {'form' if kind != 'block_actions' else 'click'} ({why}); nothing was changed.",
        user,
        response_url,
        modal=kind == "view_submission",
    )


def _action_problem(body: dict[str, Any]) -> str | None:
    actions = body.get("actions")
    if not actions:
        return "it carries no action"
    action = actions[0]
    if not isinstance(action.get("action_id"), str) or not 0 < len(action["action_id"]) <= MAX_ID:
        return "its action has no action_id"
    for key in ("block_id", "value", "action_ts"):
        if action.get(key) is not None and not isinstance(action[key], str):
            return f"its {key} is not text"
    return None


def _view_problem(body: dict[str, Any], submitted: bool) -> str | None:
    view = body.get("view")
    if not isinstance(view, dict):
        return "it carries no view"
    if not isinstance(view.get("callback_id"), str):
        return "its view has no callback_id"
    if view.get("private_metadata") is not None and not isinstance(view["private_metadata"], str):
        return "its private_metadata is not text"
    if not submitted:
        return None
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        return "its view has no state"
    for inputs in values.values():
        if not isinstance(inputs, dict) or not all(isinstance(v, dict) for v in inputs.values()):
            return "its state is not a map of inputs"
    return None


# -- pieces listeners read -----------------------------------------------------------------------------


def request_key(body: dict[str, Any]) -> str:
    """Names one Slack request, the same each time it is delivered (the inbox's unique key).
    Slack issues a fresh ``trigger_id`` per interaction and command; a click adds its action and
    its ``action_ts``. Without a trigger (not in Slack's payloads, but cheap to cover), a digest of
    the request stands in: a redelivery carries the same bytes."""
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        kind = str(body.get("type") or body.get("command") or "")
        actions = body.get("actions")
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        return f"{kind}:{trigger}:{action.get('action_id', '')}:{action.get('action_ts', '')}"[:500]
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"digest:{digest}"


def first_action(body: dict[str, Any]) -> dict[str, Any]:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise BadPayload("this click carries no action")
    action: dict[str, Any] = actions[0]
    return action


def chosen(action: dict[str, Any]) -> str:
    """The option picked in a select menu."""
    option = action.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    if not isinstance(value, str) or not value:
        raise BadPayload("no option was chosen in this menu")
    return value


def incident_of(action: dict[str, Any], *, value: bool = True) -> int:
    """The incident a card element names: buttons in their ``value``, selects (which have no
    value of their own) in their block id ``incident:<id>``."""
    raw = action.get("value") if value else None
    if not raw:
        block = action.get("block_id")
        if not isinstance(block, str) or not block.startswith("incident:"):
            raise BadPayload("this card is from an older version of the bot; use /triage with the incident id")
        raw = block.removeprefix("incident:")
    try:
        return parse_incident_ref(raw)
    except IncidentRefError as exc:
        raise BadPayload(str(exc)) from None


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    """A modal's ``private_metadata``: the JSON object the bot wrote when it opened the modal."""
    try:
        data = json.loads(str(view.get("private_metadata") or ""))
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise BadPayload("this form is from an older version of the bot; open it again from the card")
    return data


def metadata_incident(view: dict[str, Any]) -> int:
    try:
        return parse_incident_ref(metadata(view).get("incident"))
    except IncidentRefError as exc:
        raise BadPayload(str(exc)) from None


def inputs(view: dict[str, Any]) -> dict[str, str]:
    """Each input block's text (``action_id`` ``value``), stripped; a missing one reads as ""."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    found: dict[str, str] = {}
    for block, elements in (values or {}).items():
        element = elements.get("value") if isinstance(elements, dict) else None
        text = element.get("value") if isinstance(element, dict) else None
        found[str(block)] = text.strip() if isinstance(text, str) else ""
    return found


def input_blocks(view: dict[str, Any]) -> list[str]:
    """The ids of a modal's input blocks: where an error can be shown."""
    found = [
        str(b["block_id"])
        for b in view.get("blocks") or []
        if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)
    ]
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    return found + [str(k) for k in values if str(k) not in found] if isinstance(values, dict) else found


def refusal(view: dict[str, Any], message: str, block: str | None = None) -> dict[str, Any]:
    """``ack()`` arguments that show ``message`` in the modal: under ``block`` (else the first
    input) as Slack shows field errors, or, for a modal without inputs, as a modal of its own."""
    blocks = input_blocks(view)
    target = block if block in blocks else (blocks[0] if blocks else None)
    if target is None:
        return {"response_action": "update", "view": error_view(message)}
    return {"response_action": "errors", "errors": {target: message[:300]}}


def error_view(message: str) -> dict[str, Any]:
    """A modal replacing one that cannot be submitted: what went wrong, and a Close button."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "triagebot"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": f"⚠️ {message}"[:3000]}}],
    }
