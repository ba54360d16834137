"""How a person reads and uses the emulated workspace: a plain-text transcript and HTML pages.

Both render messages the way the Slack client shows them, not as raw JSON: blocks rather than the
fallback ``text``, buttons as ``[Label]``, and mrkdwn entities resolved (``<@U1>`` reads ``@alice``,
``<!channel>`` reads ``@channel``, ``&lt;`` reads ``<``). That makes the transcript a real test oracle:
escaped untrusted text shows up literally, a live broadcast shows up as ``@channel``.

The HTML escapes every piece of workspace text, because that text comes from test names and logs,
which are attacker-shaped by design (``<script>``, ``<!channel>``); mrkdwn is rendered by
``mrkdwn.to_html``, which escapes before it formats.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slackbot.emulator import mrkdwn
from slackbot.emulator.state import BOT_USER_ID, MENTION_RE, Channel, Message, User, Workspace, ts_key

SPECIAL_MENTIONS = {"channel", "here", "everyone"}


@dataclass(frozen=True)
class Segment:
    """A run of displayed mrkdwn: plain text, a mention, or a link."""

    kind: str  # "text" | "mention" | "link"
    text: str
    url: str = ""


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_segments(text: str, ws: Workspace) -> Iterator[Segment]:
    """Split mrkdwn into what Slack displays: entities resolved, the three escapes undone."""
    position = 0
    for match in MENTION_RE.finditer(text):
        if match.start() > position:
            yield Segment("text", _unescape(text[position : match.start()]))
        sigil, target, label = match.groups()
        yield _entity(sigil, target, label, ws)
        position = match.end()
    if position < len(text):
        yield Segment("text", _unescape(text[position:]))


def _entity(sigil: str, target: str, label: str | None, ws: Workspace) -> Segment:
    if sigil == "@":
        return Segment("mention", f"@{ws.user_name(target)}")
    if sigil == "#":
        channel = ws.channels.get(target)
        return Segment("mention", f"#{label or (channel.name if channel else target)}")
    if target in SPECIAL_MENTIONS:
        return Segment("mention", f"@{target}")
    if target.startswith("subteam^"):
        group = ws.usergroups.get(target.split("^", 1)[1])
        handle = label.lstrip("@") if label else (group.handle if group else target)
        return Segment("mention", f"@{handle}")
    return Segment("text", _unescape(label or target))  # <!date^...|fallback> and friends


def mrkdwn_to_text(text: str, ws: Workspace) -> str:
    return "".join(_link_text(s) for s in _split_links(text, ws))


def _link_text(segment: Segment) -> str:
    if segment.kind == "link":
        return f"{segment.text} ({segment.url})" if segment.text != segment.url else segment.url
    return segment.text


def _split_links(text: str, ws: Workspace) -> Iterator[Segment]:
    """Entities first, then ``<url|label>`` links found in the raw (still escaped) text runs."""
    position = 0
    for index, char in enumerate(text):
        if index < position or char != "<":
            continue
        end = text.find(">", index)
        if end < 0:
            break
        inner = text[index + 1 : end]
        if inner[:1] in "@#!" or "<" in inner:
            continue
        url, _, label = inner.partition("|")
        if "://" not in url and not url.startswith("mailto:"):
            continue
        yield from mrkdwn_segments(text[position:index], ws)
        yield Segment("link", _unescape(label or url), _unescape(url))
        position = end + 1
    yield from mrkdwn_segments(text[position:], ws)


def text_object(obj: Any, ws: Workspace) -> str:
    """A composition object as displayed: mrkdwn resolved, plain_text shown literally."""
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn_to_text(text, ws) if obj.get("type") == "mrkdwn" else text


def _element_label(element: dict[str, Any], ws: Workspace) -> str:
    kind = element.get("type", "")
    if kind == "button":
        return f"[{text_object(element.get('text'), ws)}]"
    if kind in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
        initial = element.get("initial_option")
        shown = text_object(initial.get("text"), ws) if isinstance(initial, dict) else ""
        shown = shown or text_object(element.get("placeholder"), ws) or kind
        return f"[{shown} v]"
    if kind.endswith("select"):
        return f"[{text_object(element.get('placeholder'), ws) or kind} v]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    return f"[{kind}]"


def block_lines(block: dict[str, Any], ws: Workspace) -> list[str]:
    """One block as the text lines a reader sees."""
    kind = block.get("type")
    if kind == "header":
        return [f"*{text_object(block.get('text'), ws)}*"]
    if kind == "section":
        lines = text_object(block.get("text"), ws).splitlines() if block.get("text") else []
        fields = [text_object(f, ws) for f in block.get("fields", [])]
        if fields:
            lines.extend(" | ".join(fields).splitlines())
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            lines.append(_element_label(accessory, ws))
        return lines
    if kind == "context":
        parts = [
            f"[image: {e.get('alt_text', '')}]" if e.get("type") == "image" else text_object(e, ws)
            for e in block.get("elements", [])
            if isinstance(e, dict)
        ]
        return [" · ".join(parts)]
    if kind == "actions":
        return [" ".join(_element_label(e, ws) for e in block.get("elements", []) if isinstance(e, dict))]
    if kind == "divider":
        return ["---"]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "markdown":
        return str(block.get("text", "")).splitlines()
    if kind == "input":
        return [f"{text_object(block.get('label'), ws)}: {_element_label(block.get('element') or {}, ws)}"]
    if kind == "rich_text":
        return _rich_text(block).splitlines()
    return [f"[{kind}]"]


def _rich_text(node: Any) -> str:
    if isinstance(node, dict):
        if node.get("type") == "text":
            return str(node.get("text", ""))
        return "".join(_rich_text(child) for child in node.get("elements", []))
    if isinstance(node, list):
        return "".join(_rich_text(child) for child in node)
    return ""


def message_lines(message: Message, ws: Workspace) -> list[str]:
    """The body of a message: its blocks if it has any (the client hides ``text`` then)."""
    lines: list[str] = []
    if message.blocks:
        for block in message.blocks:
            lines.extend(block_lines(block, ws))
    elif message.text:
        lines.extend(mrkdwn_to_text(message.text, ws).splitlines())
    for upload in message.files:
        lines.append(f"[file: {upload.get('title') or upload.get('name')}]")
    return lines


def _reaction_text(message: Message, ws: Workspace) -> str:
    return "  ".join(
        f":{name}: {', '.join(ws.user_name(u) for u in users)}" for name, users in message.reactions.items()
    )


def _message_block(message: Message, ws: Workspace, indent: str) -> list[str]:
    head = f"{indent}{ws.user_name(message.user)} [{message.ts}]"
    if message.edited:
        head += f" (edited x{message.edited})"
    lines = [head]
    lines.extend(f"{indent}  {line}" for line in message_lines(message, ws))
    if message.reactions:
        lines.append(f"{indent}  {_reaction_text(message, ws)}")
    return lines


def transcript(ws: Workspace, channel_id: str | None = None) -> str:
    """Channels with their messages oldest first and each thread indented under its parent."""
    if channel_id is not None and channel_id not in ws.channels:
        raise LookupError(f"no channel {channel_id}")
    channels = [ws.channels[channel_id]] if channel_id else list(ws.channels.values())
    out: list[str] = []
    for channel in channels:
        if channel_id is None and not channel.timeline:
            continue
        out.append(f"#{channel.name} ({channel.id})" if not channel.is_im else f"DM {channel.dm_user} ({channel.id})")
        for message in channel.timeline:
            if message.is_reply:
                continue  # a thread broadcast: shown in its thread
            out.extend(_message_block(message, ws, "  "))
            for reply in channel.threads.get(message.ts, []):
                out.extend(_message_block(reply, ws, "    > "))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def thread_transcript(ws: Workspace, channel_id: str, ts: str) -> str:
    """One message and its thread, as a person reads them."""
    channel = ws.channels[channel_id]
    message = next(m for m in channel.timeline if m.ts == ts)
    lines = _message_block(message, ws, "  ")
    for reply in channel.threads.get(ts, []):
        lines.extend(_message_block(reply, ws, "    > "))
    return "\n".join(lines) + "\n"


# -- HTML -----------------------------------------------------------------------------------------
#
# Pages are rendered here, on the server; the page's script (static/emulator.js) only swaps in the
# fragments /ui/state returns and posts what the person did. Interactive elements carry what the
# client needs to report a click as Slack's client does (``data-act``: action_id, block_id, type,
# value, label, confirm) and sit inside an element naming their container (``data-container``).


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _attr_json(data: dict[str, Any]) -> str:
    return _e(json.dumps(data, separators=(",", ":")))


def mrkdwn_html(text: str, ws: Workspace) -> str:
    return mrkdwn.to_html(text, ws)


def _plain(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _text_html(obj: Any, ws: Workspace) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_html(text, ws)
    # plain_text: literal, but Slack shows :emoji: shortcodes when ``emoji`` is on (the default)
    return mrkdwn.EMOJI_RE.sub(lambda m: mrkdwn.emoji(m.group(1)), _e(text)) if obj.get("emoji", True) else _e(text)


def _options(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = [o for o in element.get("options", []) if isinstance(o, dict)]
    for group in element.get("option_groups", []):
        options.extend(o for o in (group.get("options", []) if isinstance(group, dict) else []) if isinstance(o, dict))
    return options


def _confirm(element: dict[str, Any]) -> dict[str, str] | None:
    confirm = element.get("confirm")
    if not isinstance(confirm, dict):
        return None
    return {
        "title": _plain(confirm.get("title")) or "Are you sure?",
        "text": _plain(confirm.get("text")),
        "confirm": _plain(confirm.get("confirm")) or "Yes",
        "deny": _plain(confirm.get("deny")) or "Cancel",
    }


def _element_html(element: dict[str, Any], ws: Workspace, block_id: str = "") -> str:
    kind = str(element.get("type", ""))
    act: dict[str, Any] = {"action_id": element.get("action_id", ""), "block_id": block_id, "type": kind}
    confirm = _confirm(element)
    if confirm:
        act["confirm"] = confirm
    if kind == "button":
        act.update(value=element.get("value"), text=_plain(element.get("text")))
        if element.get("url"):
            act["url"] = element["url"]
        style = f" {element['style']}" if element.get("style") in ("primary", "danger") else ""
        return (
            f'<button type="button" class="btn{style}" data-act="{_attr_json(act)}">'
            f"{_text_html(element.get('text'), ws)}</button>"
        )
    if kind in ("static_select", "overflow"):
        initial = element.get("initial_option") if isinstance(element.get("initial_option"), dict) else None
        chosen = initial.get("value") if initial else None
        placeholder = "⋯" if kind == "overflow" else (_plain(element.get("placeholder")) or "Select…")
        items = [f'<option value="" disabled{"" if chosen else " selected"}>{_e(placeholder)}</option>']
        for option in _options(element):
            selected = " selected" if option.get("value") == chosen else ""
            items.append(
                f'<option value="{_e(option.get("value", ""))}"{selected}>{_e(_plain(option.get("text")))}</option>'
            )
        css = "overflow" if kind == "overflow" else "select"
        return f'<select class="{css}" data-act="{_attr_json(act)}">{"".join(items)}</select>'
    if kind == "image":
        return f'<span class="meta">[image: {_e(element.get("alt_text", ""))}]</span>'
    if kind.endswith("select"):
        return f"<select disabled><option>{_e(_plain(element.get('placeholder')) or kind)}</option></select>"
    return f'<span class="meta">[{_e(kind)}]</span>'


def block_html(
    block: dict[str, Any], ws: Workspace, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None
) -> str:
    kind = block.get("type")
    block_id = str(block.get("block_id", ""))
    if kind == "header":
        return f'<div class="header">{_text_html(block.get("text"), ws)}</div>'
    if kind == "section":
        parts = []
        if block.get("text"):
            parts.append(f'<div class="text">{_text_html(block.get("text"), ws)}</div>')
        fields = block.get("fields") or []
        if fields:
            cells = "".join(f'<div class="text">{_text_html(f, ws)}</div>' for f in fields)
            parts.append(f'<div class="fields">{cells}</div>')
        accessory = block.get("accessory")
        body = "".join(parts)
        if isinstance(accessory, dict):
            return f'<div class="section"><div>{body}</div><div>{_element_html(accessory, ws, block_id)}</div></div>'
        return f'<div class="section"><div>{body}</div></div>'
    if kind == "context":
        items = [
            f"[image: {_e(e.get('alt_text', ''))}]" if e.get("type") == "image" else _text_html(e, ws)
            for e in block.get("elements", [])
            if isinstance(e, dict)
        ]
        return f'<div class="context">{" · ".join(items)}</div>'
    if kind == "actions":
        elements = "".join(_element_html(e, ws, block_id) for e in block.get("elements", []) if isinstance(e, dict))
        return f'<div class="actions">{elements}</div>'
    if kind == "divider":
        return "<hr>"
    if kind == "input":
        return _input_html(block, ws, values or {}, (errors or {}).get(block_id))
    if kind == "markdown":
        return f'<div class="text">{_e(block.get("text", ""))}</div>'
    lines = "\n".join(block_lines(block, ws))
    return f'<div class="text">{_e(lines)}</div>'


def _input_html(block: dict[str, Any], ws: Workspace, values: dict[str, Any], error: str | None) -> str:
    """An input block of a modal as a form control; ``values`` (what was submitted) refills it, and
    the app's error for the block shows under it, as in Slack."""
    element = block.get("element") if isinstance(block.get("element"), dict) else {}
    assert isinstance(element, dict)
    block_id, action_id, kind = str(block.get("block_id", "")), str(element.get("action_id", "")), element.get("type")
    previous = (values.get(block_id) or {}).get(action_id) or {}
    mark = _attr_json({"block_id": block_id, "action_id": action_id})
    label = _text_html(block.get("label"), ws) + (
        "" if not block.get("optional") else ' <span class="meta">(optional)</span>'
    )
    if kind in ("static_select", "radio_buttons", "checkboxes", "multi_static_select"):
        chosen = {o.get("value") for o in previous.get("selected_options", []) if isinstance(o, dict)}
        if isinstance(previous.get("selected_option"), dict):
            chosen.add(previous["selected_option"].get("value"))
        initial = element.get("initial_option")
        if not previous and isinstance(initial, dict):
            chosen.add(initial.get("value"))
        options = "".join(
            f'<option value="{_e(o.get("value", ""))}"{" selected" if o.get("value") in chosen else ""}>'
            f"{_e(_plain(o.get('text')))}</option>"
            for o in _options(element)
        )
        multiple = " multiple" if kind in ("checkboxes", "multi_static_select") else ""
        empty = "" if multiple else f'<option value="">{_e(_plain(element.get("placeholder")) or "Select…")}</option>'
        control = f'<select data-input="{mark}"{multiple}>{empty}{options}</select>'
    elif kind in ("users_select", "conversations_select", "channels_select"):
        pairs = (
            [(u.id, u.name) for u in ws.users.values() if not u.is_bot]
            if kind == "users_select"
            else [(c.id, f"#{c.name}") for c in ws.channels.values() if not c.is_im]
        )
        current = (
            previous.get("selected_user") or previous.get("selected_conversation") or previous.get("selected_channel")
        )
        options = "".join(
            f'<option value="{_e(v)}"{" selected" if v == current else ""}>{_e(t)}</option>' for v, t in pairs
        )
        control = f'<select data-input="{mark}"><option value="">Select…</option>{options}</select>'
    elif kind == "datepicker":
        value = previous.get("selected_date") or element.get("initial_date") or ""
        control = f'<input type="date" data-input="{mark}" value="{_e(value)}">'
    else:  # plain_text_input and the other text inputs
        value = previous.get("value") if previous else element.get("initial_value")
        placeholder = _e(_plain(element.get("placeholder")))
        if element.get("multiline"):
            control = f'<textarea data-input="{mark}" placeholder="{placeholder}" rows="4">{_e(value or "")}</textarea>'
        else:
            control = f'<input type="text" data-input="{mark}" placeholder="{placeholder}" value="{_e(value or "")}">'
    hint = f'<div class="meta">{_text_html(block.get("hint"), ws)}</div>' if block.get("hint") else ""
    if error:
        hint += f'<div class="error">{_e(error)}</div>'
    return f'<label class="input" data-block="{_e(block_id)}"><div class="label">{label}</div>{control}{hint}</label>'


