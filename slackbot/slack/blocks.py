"""Block Kit blocks as the plain dicts slack_sdk's models serialise to (same keys, same values).

The cards are redrawn on every change, hundreds of times an hour in a busy channel, and building
each block as a slack_sdk model, then validating and serialising it (``to_dict``), cost more than
the rest of the redraw. These builders make the same dicts directly. The limits slack_sdk checks
are the callers' to keep, as they already do with ``truncate`` (section text 3000, a field 2000,
a header 150, a button's label 75, at most 10 fields or context elements); tests/slack compares
these dicts with slack_sdk's own for every kind of block the cards use.
"""

from __future__ import annotations

from typing import Any

Block = dict[str, Any]


def md(text: str) -> dict[str, Any]:
    """``MarkdownTextObject(text=text, verbatim=True)``; an empty text has no ``text`` key, as there."""
    if not text:
        return {"type": "mrkdwn", "verbatim": True}
    return {"text": text, "type": "mrkdwn", "verbatim": True}


def plain(text: str) -> dict[str, Any]:
    """``PlainTextObject(text=text)`` (emoji on, slack_sdk's default)."""
    return {"emoji": True, "text": text, "type": "plain_text"}


def header(text: str) -> Block:
    return {"text": plain(text), "type": "header"}


def section(
    text: dict[str, Any] | None = None,
    *,
    fields: list[dict[str, Any]] | None = None,
    accessory: dict[str, Any] | None = None,
    block_id: str | None = None,
) -> Block:
    block: Block = {}
    if accessory is not None:
        block["accessory"] = accessory
    if block_id is not None:
        block["block_id"] = block_id
    if fields:
        block["fields"] = fields
    if text is not None:
        block["text"] = text
    block["type"] = "section"
    return block


def context(elements: list[dict[str, Any]]) -> Block:
    return {"elements": elements, "type": "context"}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: str, style: str | None = None, *, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {"action_id": action_id}
    if confirm is not None:
        element["confirm"] = confirm
    if style is not None:
        element["style"] = style
    element["text"] = plain(text)
    element["type"] = "button"
    element["value"] = value
    return element
