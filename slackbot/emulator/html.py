"""How a person would read the emulated workspace: a plain-text transcript and read-only HTML pages.

Both render messages the way the Slack client shows them, not as raw JSON: blocks rather than the
fallback ``text``, buttons as ``[Label]``, and mrkdwn entities resolved (``<@U1>`` reads ``@alice``,
``<!channel>`` reads ``@channel``, ``&lt;`` reads ``<``). That makes the transcript a real test oracle:
escaped untrusted text shows up literally, a live broadcast shows up as ``@channel``.

The HTML escapes every piece of workspace text, because that text comes from test names and logs,
which are attacker-shaped by design (``<script>``, ``<!channel>``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slackbot.emulator.state import MENTION_RE, Channel, Message, Workspace

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

STYLE = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:60rem;color:#1d1c1d}
a{color:#1264a3}table{border-collapse:collapse}td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}
.msg{border-left:3px solid #ddd;padding:.4rem .8rem;margin:.8rem 0;background:#fafafa}
.reply{margin-left:2.5rem;border-left-color:#9bc}
.meta{color:#616061;font-size:12px}.who{font-weight:bold;color:#1d1c1d}
.text{white-space:pre-wrap;margin:.2rem 0}.header{font-size:17px;font-weight:bold}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:.2rem 1rem}.context{color:#616061;font-size:12px}
.mention{background:#fff3c4;color:#1264a3;border-radius:3px;padding:0 2px}
button,select{margin:.2rem .3rem .2rem 0}.reactions span{border:1px solid #ddd;border-radius:9px;padding:0 .4rem}
.eph{border-left-color:#e8a;background:#fff6fa}pre.raw{font-size:11px;color:#616061}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def mrkdwn_html(text: str, ws: Workspace) -> str:
    parts = []
    for segment in _split_links(text, ws):
        if segment.kind == "mention":
            parts.append(f'<span class="mention">{_e(segment.text)}</span>')
        elif segment.kind == "link" and segment.url.startswith(("http://", "https://")):
            parts.append(f'<a href="{_e(segment.url)}" rel="nofollow noopener">{_e(segment.text)}</a>')
        else:
            parts.append(_e(segment.text))
    return "".join(parts)


def _text_html(obj: Any, ws: Workspace) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn_html(text, ws) if obj.get("type") == "mrkdwn" else _e(text)


def _element_html(element: dict[str, Any], ws: Workspace) -> str:
    kind = element.get("type", "")
    if kind == "button":
        return f"<button disabled>{_text_html(element.get('text'), ws)}</button>"
    if kind in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
        options = list(element.get("options", []))
        for group in element.get("option_groups", []):
            options.extend(group.get("options", []) if isinstance(group, dict) else [])
        placeholder = _text_html(element.get("placeholder"), ws) or _e(kind)
        items = "".join(f"<option>{_text_html(o.get('text'), ws)}</option>" for o in options if isinstance(o, dict))
        return f"<select disabled><option>{placeholder}</option>{items}</select>"
    if kind.endswith("select"):
        return f"<select disabled><option>{_text_html(element.get('placeholder'), ws) or _e(kind)}</option></select>"
    if kind == "image":
        return f"<span>[image: {_e(element.get('alt_text', ''))}]</span>"
    return f"<span>[{_e(kind)}]</span>"


def block_html(block: dict[str, Any], ws: Workspace) -> str:
    kind = block.get("type")
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
        if isinstance(block.get("accessory"), dict):
            parts.append(f"<div>{_element_html(block['accessory'], ws)}</div>")
        return "".join(parts)
    if kind == "context":
        items = [
            f"[image: {_e(e.get('alt_text', ''))}]" if e.get("type") == "image" else _text_html(e, ws)
            for e in block.get("elements", [])
            if isinstance(e, dict)
        ]
        return f'<div class="context">{" · ".join(items)}</div>'
    if kind == "actions":
        elements = "".join(_element_html(e, ws) for e in block.get("elements", []) if isinstance(e, dict))
        return f"<div>{elements}</div>"
    if kind == "divider":
        return "<hr>"
    lines = "\n".join(block_lines(block, ws))
    return f'<div class="text">{_e(lines)}</div>'


def _message_html(message: Message, ws: Workspace, *, reply: bool = False) -> str:
    meta = f'<span class="who">{_e(ws.user_name(message.user))}</span> <span class="meta">{_e(message.ts)}'
    if message.edited:
        meta += f" · edited {message.edited}×"
    if message.subtype:
        meta += f" · {_e(message.subtype)}"
    meta += "</span>"
    if message.blocks:
        body = "".join(block_html(b, ws) for b in message.blocks)
    else:
        body = f'<div class="text">{mrkdwn_html(message.text, ws)}</div>'
    for upload in message.files:
        body += f'<div class="text">📄 {_e(upload.get("title") or upload.get("name"))}</div>'
    if message.reactions:
        chips = "".join(
            f'<span title="{_e(", ".join(ws.user_name(u) for u in users))}">:{_e(name)}: {len(users)}</span> '
            for name, users in message.reactions.items()
        )
        body += f'<div class="reactions">{chips}</div>'
    css = "msg reply" if reply else "msg"
    return f'<div class="{css}" id="m{_e(message.ts)}">{meta}{body}</div>'


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _channel_title(channel: Channel, ws: Workspace) -> str:
    return f"DM with {ws.user_name(channel.dm_user or '')}" if channel.is_im else f"#{channel.name}"


def index_page(ws: Workspace) -> str:
    rows = []
    for channel in ws.channels.values():
        count = len(channel.all_messages())
        rows.append(
            f'<tr><td><a href="/channels/{_e(channel.id)}">{_e(_channel_title(channel, ws))}</a></td>'
            f"<td>{_e(channel.id)}</td><td>{count}</td></tr>"
        )
    homes = "".join(f'<li><a href="/home/{_e(user)}">{_e(ws.user_name(user))}</a></li>' for user in ws.home_views)
    body = (
        f"<h1>{_e(ws.team_name)} <small class=meta>(Slack emulator, read-only)</small></h1>"
        "<table><tr><th>channel</th><th>id</th><th>messages</th></tr>" + "".join(rows) + "</table>"
    )
    if homes:
        body += f"<h2>Home tabs</h2><ul>{homes}</ul>"
    body += '<p class="meta"><a href="/api/state.json">state.json</a></p>'
    return page(ws.team_name, body)


def channel_page(ws: Workspace, channel: Channel) -> str:
    parts = [f'<p><a href="/">&larr; all channels</a></p><h1>{_e(_channel_title(channel, ws))}</h1>']
    if not channel.timeline:
        parts.append('<p class="meta">No messages yet.</p>')
    for message in channel.timeline:
        if message.is_reply:
            continue
        parts.append(_message_html(message, ws))
        parts.extend(_message_html(r, ws, reply=True) for r in channel.threads.get(message.ts, []))
    ephemerals = [e for e in ws.ephemerals if e.get("channel") == channel.id]
    if ephemerals:
        parts.append("<h2>Ephemeral messages</h2>")
        for eph in ephemerals:
            body = "".join(block_html(b, ws) for b in eph.get("blocks") or []) or (
                f'<div class="text">{mrkdwn_html(str(eph.get("text", "")), ws)}</div>'
            )
            parts.append(
                f'<div class="msg eph"><span class="meta">only visible to '
                f"{_e(ws.user_name(str(eph.get('user'))))} · {_e(eph.get('source'))}</span>{body}</div>"
            )
    return page(_channel_title(channel, ws), "".join(parts))


def home_page(ws: Workspace, user_id: str) -> str | None:
    view = ws.views.get(ws.home_views.get(user_id, ""))
    if view is None:
        return None
    blocks = "".join(block_html(b, ws) for b in view.spec.get("blocks", []))
    title = f"Home tab of {ws.user_name(user_id)}"
    return page(title, f'<p><a href="/">&larr; all channels</a></p><h1>{_e(title)}</h1><div class="msg">{blocks}</div>')


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