def _display_name(ws: Workspace, user_id: str) -> str:
    user = ws.users.get(user_id)
    return user.name if user else user_id


def _tz(ws: Workspace, viewer: str | None) -> str:
    user = ws.users.get(viewer or "")
    return user.tz if user else "UTC"


def _message_html(
    message: Message, ws: Workspace, *, reply: bool = False, viewer: str | None = None, replies: int = 0
) -> str:
    tz = _tz(ws, viewer)
    app = ' <span class="app">APP</span>' if message.bot_id or message.user == BOT_USER_ID else ""
    when = mrkdwn.message_time(message.ts, ws.now(), tz)
    meta = (
        f'<span class="who">{_e(_display_name(ws, message.user))}</span>{app} '
        f'<span class="meta" title="{_e(message.ts)}">{_e(when)}'
    )
    if message.edited or message.replaced:
        meta += " (edited)"
    if message.subtype == "thread_broadcast":
        meta += " · also sent to the channel"
    meta += "</span>"
    if message.blocks:
        body = "".join(block_html(b, ws) for b in message.blocks)
    else:
        body = f'<div class="text">{mrkdwn_html(message.text, ws)}</div>'
    for upload in message.files:
        body += f'<div class="text">📄 {_e(upload.get("title") or upload.get("name"))}</div>'
    chips = "".join(
        f'<span class="reaction" title="{_e(", ".join(_display_name(ws, u) for u in users))}">'
        f"{_e(mrkdwn.emoji(name))} {len(users)}</span>"
        for name, users in message.reactions.items()
    )
    picker = "".join(f'<option value="{_e(n)}">{_e(mrkdwn.emoji(n))} :{_e(n)}:</option>' for n in REACTION_CHOICES)
    tools = (
        f'<div class="reactions">{chips}'
        f'<select class="react" title="Add reaction"><option value="" selected disabled>☺+</option>{picker}</select>'
    )
    if not reply:
        thread = f"{replies} repl{'y' if replies == 1 else 'ies'}" if replies else "Reply in thread"
        tools += f'<button type="button" class="link reply-to">{_e(thread)}</button>'
    tools += "</div>"
    container = _attr_json({"kind": "message", "channel": message.channel, "ts": message.ts})
    css = "msg reply" if reply else "msg"
    return f'<div class="{css}" id="m{_e(message.ts)}" data-container="{container}">{meta}{body}{tools}</div>'


