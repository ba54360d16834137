"""Form bodies (commands, and interactions' ``payload=``) read exactly as Slack encoded them.

``handlers.slack.payloads.form_fields`` decodes with yarl's C unquoter instead of urllib's pure
Python one (a card click's 14 KB payload took a third of the acking loop in urllib). What a person
typed after ``/triage`` must come out the same: the reference is urllib's own parser, on what
Slack sends (urlencoded fields) and on anything else a caller may send.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.slack.payloads import form_fields, parse_body

FORM = "application/x-www-form-urlencoded"
texts = st.text(st.characters(codec="utf-8"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, texts), max_size=6))
def test_fields_slack_encodes_come_back_as_typed(fields: list[tuple[str, str]]) -> None:
    body = urlencode(fields)
    assert form_fields(body) == dict(parse_qsl(body, keep_blank_values=True))


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("%+&=;#?/ a1FzÿC3A9é\x00"), max_size=40))
def test_any_body_reads_as_urllib_reads_it(body: str) -> None:
    assert form_fields(body) == dict(parse_qsl(body, keep_blank_values=True))


def test_a_command_and_a_click_are_read_as_slack_meant_them() -> None:
    command = urlencode({"command": "/triage", "text": "show INC-7 <@U1> 50% + é&x=1", "user_id": "U0CAROL"})
    assert parse_body(command.encode(), FORM)["text"] == "show INC-7 <@U1> 50% + é&x=1"
    card = {"type": "block_actions", "actions": [{"value": "a&b=c %41"}], "message": {"text": "✓ done"}}
    click = parse_body(urlencode({"payload": json.dumps(card)}).encode(), FORM)
    assert click["actions"][0]["value"] == "a&b=c %41" and click["message"]["text"] == "✓ done"
