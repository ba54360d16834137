"""Property-based tests of /slack/events against the real bot over HTTP (issue 18): random and
mutated clicks, modal submissions and ``/triage`` commands, signed as Slack signs them.

Whatever comes in: never a 5xx, no listener exception logged, no change when the input names no
incident it may change, and whoever sent it hears back (an ephemeral answer on the response URL,
or the modal's own answer).

The one incident, INC-1, is open; an input is "valid" only when it names INC-1, so the oracle for
"nothing may change" is whether a reference field reads as INC-1 (``names_incident_one``).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from slackbot.slack import card
from slackbot.slack.checklist import ACTION_PREFIX
from tests.factories import report, result
from tests.slack.conftest import NIGHTLY, OUTSIDER, RESPONDER, Bot, wait_for
from tests.slack.hostile import FORM, click, errors_logged, interaction, post, snapshot, submission

FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,  # nothing written into the repository between runs
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

NASTY = st.sampled_from(
    [
        "",
        " ",
        "1",  # filtered out where it would name INC-1; kept to reach the paths around it
        "²",
        "٣",
        "INC-²",
        "inc-0",
        "#7",
        str(2**63),
        str(2**70),
        "1" * 5_000,
        "-1",
        "1@",
        "1@x",
        "1@99999999",
        "\x00",
        "\ud800",
        "<!channel>",
        "payload",
        '{"incident": 1}',
        "[[[[[[[[[[",
        "flake_concurrency",
        "SEV-1",
        "resolved",
    ]
)
TEXT = NASTY | st.text(max_size=40) | st.from_regex(r"(INC-|#)?[0-9²٣]{1,25}", fullmatch=True)
SCALAR = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | TEXT
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
ACTION_IDS = st.sampled_from(
    [
        card.ACTION_ACK,
        card.ACTION_CLASSIFY,
        card.ACTION_SEVERITY,
        card.ACTION_ESCALATE,
        card.ACTION_BEAD,
        card.ACTION_RUNBOOK,
        card.ACTION_STATUS,
        card.ACTION_FLAG,
        f"{ACTION_PREFIX}:1",
    ]
) | st.text(min_size=1, max_size=30)
CALLBACKS = st.sampled_from(["file_bead", "incident_milestone"]) | st.text(max_size=20)
SUBCOMMANDS = st.sampled_from(
    [
        *("", "help", "list", "show", "ack", "classify", "severity", "assign", "escalate", "flag", "unflag"),
        *("bead", "status", "resolve", "timeline", "runbook", "owners", "postmortem", "stats", "payload", "²"),
    ]
)


def names_incident_one(value: Any) -> bool:
    """Whether a reference field could name INC-1 (an input that may then legitimately change it)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == 1
    if not isinstance(value, str):
        return False
    text = value.strip().upper().removeprefix("INC-").removeprefix("#")
    return re.fullmatch(r"0*1(@.*)?", text, re.DOTALL) is not None


def any_names_incident_one(*values: Any) -> bool:
    return any(names_incident_one(v) for v in values)


@pytest.fixture
def opened(bot: Bot) -> Bot:
    bot.send(report(result("BID-001", "TENANT-001")))
    bot.card("INC-1")
    return bot


def answered(bot: Bot, response_url: str) -> bool:
    """The bot answered on this response URL (ephemerally, as refusals are)."""
    url_id = response_url.rsplit("/", 1)[-1]
    with bot.emulator.workspace.lock:
        record = bot.emulator.workspace.response_urls.get(url_id)
        return record is not None and bool(record.uses)


@st.composite
def actions(draw: st.DrawFn) -> dict[str, Any]:
    action: dict[str, Any] = {"action_id": draw(ACTION_IDS), "type": draw(st.sampled_from(["button", "static_select"]))}
    if draw(st.booleans()):
        action["value"] = draw(TEXT)
    if draw(st.booleans()):
        action["block_id"] = draw(st.sampled_from(["incident:", "incident:²", "x"]) | TEXT.map("incident:{}".format))
    if draw(st.booleans()):
        action["selected_option"] = draw(st.fixed_dictionaries({"value": TEXT}) | JSON)
    # and now and then a field of the wrong type, anywhere in the action
    if draw(st.integers(0, 4)) == 0:
        action[draw(st.sampled_from(["action_id", "value", "block_id", "selected_option", "action_ts"]))] = draw(JSON)
    return action