REACTION_CHOICES = ("eyes", "white_check_mark", "+1", "rotating_light", "tada", "bug", "x", "repeat")


def _ephemeral_html(eph: dict[str, Any], ws: Workspace, viewer: str) -> str:
    body = "".join(block_html(b, ws) for b in eph.get("blocks") or []) or (
        f'<div class="text">{mrkdwn_html(str(eph.get("text", "")), ws)}</div>'
    )
    who = "Slackbot" if eph.get("source") == "slackbot" else _display_name(ws, BOT_USER_ID)
    ts = str(eph.get("ts", ""))
    when = mrkdwn.message_time(ts, ws.now(), _tz(ws, viewer)) if ts else ""
    container = _attr_json({"kind": "ephemeral", "channel": eph.get("channel"), "ts": ts})
    return (
        f'<div class="msg eph" data-container="{container}"><span class="who">{_e(who)}</span> '
        f'<span class="meta">{_e(when)} · Only visible to you</span>{body}</div>'
    )


STYLE_LINK = '<link rel="stylesheet" href="/static/emulator.css">'


def page(title: str, body: str, *, script: bool = False) -> str:
    tail = '<script src="/static/emulator.js" defer></script>' if script else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"{STYLE_LINK}{tail}</head><body>{body}</body></html>"
    )


