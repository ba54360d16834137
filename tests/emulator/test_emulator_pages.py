"""What the emulator's pages show: Slack mrkdwn, times, names, and what the composer sends.

Pure functions over a workspace, no bot: the browser tests (test_browser.py) check the same page
end to end; these pin the rendering rules one by one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slackbot.emulator import html
from slackbot.emulator.mrkdwn import message_time, to_html
from slackbot.emulator.state import View, Workspace
from slackbot.emulator.ui import encode_mentions, escape_typed, state_values

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC).timestamp()  # a Friday, 3:30 PM UTC


@pytest.fixture
def ws() -> Workspace:
    workspace = Workspace(team_id="T1", clock=lambda: NOW)
    workspace.add_user("U0ALICE", "alice")
    workspace.add_channel("C0OPS", "ops")
    workspace.add_usergroup("S0ONCALL", "oncall", ["U0ALICE"])
    return workspace


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        ("*Status:* open", "<b>Status:</b> open"),
        ("_maybe_ and ~gone~", "<i>maybe</i> and <s>gone</s>"),
        ("*_both_*", "<b><i>both</i></b>"),
        ("snake_case_name 2*3*4 a * b *", "snake_case_name 2*3*4 a * b *"),  # not at word boundaries
        ("run `bd show *x*`", "run <code>bd show *x*</code>"),
        ("```line 1\n*not bold* <@U0ALICE>```", '<pre class="code">line 1\n*not bold* &lt;@U0ALICE&gt;</pre>'),
        ("&gt; quoted\nplain", "<blockquote>quoted</blockquote>\nplain"),
        ("<@U0ALICE> <#C0OPS> <!subteam^S0ONCALL|@oncall> <!here>", None),
        (":fire: :white_check_mark: :not_an_emoji: 3:04:05", "🔥 ✅ :not_an_emoji: 3:04:05"),
        ("<https://ci.example/run/1?a=1&amp;b=2|run *1*>", None),
    ],
)
def test_mrkdwn_renders_like_slack(ws: Workspace, mrkdwn: str, shown: str | None) -> None:
    rendered = to_html(mrkdwn, ws)
    if shown is not None:
        assert rendered == shown
    elif mrkdwn.startswith("<@"):
        assert rendered == (
            '<span class="mention">@alice</span> <span class="mention">#ops</span> '
            '<span class="mention">@oncall</span> <span class="mention">@here</span>'
        )
    else:
        assert rendered == (
            '<a href="https://ci.example/run/1?a=1&amp;b=2" target="_blank" rel="nofollow noopener noreferrer">'
            "run *1*</a>"
        )


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        '"><img src=x onerror=alert(1)>',
        "<javascript:alert(1)|click me>",
        '<https://x.example/" onmouseover="alert(1)|x>',
        "*<img src=x>* `<img src=x>` ```<img src=x>``` _<i>_",
        "\ue0000\ue001 <@U0ALICE>",  # a forged placeholder cannot pull in another entity's markup
        "<@U0NOBODY|<img src=x>>",
    ],
)
def test_hostile_text_never_becomes_markup(ws: Workspace, hostile: str) -> None:
    rendered = to_html(hostile, ws)
    for tag in ("<script", "<img", 'href="javascript', 'onerror="', 'onmouseover="'):
        assert tag not in rendered, rendered
    assert "\ue000" not in rendered


def test_times_read_like_slacks(ws: Workspace) -> None:
    today = datetime(2026, 12, 4, 15, 4, tzinfo=UTC).timestamp()
    yesterday = datetime(2026, 12, 3, 9, 5, tzinfo=UTC).timestamp()
    earlier = datetime(2026, 11, 22, 0, 30, tzinfo=UTC).timestamp()
    last_year = datetime(2025, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    assert message_time(f"{today:.6f}", NOW) == "3:04 PM"
    assert message_time(f"{yesterday:.6f}", NOW) == "Yesterday at 9:05 AM"
    assert message_time(f"{earlier:.6f}", NOW) == "Sunday, November 22nd at 12:30 AM"
    assert message_time(f"{last_year:.6f}", NOW) == "Wednesday, January 1st, 2025 at 12:00 PM"
    # in the reader's time zone: 3:04 PM UTC is 10:04 AM in New York
    assert message_time(f"{today:.6f}", NOW, "America/New_York") == "10:04 AM"


def test_messages_show_names_and_times_not_ids_and_epochs(ws: Workspace) -> None:
    channel = ws.channels["C0OPS"]
    ws.post(channel, user="U0ALICE", text="hi <@U0ALICE>")
    ws.post(channel, user="U0GHOST", text="who am I")
    shown = html.channel_fragment(ws, channel, "U0ALICE")
    assert '<span class="who">alice</span>' in shown and "3:30 PM" in shown and "Today" in shown
    assert '<span class="who">U0GHOST</span>' in shown  # a user Slack no longer knows: the id, as Slack does


def test_the_composer_sends_what_slacks_client_sends(ws: Workspace) -> None:
    typed = "@alice & @oncall see #ops <b> @nobody @here."
    assert encode_mentions(escape_typed(typed), ws) == (
        "<@U0ALICE> &amp; <!subteam^S0ONCALL> see <#C0OPS> &lt;b&gt; @nobody <!here>."
    )
    # a slash command with should_escape: true carries the names too
    assert encode_mentions("@alice #ops", ws, labels=True) == "<@U0ALICE|alice> <#C0OPS|ops>"
    assert encode_mentions("mail alice@example.com", ws) == "mail alice@example.com"


def test_a_modal_form_becomes_slacks_state_values_and_required_fields_are_refused(ws: Workspace) -> None:
    options = [{"text": {"type": "plain_text", "text": t}, "value": t.lower()} for t in ("High", "Low")]
    spec = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Bead"},
        "blocks": [
            {
                "type": "input",
                "block_id": "what",
                "label": {"type": "plain_text", "text": "What"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
            },
            {
                "type": "input",
                "block_id": "sev",
                "optional": True,
                "label": {"type": "plain_text", "text": "Severity"},
                "element": {"type": "static_select", "action_id": "pick", "options": options},
            },
        ],
    }
    view = View(id="V1", type="modal", user_id="U0ALICE", spec=spec, hash="h", root_view_id="V1")
    values, errors = state_values(view, {"what": {"text": "it broke"}, "sev": {"pick": "low"}}, ws)
    assert errors == {}
    assert values == {
        "what": {"text": {"type": "plain_text_input", "value": "it broke"}},
        "sev": {"pick": {"type": "static_select", "selected_option": options[1]}},
    }
    values, errors = state_values(view, {"what": {"text": ""}}, ws)
    assert errors == {"what": "Please complete this required field."}
    assert values["sev"] == {"pick": {"type": "static_select", "selected_option": None}}


def test_date_tokens_are_formatted_for_the_reader(ws: Workspace) -> None:
    at = int(datetime(2026, 12, 3, 9, 5, 7, tzinfo=UTC).timestamp())  # yesterday, seen at NOW
    spec = "{date_num} · {date} · {date_short} · {date_long} · {date_pretty} · {time} · {time_secs} · {ago}"
    assert to_html(f"<!date^{at}^{spec}|fallback>", ws) == (
        "2026-12-03 · December 3rd, 2026 · Dec 3, 2026 · Thursday, December 3rd, 2026 · Yesterday"
        " · 9:05 AM · 9:05:07 AM · 1 day ago"
    )
    assert to_html("<!date^soon^{time}|at some point>", ws) == "at some point"  # malformed: the fallback
