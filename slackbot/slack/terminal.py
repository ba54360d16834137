"""Block Kit as compact plain text, for a terminal (``make demo``, the CLI).

A pure function of the blocks the renderers return: the same card a channel shows, minus the
markup. Slack's escapes are undone for reading, mentions and dates show their fallback, and
control characters are dropped, since test names and log lines are untrusted and a terminal
obeys escape sequences (``\\x1b]…``) the way Slack obeys ``<!channel>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# <url|label>, <@U1>, <#C1|name>, <!subteam^S1|@group>, <!date^123^{time}|fallback>, <!here>
_ANGLE = re.compile(r"<([^<>\n]*)>")
# Any C0/C1 control character except newline and tab (ESC starts terminal escape sequences).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Slack's emphasis needs a boundary on both sides: `test_a_b` keeps its underscores.
_EMPHASIS = re.compile(r"(?<![\w*_~])([*_~])(?=\S)([^\n]*?\S)\1(?![\w*_~])")
_FENCE = "```"


def render_text(blocks: Sequence[Mapping[str, Any]], *, width: int = 100) -> str:
    """One line or a few per block; fields are packed side by side while they fit in ``width``."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _label(block.get("text"))
            lines += [title, "═" * min(width, max(len(title), 3))]
        elif kind == "section":
            if block.get("text"):
                lines += _mrkdwn_lines(_text_of(block["text"]))
            if block.get("fields"):
                lines += _pack([_field(f) for f in block["fields"]], width)
            if block.get("accessory"):
                lines.append(_element(block["accessory"]))
        elif kind == "context":
            parts = [_element(e) if e.get("type") == "image" else _label(e) for e in block["elements"]]
            lines += _pack(parts, width, separator=" · ")
        elif kind == "divider":
            lines.append("─" * min(width, 40))
        elif kind == "actions":
            lines += _pack([_element(e) for e in block.get("elements", [])], width, separator="  ")
        elif kind == "image":
            lines.append(f"[image: {_clean(block.get('alt_text', ''))}]")
        elif kind == "rich_text":
            lines += _mrkdwn_lines("".join(_rich_text(block.get("elements", []))))
        elif kind == "input":
            lines.append(f"{_label(block.get('label'))}: {_element(block.get('element', {}))}")
        else:
            lines.append(f"[{_clean(str(kind))}]")
    return "\n".join(line.rstrip() for line in lines)


def _text_of(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text") or "")
    return str(obj or "")


def _label(obj: Any) -> str:
    """A text object as shown: ``plain_text`` is literal (Slack parses no links or mentions in it)."""
    if isinstance(obj, Mapping) and obj.get("type") == "mrkdwn":
        return _inline(_text_of(obj))
    return _clean(_text_of(obj))


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)


def _angle(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!subteam^"):
        return label or "@" + target.removeprefix("!subteam^")
    if target.startswith("!"):
        return "@" + target[1:]
    if target.startswith("@"):
        return label or target
    if target.startswith("#"):
        return "#" + label if label else target
    return f"{label} ({target})" if label and label != target else target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain(text: str) -> str:
    """Mrkdwn without markup: links and mentions resolved first, then Slack's escapes undone, so
    an escaped ``&lt;!channel&gt;`` in a test name reads as the text it was, never as a mention."""
    return _clean(_unescape(_ANGLE.sub(_angle, text)))


def _inline(text: str) -> str:
    """Emphasis markers dropped outside inline code; code keeps its backticks (they read fine)."""
    pieces = text.split("`")
    for index in range(0, len(pieces), 2):  # even pieces are outside `code`
        pieces[index] = _EMPHASIS.sub(r"\2", pieces[index])
    return _plain("`".join(pieces))


def _mrkdwn_lines(text: str) -> list[str]:
    """Code blocks become indented lines; everything else loses its emphasis markers."""
    out: list[str] = []
    for index, chunk in enumerate(text.split(_FENCE)):
        if index % 2:
            out += ["    " + _plain(line) for line in chunk.strip("\n").split("\n")]
        elif chunk.strip():
            out += [_inline(line) for line in chunk.strip("\n").split("\n")]
    return out


def _field(obj: Any) -> str:
    """``*Status:*\\nOpen`` reads ``Status: Open``."""
    return " ".join(part for part in _mrkdwn_lines(_text_of(obj)) if part.strip())


def _element(element: Mapping[str, Any]) -> str:
    kind = element.get("type", "")
    if kind == "button":
        return f"[ {_label(element.get('text'))} ]"
    if kind == "overflow":
        return "[ … ]"
    if kind == "image":
        return f"[image: {_clean(str(element.get('alt_text', '')))}]"
    if kind.endswith("select"):
        placeholder = _label(element.get("placeholder")) or "choose"
        chosen = element.get("initial_option")
        current = f" = {_label(chosen.get('text'))}" if isinstance(chosen, Mapping) else ""
        return f"<select: {placeholder}{current}>"
    if kind in ("plain_text_input", "datepicker", "timepicker", "checkboxes", "radio_buttons"):
        return f"<{kind.replace('_', ' ')}>"
    return f"[{_clean(str(kind))}]"


def _pack(parts: Iterable[str], width: int, separator: str = "   ") -> list[str]:
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(separator) + len(part) <= width:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return lines


def _rich_text(elements: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for element in elements:
        if "elements" in element:
            yield from _rich_text(element["elements"])
            if element.get("type") in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
                yield "\n"
        elif element.get("type") == "text":
            yield str(element.get("text", "")).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        elif element.get("type") == "link":
            yield str(element.get("text") or element.get("url", ""))
        elif element.get("type") == "user":
            yield f"@{element.get('user_id', '')}"
        elif element.get("type") == "emoji":
            yield f":{element.get('name', '')}:"