def _channel_title(channel: Channel, ws: Workspace) -> str:
    return f"DM with {ws.user_name(channel.dm_user or '')}" if channel.is_im else f"#{channel.name}"


def people(ws: Workspace) -> list[User]:
    """Who the page can act as: every human, by name."""
    return sorted((u for u in ws.users.values() if not u.is_bot), key=lambda u: u.name)


def default_user(ws: Workspace) -> str | None:
    humans = people(ws)
    return humans[0].id if humans else None


def unknown_user(ws: Workspace, user_id: str) -> str:
    """The body of a page asked for someone not in the workspace: who it can act as instead."""
    items = "".join(f'<li><a href="?as={_e(u.id)}">{_e(u.name)} ({_e(u.id)})</a></li>' for u in people(ws))
    return f"<main class=index><h1>No user {_e(user_id)} in this workspace</h1><p>Act as:</p><ul>{items}</ul></main>"


def index_page(ws: Workspace) -> str:
    rows = []
    for channel in ws.channels.values():
        count = len(channel.all_messages())
        rows.append(
            f'<tr><td><a href="/channels/{_e(channel.id)}">{_e(_channel_title(channel, ws))}</a></td>'
            f"<td>{_e(channel.id)}</td><td>{count}</td></tr>"
        )
    homes = "".join(f'<li><a href="/home/{_e(u.id)}">{_e(u.name)}</a></li>' for u in people(ws))
    body = (
        f"<main class=index><h1>{_e(ws.team_name)} <small class=meta>(Slack emulator)</small></h1>"
        "<table><tr><th>channel</th><th>id</th><th>messages</th></tr>" + "".join(rows) + "</table>"
    )
    if homes:
        body += f"<h2>App Home of</h2><ul>{homes}</ul>"
    body += '<p class="meta"><a href="/api/state.json">state.json</a></p></main>'
    return page(ws.team_name, body)


