"""Escaping untrusted text for Slack mrkdwn.

Slack treats ``&``, ``<`` and ``>`` as control characters: ``<!channel>`` pings a channel,
``<@U123>`` a person, ``<https://x|label>`` disguises a link. Test names and log lines are
untrusted, so every one of them goes through ``escape`` before it reaches a message; mentions
are built only from ids in ``routing.yml`` (``Target.mention``).
"""

from __future__ import annotations

import re
from datetime import datetime

from slackbot.clock import as_utc

_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def escape(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str | None) -> str:
    """Inline code for ids and commands; still escaped, since backticks do not stop ``<!channel>``."""
    value = escape(text).replace("`", "'")
    return f"`{value}`" if value else "—"


def link(url: str | None, label: str) -> str:
    """A link only for plain http(s) URLs; anything odd is shown as escaped text instead."""
    if url and _SAFE_URL.match(url):
        return f"<{url}|{escape(label).replace('|', '¦')}>"
    return escape(label) if not url else f"{escape(label)} ({escape(url)})"


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """Slack renders ``<!date^…>`` in each reader's own time zone; the fallback is UTC."""
    moment = as_utc(when)
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment.strftime('%Y-%m-%d %H:%M UTC')}>"


def truncate(text: str, limit: int, marker: str = "… (truncated)") -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))].rstrip() + marker
