"""The emulator's page in a real browser (headless Chromium, Playwright) against the running bot.

One bot and one browser for the module: each test sends its own failure (its own incident) and
acts as a person would: clicks, selects, types in the composer, submits a modal, reacts, switches
user, opens Home. What it asserts is what the page shows, and what the bot recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from slackbot.app import build_asgi, slack_client_for
from slackbot.client import send_report
from slackbot.emulator import SlackEmulator
from slackbot.emulator.seeding import seed_workspace
from slackbot.runtime import build_runtime
from slackbot.serving import serve
from slackbot.settings import Settings
from tests.conftest import RUNBOOKS
from tests.factories import report, result
from tests.fakes.pagerduty import running_pagerduty
from tests.slack.conftest import FAKE_BD, NIGHTLY, OUTSIDER, RESPONDER, SECRET, init_beads, wait_for

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


class Live:
    def __init__(self, emulator: SlackEmulator, url: str) -> None:
        self.emulator, self.url = emulator, url
        self.http = httpx.Client(base_url=emulator.web_url, trust_env=False, timeout=15)

    def fail(self, scenario: str, invariant: str = "TENANT-001", **extra: Any) -> str:
        """Ingest one failure; the key of the incident it opened."""
        answer = send_report(json.dumps(report(result(scenario, invariant, **extra))).encode(), self.url, SECRET)
        keys = [i["id"] for i in answer["incidents"]]
        assert len(keys) == 1, answer
        return str(keys[0])

    def card_ts(self, key: str) -> str:
        def find() -> str | None:
            for message in self.emulator.messages(NIGHTLY):
                if message.blocks and f"{key} " in json.dumps(message.blocks[0]):
                    return message.ts
            return None

        found: str = wait_for(find, what=f"the card of {key}")
        return found

    def gesture(self, which: str, /, **body: Any) -> httpx.Response:
        return self.http.post(f"/ui/{which}", json=body)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("browser")
    with SlackEmulator() as emulator, running_pagerduty() as pagerduty:
        settings = Settings(
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=emulator.signing_secret,
            SLACK_API_URL=emulator.base_url,
            TRIAGE_DATABASE_URL=f"sqlite:///{tmp / 'triage.db'}",
            TRIAGE_RUNBOOKS_DIR=RUNBOOKS,
            TRIAGE_INGEST_SECRET=SECRET,
            TRIAGE_LANE_RATE=50,
            PAGERDUTY_EVENTS_URL=pagerduty.url,
            TRIAGE_BD_BIN=FAKE_BD,
            BEADS_DIR=init_beads(Path(tmp)),
        )
        core = build_runtime(settings, slack=slack_client_for(settings))
        seed_workspace(emulator, core.playbooks)
        emulator.add_user(OUTSIDER, "outsider")
        with serve(build_asgi(core)) as url:
            emulator.bot_url = url + "/slack/events"
            live = Live(emulator, url)
            yield live
            live.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert errors == [], errors  # the page's script never threw


def open_channel(page: Page, live: Live, user: str = RESPONDER) -> None:
    page.goto(live.emulator.page_url(NIGHTLY, user))
    # a marker that survives only as long as the page is not reloaded
    page.evaluate("window.__sameDocument = true")


def card(page: Page, ts: str) -> Any:
    return page.locator(f'[id="m{ts}"]')


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__sameDocument") is True


def test_choosing_a_class_on_the_card_redraws_it_in_place(page: Page, live: Live) -> None:
    open_channel(page, live)
    key = live.fail("BID-101", message="bid *window* `closed` early")
    ts = live.card_ts(key)
    shown = card(page, ts)
    expect(shown.locator(".header")).to_contain_text(key)  # appeared without a reload
    classify = shown.locator("select.select").first
    classify.select_option("algorithm_regression")
    # The bot got a signed block_actions, answered, and chat.update redrew the same card.
    wait_for(lambda: (m := live.emulator.message(NIGHTLY, ts)) and m.edited >= 1, what="the card redrawn")
    expect(shown.locator("select.select").first.locator("option[selected]")).to_have_text("Algorithm regression")
    expect(page.locator(f'[id="m{ts}"]')).to_have_count(1)
    expect(shown.locator(".reply-to")).to_contain_text("repl")  # the thread it started
    assert_not_reloaded(page)


def test_acknowledge_and_a_double_click_assigns_once(page: Page, live: Live) -> None:
    open_channel(page, live)
    key = live.fail("BID-102")
    ts = live.card_ts(key)
    button = card(page, ts).get_by_role("button", name="Acknowledge")
    button.dblclick()  # two block_actions, the second from a card already redrawn without the button
    expect(card(page, ts).get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(card(page, ts)).to_contain_text("carol")
    actions = [c for c in live.emulator.calls("chat.update") if c.body.get("ts") == ts]
    assert actions, "the card was redrawn"
    assert_not_reloaded(page)


def test_typing_triage_list_in_the_composer_answers_in_the_page(page: Page, live: Live) -> None:
    key = live.fail("BID-103")
    live.card_ts(key)
    open_channel(page, live)
    page.locator("#compose").fill("/triage list")
    page.locator("#compose").press("Enter")
    answer = page.locator(".msg.eph").last
    expect(answer).to_contain_text("Only visible to you")
    expect(answer).to_contain_text(key)
    # a line that is not a command: Slackbot answers as Slack does, and nothing is sent to the bot
    page.locator("#compose").fill("/tirage list")
    page.locator("#compose").press("Enter")
    expect(page.locator(".msg.eph").last).to_contain_text("/tirage is not a valid command")
    assert_not_reloaded(page)


def test_file_bead_opens_a_modal_and_submitting_it_files_the_bead(page: Page, live: Live) -> None:
    open_channel(page, live)
    key = live.fail("BID-104")
    ts = live.card_ts(key)
    card(page, ts).get_by_role("button", name="File bead").click()
    dialog = page.locator("#modal form.dialog")
    expect(dialog).to_be_visible()
    fields = dialog.locator("textarea, input[type=text]")
    expect(fields.first).to_be_visible()
    for index in range(fields.count()):  # a required field left empty is refused by the client
        fields.nth(index).fill("")
    dialog.get_by_role("button", name="File").click()
    expect(dialog.locator(".error").first).to_contain_text("required")
    for index in range(fields.count()):
        fields.nth(index).fill(f"what should have happened {index} <b>bold</b>")
    view_id = dialog.get_attribute("data-view")
    dialog.get_by_role("button", name="File").click()
    expect(page.locator("#modal form.dialog")).to_have_count(0)  # closed: the bot acked
    # the same modal submitted again (a second click racing the first) is refused; the first stands
    again = live.gesture("submit", user=RESPONDER, view_id=view_id, values={})
    assert again.status_code == 409 and again.json()["error"] == "view_closed"
    wait_for(lambda: any("bead" in m.text.lower() for m in live.emulator.replies(NIGHTLY, ts)), what="bead reply")
    assert_not_reloaded(page)


def test_switching_user_shows_their_view_and_acts_as_them(page: Page, live: Live) -> None:
    open_channel(page, live)
    page.locator("#compose").fill("/nope")
    page.locator("#compose").press("Enter")
    expect(page.locator(".msg.eph")).not_to_have_count(0)
    page.locator("#as").select_option(OUTSIDER)
    expect(page.locator(".msg.eph")).to_have_count(0)  # carol's ephemerals are carol's
    assert page.url.endswith(f"?as={OUTSIDER}")
    key = live.fail("BID-105")
    ts = live.card_ts(key)
    card(page, ts).get_by_role("button", name="Acknowledge").click()
    # the bot sees the outsider (not carol) and refuses, ephemerally, to the outsider only
    expect(page.locator(".msg.eph").last).to_contain_text("Only")
    assert any(e["user"] == OUTSIDER for e in live.emulator.ephemerals(OUTSIDER))
    assert_not_reloaded(page)


def test_adding_a_reaction_sends_reaction_added(page: Page, live: Live) -> None:
    open_channel(page, live)
    key = live.fail("BID-106")
    ts = live.card_ts(key)
    card(page, ts).locator("select.react").select_option("eyes")
    expect(card(page, ts).locator(".reaction")).to_have_text("👀 1")
    message = live.emulator.message(NIGHTLY, ts)
    assert message is not None and message.reactions == {"eyes": [RESPONDER]}
    # reacting again with the same emoji is Slack's already_reacted, nothing doubles
    again = live.gesture("react", user=RESPONDER, channel=NIGHTLY, ts=ts, name="eyes")
    assert again.json()["error"] == "already_reacted"


def test_plain_messages_and_mentions_reach_the_bot_as_events(page: Page, live: Live) -> None:
    open_channel(page, live)
    page.locator("#compose").fill("@triagebot hello & <b>not bold</b>")
    page.locator("#compose").press("Enter")
    mine = page.locator(".msg", has_text="not bold").first
    expect(mine).to_contain_text("@triagebot hello & <b>not bold</b>")  # literal, escaped
    expect(mine.locator(".mention")).to_have_text("@triagebot")
    # app_mention that is not "triage": the bot answers in the thread with its help
    expect(mine.locator(".reply-to")).to_contain_text("1 reply")
    # a reply typed in that thread lands under it, not in the channel
    mine.locator(".reply-to").click()
    page.locator("#compose").fill("thanks, @carol")
    page.locator("#compose").press("Enter")
    expect(page.locator(".msg.reply", has_text="thanks")).to_contain_text("thanks, @carol")
    expect(mine.locator(".reply-to")).to_contain_text("2 replies")
    assert_not_reloaded(page)


def test_app_home_tab_renders_what_the_bot_published(page: Page, live: Live) -> None:
    page.goto(f"{live.emulator.web_url}home/{RESPONDER}")
    expect(page.locator("#timeline .home")).to_be_visible()  # app_home_opened -> views.publish
    assert live.emulator.home_view(RESPONDER) is not None
    expect(page.locator("#timeline .home .header").first).not_to_be_empty()


def test_hostile_mrkdwn_renders_escaped(page: Page, live: Live) -> None:
    hostile = (
        '*bold* <img src=x onerror="window.__pwned=1"> &lt;script&gt;window.__pwned=2&lt;/script&gt; '
        "<javascript:alert(1)|click> `<b>code</b>` <@U0CAROL> :fire:"
    )
    client = live.emulator
    with client.workspace.lock:
        channel = client.workspace.channels[NIGHTLY]
        client.workspace.post(channel, user="U0BOT", text=hostile, bot_id="B0BOT")
    open_channel(page, live)
    shown = page.locator(".msg", has_text="window.__pwned=2").last
    expect(shown).to_be_visible()
    expect(shown.locator("b")).to_have_text("bold")
    expect(shown.locator("code")).to_have_text("<b>code</b>")
    expect(shown.locator(".mention")).to_have_text("@carol")
    expect(shown).to_contain_text("<script>window.__pwned=2</script>")
    expect(shown).to_contain_text("🔥")
    assert shown.locator("img, script, a[href^=javascript]").count() == 0
    assert page.evaluate("window.__pwned") is None


# -- bad input over the page's own endpoints (what a stale or hurried page sends) ------------------


def test_a_click_on_a_deleted_card_is_still_delivered_and_answered(live: Live) -> None:
    key = live.fail("BID-107")
    ts = live.card_ts(key)
    with live.emulator.workspace.lock:
        channel = live.emulator.workspace.channels[NIGHTLY]
        message = channel.find(ts)
        assert message is not None
        live.emulator.workspace.delete(channel, message)
    act = {"action_id": "incident_ack", "block_id": "", "type": "button", "value": key.split("-")[1]}
    answer = live.gesture(
        "action", user=RESPONDER, container={"kind": "message", "channel": NIGHTLY, "ts": ts}, act=act
    )
    assert answer.status_code == 200 and answer.json()["ok"] is True  # the bot acked within 3 s


def test_unknown_users_channels_and_bodies_get_precise_4xx(live: Live) -> None:
    unknown = live.gesture("compose", user="U0NOBODY", channel=NIGHTLY, text="hi")
    assert unknown.status_code == 400 and unknown.json()["error"] == "user_not_found"
    assert live.gesture("compose", user=RESPONDER, channel="C0NOPE", text="hi").status_code == 404
    assert live.gesture("compose", user=RESPONDER, channel=NIGHTLY, text="  ").json()["error"] == "no_text"
    assert live.http.post("/ui/action", content=b"{nope").json()["error"] == "invalid_json"
    stale = live.gesture(
        "action", user=RESPONDER, container={"kind": "message", "channel": NIGHTLY, "ts": "1.2"}, act={"action_id": "x"}
    )
    assert stale.status_code == 404
    bad = live.gesture("react", user=RESPONDER, channel=NIGHTLY, ts="1.2", name="<script>")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_name"
    page = live.http.get(f"/channels/{NIGHTLY}", params={"as": "<U0X>"})
    assert page.status_code == 400 and "&lt;U0X&gt;" in page.text and "<U0X>" not in page.text
