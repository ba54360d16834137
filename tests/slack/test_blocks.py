"""The plain-dict blocks are exactly what slack_sdk's models serialise to, for each argument the cards use."""

from __future__ import annotations

import pytest
from slack_sdk.models.blocks import (
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from slackbot.slack import blocks


@pytest.mark.parametrize("text", ["*bold* <@U1> & ✅", " ", ""])
def test_text_objects(text: str) -> None:
    assert blocks.md(text) == MarkdownTextObject(text=text, verbatim=True).to_dict()
    if text:
        assert blocks.plain(text) == PlainTextObject.from_str(text).to_dict()  # as headers and buttons make it
        assert blocks.header(text) == HeaderBlock(text=text).to_dict()


def test_sections_contexts_and_dividers() -> None:
    md = MarkdownTextObject(text="state", verbatim=True)
    details = ButtonElement(text="Details", action_id="incident_details", value="7")
    assert blocks.section(blocks.md("state")) == SectionBlock(text=md).to_dict()
    assert (
        blocks.section(blocks.md("state"), accessory=blocks.button("Details", "incident_details", "7"))
        == SectionBlock(text=md, accessory=details).to_dict()
    )
    with_id = SectionBlock(text=md, accessory=details, block_id="suggested:flake")
    assert (
        blocks.section(
            blocks.md("state"), accessory=blocks.button("Details", "incident_details", "7"), block_id="suggested:flake"
        )
        == with_id.to_dict()
    )
    fields = [MarkdownTextObject(text=f"*{n}:*\nx", verbatim=True) for n in range(3)]
    assert blocks.section(fields=[blocks.md(f"*{n}:*\nx") for n in range(3)]) == SectionBlock(fields=fields).to_dict()
    notes = [MarkdownTextObject(text="a", verbatim=True), MarkdownTextObject(text="b", verbatim=True)]
    assert blocks.context([blocks.md("a"), blocks.md("b")]) == ContextBlock(elements=notes).to_dict()
    assert blocks.divider() == DividerBlock().to_dict()


@pytest.mark.parametrize("style", [None, "primary", "danger"])
def test_buttons(style: str | None) -> None:
    confirm = ConfirmObject(title="Escalate now?", text="Pages.", confirm="Escalate", deny="Cancel")
    assert blocks.button("Acknowledge", "incident_ack", "7", style) == (
        ButtonElement(text="Acknowledge", action_id="incident_ack", value="7", style=style).to_dict()
    )
    assert blocks.button("Escalate", "incident_escalate", "7:2", style, confirm=confirm.to_dict()) == (
        ButtonElement(
            text="Escalate", action_id="incident_escalate", value="7:2", style=style, confirm=confirm
        ).to_dict()
    )