def test_random_clicks_never_5xx_never_change_and_are_answered(opened: Bot, caplog: pytest.LogCaptureFixture) -> None:
    bot = opened
    card_ts = bot.card("INC-1").ts

    @FUZZ
    @given(actions(), st.sampled_from([RESPONDER, OUTSIDER]), st.integers(0, 5), JSON)
    def run(action: dict[str, Any], user: str, mutation: int, junk: Any) -> None:
        block = action.get("block_id")
        ref = block.removeprefix("incident:") if isinstance(block, str) else None
        assume(not any_names_incident_one(action.get("value"), ref))
        payload = click(bot, user, action, card_ts=card_ts)
        if mutation == 1:
            payload["actions"] = junk if isinstance(junk, list) else []
        elif mutation == 2:
            payload[str(junk)[:10] or "extra"] = junk  # an unknown field: ignored
        before = snapshot(bot)
        response = interaction(bot, payload)
        assert response.status < 500, response.body
        if response.status == 200:
            # every click that was accepted hears back: a refusal, an error, or why not
            wait_for(lambda: answered(bot, payload["response_url"]), timeout=10, what=f"an answer to {action}")
        assert snapshot(bot) == before, action
        assert errors_logged(caplog) == []

    run()


@st.composite
def views(draw: st.DrawFn) -> dict[str, Any]:
    callback = draw(CALLBACKS)
    incident = draw(SCALAR | JSON)
    meta: Any = {"incident": incident, "milestone": draw(TEXT)} if draw(st.booleans()) else draw(TEXT)
    values: Any = {
        block: {"value": {"type": "plain_text_input", "value": draw(TEXT)}}
        for block in draw(st.lists(st.sampled_from(["expected", "observed", "root_cause", "x"]), max_size=3))
    }
    if draw(st.integers(0, 3)) == 0:
        values = draw(JSON)
    view: dict[str, Any] = {
        "id": "V0FUZZ",
        "type": "modal",
        "callback_id": callback,
        "private_metadata": json.dumps(meta) if draw(st.booleans()) else str(meta),
        "state": {"values": values},
    }
    if draw(st.integers(0, 4)) == 0:
        view.pop(draw(st.sampled_from(["callback_id", "private_metadata", "state"])))
    if draw(st.integers(0, 4)) == 0:
        view[draw(st.sampled_from(["callback_id", "private_metadata", "state"]))] = draw(JSON)
    return view


def test_random_modal_submissions_never_5xx_never_change_and_are_answered(
    opened: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = opened

    @FUZZ
    @given(views(), st.sampled_from([RESPONDER, OUTSIDER]))
    def run(view: dict[str, Any], user: str) -> None:
        meta = view.get("private_metadata")
        try:
            parsed = json.loads(meta) if isinstance(meta, str) else None
        except ValueError:
            parsed = None
        assume(not (isinstance(parsed, dict) and names_incident_one(parsed.get("incident"))))
        before = snapshot(bot)
        response = interaction(bot, submission(user, view))
        assert response.status < 500, response.body
        if response.status == 200:
            # the modal is the answer: it shows an error or is replaced by one
            assert response.json is not None and response.json.get("response_action") in ("errors", "update"), (
                view,
                response.body,
            )
        assert snapshot(bot) == before, view
        assert errors_logged(caplog) == []

    run()


def test_random_triage_commands_never_5xx_never_change_and_are_answered(
    opened: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = opened

    @FUZZ
    @given(SUBCOMMANDS, st.lists(TEXT, max_size=3), st.sampled_from([RESPONDER, OUTSIDER]))
    def run(subcommand: str, args: list[str], user: str) -> None:
        assume(not any_names_incident_one(*args))
        ws = bot.emulator.workspace
        with ws.lock:
            url = ws.issue_response_url(
                bot.emulator.actor.root_url(), kind="slash_command", user_id=user, channel_id=NIGHTLY
            ).url
        text = " ".join([subcommand, *args])
        fields = {"command": "/triage", "text": text, "user_id": user, "channel_id": NIGHTLY, "response_url": url}
        fields |= {"team_id": ws.team_id, "trigger_id": "1.2.3", "api_app_id": "A0TRIAGEBOT"}
        # A lone surrogate goes as percent-escaped bytes that are not UTF-8: read as U+FFFD.
        body = urlencode(fields, errors="surrogatepass").encode()
        before = snapshot(bot)
        response = post(bot, body, FORM)
        assert response.status == 200, response.body
        wait_for(lambda: answered(bot, url), timeout=10, what=f"an answer to /triage {text[:80]}")
        assert snapshot(bot) == before, text
        assert errors_logged(caplog) == []

    run()