def _sidebar(ws: Workspace, current: str, viewer: str) -> str:
    links = [f'<a class="nav{" on" if current == "home" else ""}" href="/home/{_e(viewer)}">🏠 Home (triagebot)</a>']
    for channel in ws.channels.values():
        if channel.is_im:
            continue
        on = " on" if channel.id == current else ""
        links.append(f'<a class="nav{on}" href="/channels/{_e(channel.id)}?as={_e(viewer)}"># {_e(channel.name)}</a>')
    options = "".join(
        f'<option value="{_e(u.id)}"{" selected" if u.id == viewer else ""}>{_e(u.name)} ({_e(u.id)})</option>'
        for u in people(ws)
    )
    return (
        f'<nav><div class="team"><a href="/">{_e(ws.team_name)}</a></div>'
        f'<label class="meta">Acting as <select id="as">{options}</select></label>{"".join(links)}</nav>'
    )


def _shell(ws: Workspace, title: str, current: str, viewer: str, config: dict[str, Any], main: str) -> str:
    body = (
        f'<div id="app" data-cfg="{_attr_json({**config, "user": viewer})}">{_sidebar(ws, current, viewer)}'
        f"<main><h1>{_e(title)}</h1>{main}</main></div>"
        '<div id="modal"></div><div id="confirm"></div><div id="notice" role="alert"></div>'
    )
    return page(title, body, script=True)


