"""Slack ``mrkdwn`` and message times as the Slack client shows them, rendered to safe HTML.

Rendered on the server, in Python, so the rules are unit-tested without a browser and the page's
script never builds markup from workspace text. Every piece of text is HTML-escaped *after*
Slack's own three escapes (``&amp; &lt; &gt;``) are undone, so an escaped ``&lt;script&gt;`` from
the bot shows as the literal ``<script>`` and never becomes a tag; only ``http(s)``/``mailto``
links become ``href``s.

What Slack renders, and so what this does: ``*bold*``, ``_italic_``, ``~strike~`` (delimiters at
word boundaries, on one line), ```` `code` ```` and ```` ```blocks``` ```` (verbatim inside),
``>`` quotes, ``<url|label>`` links, ``<@U..>`` / ``<#C..>`` / ``<!subteam^S..>`` / ``<!here>``
mentions resolved to names, and ``:emoji:`` shortcodes for the common ones.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slackbot.emulator.state import Workspace

EMOJI = {
    "+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎", "white_check_mark": "✅",
    "heavy_check_mark": "✔️", "x": "❌", "warning": "⚠️", "rotating_light": "🚨", "fire": "🔥",
    "eyes": "👀", "tada": "🎉", "rocket": "🚀", "bug": "🐛", "wrench": "🔧", "hammer_and_wrench": "🛠️",
    "memo": "📝", "pushpin": "📌", "link": "🔗", "lock": "🔒", "bell": "🔔", "no_entry": "⛔",
    "no_entry_sign": "🚫", "hourglass": "⌛", "hourglass_flowing_sand": "⏳", "stopwatch": "⏱️",
    "alarm_clock": "⏰", "red_circle": "🔴", "large_orange_circle": "🟠", "large_yellow_circle": "🟡",
    "large_green_circle": "🟢", "large_blue_circle": "🔵", "white_circle": "⚪", "black_circle": "⚫",
    "question": "❓", "exclamation": "❗", "heavy_exclamation_mark": "❗", "information_source": "ℹ️",
    "mag": "🔍", "point_right": "👉", "raised_hands": "🙌", "pray": "🙏", "thinking_face": "🤔",
    "smile": "😄", "slightly_smiling_face": "🙂", "clipboard": "📋", "package": "📦",
    "page_facing_up": "📄", "chart_with_upwards_trend": "📈", "checkered_flag": "🏁", "zap": "⚡",
    "siren": "🚨", "pager": "📟", "arrows_counterclockwise": "🔄", "repeat": "🔁", "snowflake": "❄️",
    "construction": "🚧", "bulb": "💡", "book": "📖", "books": "📚", "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤", "calendar": "📆", "arrow_up": "⬆️", "arrow_down": "⬇️",
    "arrow_right": "➡️", "heavy_plus_sign": "➕", "heavy_minus_sign": "➖", "ok": "🆗", "sos": "🆘",
    "test_tube": "🧪", "gear": "⚙️", "robot_face": "🤖", "white_circle_check": "✅", "recycle": "♻️",
}  # fmt: skip

_SPECIAL = {"here", "channel", "everyone"}
# Private-use characters stand for rendered entities while emphasis is applied around them; any in
# the input are replaced first so a crafted string cannot forge one.
_PH_OPEN, _PH_CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_PH_OPEN}(\\d+){_PH_CLOSE}")
_ENTITY = re.compile(r"<([^<>\n]+)>")
_CODE_BLOCK = re.compile(r"```(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
EMOJI_RE = re.compile(r":([a-z0-9_+\-']+):")


def _emphasis(delimiter: str, tag: str) -> tuple[re.Pattern[str], str]:
    d = re.escape(delimiter)
    # Slack: the opening delimiter follows a line start, space or punctuation, the closing one is
    # followed by the same; the text between neither starts nor ends with a space.
    pattern = re.compile(rf"(?<![\w{d}]){d}(?=\S)([^\n{d}]*?\S){d}(?![\w{d}])")
    return pattern, f"<{tag}>\\1</{tag}>"


_EMPHASIS = [_emphasis("*", "b"), _emphasis("_", "i"), _emphasis("~", "s")]


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def unescape(text: str) -> str:
    """Undo the three escapes Slack requires in mrkdwn (and nothing else: ``&quot;`` stays)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _entity_html(inner: str, ws: Workspace) -> str | None:
    """``<...>`` as Slack shows it, or ``None`` when Slack would show it literally."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = ws.users.get(target[1:])
        name = user.name if user else (label or target[1:])
        return f'<span class="mention">@{_e(name)}</span>'
    if target.startswith("#"):
        channel = ws.channels.get(target[1:])
        name = channel.name if channel and not channel.is_im else (label or target[1:])
        return f'<span class="mention">#{_e(name)}</span>'
    if target.startswith("!"):
        special = target[1:]
        if special in _SPECIAL:
            return f'<span class="mention">@{_e(special)}</span>'
        if special.startswith("subteam^"):
            group = ws.usergroups.get(special.split("^", 1)[1])
            handle = group.handle if group else (label.lstrip("@") or special.split("^", 1)[1])
            return f'<span class="mention">@{_e(handle)}</span>'
        if special.startswith("date^"):
            shown = slack_date(special, ws.now())
            if shown is not None:
                return _e(shown)
        return _e(unescape(label or special))  # what Slack cannot format: the fallback
    url = unescape(target)
    if url.startswith(("http://", "https://", "mailto:")):
        shown = unescape(label) if label else url
        return f'<a href="{_e(url)}" target="_blank" rel="nofollow noopener noreferrer">{_e(shown)}</a>'
    return None


def _inline(text: str, ws: Workspace) -> str:
    """One run outside code: entities, escaping, emphasis, emoji."""
    rendered: list[str] = []

    def hold(match: re.Match[str]) -> str:
        shown = _entity_html(match.group(1), ws)
        if shown is None:
            return match.group(0)
        rendered.append(shown)
        return f"{_PH_OPEN}{len(rendered) - 1}{_PH_CLOSE}"

    out = _e(unescape(_ENTITY.sub(hold, text)))
    for pattern, replacement in _EMPHASIS:
        out = pattern.sub(replacement, out)
    out = EMOJI_RE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), out)
    return _PLACEHOLDER.sub(lambda m: rendered[int(m.group(1))], out)


def _line(text: str, ws: Workspace) -> str:
    parts: list[str] = []
    position = 0
    for match in _INLINE_CODE.finditer(text):
        parts.append(_inline(text[position : match.start()], ws))
        parts.append(f"<code>{_e(unescape(match.group(1)))}</code>")
        position = match.end()
    parts.append(_inline(text[position:], ws))
    return "".join(parts)


def _lines(text: str, ws: Workspace) -> str:
    out: list[str] = []
    quote: list[str] = []

    def flush() -> None:
        if quote:
            out.append(f"<blockquote>{chr(10).join(quote)}</blockquote>")
            quote.clear()

    for raw in text.split("\n"):
        if raw.startswith(("&gt;", ">")):
            body = raw[4:] if raw.startswith("&gt;") else raw[1:]
            quote.append(_line(body.removeprefix(" "), ws))
            continue
        flush()
        out.append(_line(raw, ws))
    flush()
    return "\n".join(out)


def to_html(text: str, ws: Workspace) -> str:
    """Slack mrkdwn as safe HTML (keep newlines: shown with ``white-space: pre-wrap``)."""
    text = text.replace(_PH_OPEN, "\ufffd").replace(_PH_CLOSE, "\ufffd")
    parts: list[str] = []
    position = 0
    for match in _CODE_BLOCK.finditer(text):
        parts.append(_lines(text[position : match.start()], ws))
        parts.append(f'<pre class="code">{_e(unescape(match.group(1).strip(chr(10))))}</pre>')
        position = match.end()
    parts.append(_lines(text[position:], ws))
    return "".join(parts)


def emoji(name: str) -> str:
    """A reaction's shortcode as its character, or ``:name:`` when not a common one."""
    return EMOJI.get(name, f":{name}:")


# -- times ----------------------------------------------------------------------------------------


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock_time(moment: datetime) -> str:
    """``3:04 PM``, as in a message header."""
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def day_label(moment: datetime, now: datetime) -> str:
    """The day divider: ``Today``, ``Yesterday``, ``Friday, December 4th`` (the year when not this one)."""
    if moment.date() == now.date():
        return "Today"
    if moment.date() == (now - timedelta(days=1)).date():
        return "Yesterday"
    label = f"{moment.strftime('%A, %B')} {_ordinal(moment.day)}"
    return label if moment.year == now.year else f"{label}, {moment.year}"


def local(epoch: float, tz: str) -> datetime:
    return datetime.fromtimestamp(epoch, _zone(tz))


_DATE_TOKEN = re.compile(
    r"\{(date_num|date_short_pretty|date_long_pretty|date_pretty|date_short|date_long|date|time_secs|time|ago)\}"
)


def _ago(seconds: float) -> str:
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = int(seconds // size)
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "in a few seconds" if future else "a few seconds ago"


def slack_date(spec: str, now: float, tz: str = "UTC") -> str | None:
    """``date^<epoch>^<format>[^<link>]`` as Slack formats it for the reader (``{time}`` 3:04 PM,
    ``{date_short}`` Dec 4, 2026, ``{date_pretty}`` Yesterday, ``{ago}`` 3 minutes ago); ``None``
    when the spec is malformed (Slack then shows the fallback)."""
    parts = spec.split("^")
    if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
        return None
    epoch = int(parts[1])
    moment, today = local(epoch, tz), local(now, tz)
    day = day_label(moment, today)
    month_day = f"{moment.strftime('%B')} {_ordinal(moment.day)}, {moment.year}"

    def token(match: re.Match[str]) -> str:
        name = match.group(1)
        pretty = day if day in ("Today", "Yesterday") else None
        if name == "date_num":
            return moment.strftime("%Y-%m-%d")
        if name in ("date", "date_pretty"):
            return (pretty if name.endswith("pretty") else None) or month_day
        if name in ("date_short", "date_short_pretty"):
            return (
                pretty if name.endswith("pretty") else None
            ) or f"{moment.strftime('%b')} {moment.day}, {moment.year}"
        if name in ("date_long", "date_long_pretty"):
            return (pretty if name.endswith("pretty") else None) or f"{moment.strftime('%A')}, {month_day}"
        if name == "time":
            return clock_time(moment)
        if name == "time_secs":
            return clock_time(moment).replace(" ", f":{moment.second:02d} ")
        return _ago(now - epoch)

    return _DATE_TOKEN.sub(token, unescape(parts[2]))


def message_time(ts: str, now: float, tz: str = "UTC") -> str:
    """A message's time as the client shows it next to the name: ``3:04 PM``, ``Yesterday at 3:04 PM``."""
    moment, today = local(float(ts), tz), local(now, tz)
    day = day_label(moment, today)
    return clock_time(moment) if day == "Today" else f"{day} at {clock_time(moment)}"