def channel_fragment(ws: Workspace, channel: Channel, viewer: str) -> str:
    """The channel's messages with their threads, day dividers, and the viewer's ephemerals, by time."""
    items: list[tuple[str, str]] = []
    for message in channel.timeline:
        if message.is_reply and message.subtype != "thread_broadcast":
            continue
        thread = channel.threads.get(message.ts, []) if not message.is_reply else []
        html_parts = [_message_html(message, ws, viewer=viewer, replies=len(thread))]
        html_parts.extend(_message_html(r, ws, reply=True, viewer=viewer) for r in thread)
        items.append((message.ts, "".join(html_parts)))
    for eph in ws.ephemerals:
        if eph.get("channel") == channel.id and eph.get("user") == viewer:
            items.append((str(eph.get("ts") or "0"), _ephemeral_html(eph, ws, viewer)))
    if not items:
        return '<p class="meta">No messages yet.</p>'
    tz, now = _tz(ws, viewer), mrkdwn.local(ws.now(), _tz(ws, viewer))
    out: list[str] = []
    last_day = ""
    for ts, chunk in sorted(items, key=lambda item: ts_key(item[0])):
        day = mrkdwn.day_label(mrkdwn.local(float(ts), tz), now)
        if day != last_day:
            out.append(f'<div class="day"><span>{_e(day)}</span></div>')
            last_day = day
        out.append(chunk)
    return "".join(out)


def channel_page(ws: Workspace, channel: Channel, viewer: str | None = None) -> str:
    viewer = viewer or default_user(ws) or ""
    title = _channel_title(channel, ws)
    composer = (
        '<form id="composer" autocomplete="off"><div id="replying" hidden>Replying in thread '
        '<button type="button" class="link" id="unthread">✕</button></div>'
        f'<input id="compose" name="text" placeholder="Message {_e(title)} (or /triage …)">'
        '<button type="submit">Send</button></form>'
    )
    main = f'<div id="timeline">{channel_fragment(ws, channel, viewer)}</div>{composer}'
    return _shell(ws, title, channel.id, viewer, {"channel": channel.id}, main)


def home_fragment(ws: Workspace, viewer: str) -> str:
    view = ws.views.get(ws.home_views.get(viewer, ""))
    if view is None:
        return '<p class="meta">Opening the Home tab…</p>'
    container = _attr_json({"kind": "view", "view_id": view.id})
    blocks = "".join(block_html(b, ws) for b in view.spec.get("blocks", []))
    return f'<div class="home" data-container="{container}">{blocks}</div>'


def home_page(ws: Workspace, user_id: str) -> str | None:
    if user_id not in ws.users or ws.users[user_id].is_bot:
        return None
    main = f'<div id="timeline">{home_fragment(ws, user_id)}</div>'
    return _shell(ws, "triagebot · Home", "home", user_id, {"home": True}, main)


def modal_html(ws: Workspace, viewer: str) -> str:
    """The viewer's top modal as a dialog, or nothing."""
    stack = ws.open_modals(viewer)
    if not stack:
        return ""
    view = stack[-1]
    spec = view.spec
    inputs = {b.get("block_id") for b in spec.get("blocks", []) if isinstance(b, dict) and b.get("type") == "input"}
    errors = "".join(  # an error for a block that is not an input has nowhere else to show
        f'<div class="error">{_e(block)}: {_e(text)}</div>'
        for block, text in view.errors.items()
        if block not in inputs
    )
    blocks = "".join(block_html(b, ws, values=view.state_values, errors=view.errors) for b in spec.get("blocks", []))
    submit = _plain(spec.get("submit"))
    close = _plain(spec.get("close")) or "Cancel"
    container = _attr_json({"kind": "view", "view_id": view.id})
    return (
        f'<div class="overlay"><form class="dialog" data-view="{_e(view.id)}" data-container="{container}">'
        f'<div class="title">{_e(_plain(spec.get("title")))}</div><div class="errors">{errors}</div>{blocks}'
        f'<div class="buttons"><button type="button" class="close-view">{_e(close)}</button>'
        + (f'<button type="submit" class="btn primary">{_e(submit)}</button>' if submit else "")
        + "</div></form></div>"
    )


def state_json(ws: Workspace) -> str:
    """Channels with their messages and threads as JSON, for scripts and debugging."""
    data = {
        "team_id": ws.team_id,
        "channels": [
            {
                **channel.to_api(),
                "messages": [m.to_api(team_id=ws.team_id) for m in channel.timeline],
                "threads": {
                    ts: [r.to_api(team_id=ws.team_id) for r in replies] for ts, replies in channel.threads.items()
                },
            }
            for channel in ws.channels.values()
        ],
        "ephemerals": ws.ephemerals,
        "home_views": {user: ws.views[view].to_api(team_id=ws.team_id) for user, view in ws.home_views.items()},
    }
    return json.dumps(data, indent=2)
