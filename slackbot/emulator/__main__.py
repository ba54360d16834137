"""``python -m slackbot.emulator --port 8099``: a local Slack to point a bot (or a browser) at.

Seeds a channel and a user so there is something to post to, prints the URLs to configure and the
page to open (interactive once a bot is attached), and serves until interrupted. Point the bot at
it with ``SLACK_API_URL=<base_url>`` and the emulator's token and signing secret; pass
``--bot-url`` to let the emulator deliver to the bot.
"""

from __future__ import annotations

import argparse
import threading

from slackbot.emulator.server import SlackEmulator


def _pair(value: str) -> tuple[str, str]:
    ident, sep, name = value.partition(":")
    if not sep or not ident or not name:
        raise argparse.ArgumentTypeError(f"expected ID:name, got {value!r}")
    return ident, name


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m slackbot.emulator",
        description="A local Slack (Web API, workspace state, pages to click in) to try the bot without a workspace.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--bot-token", default="xoxb-emulator")
    parser.add_argument("--signing-secret", default="emulator-signing-secret")
    parser.add_argument("--bot-url", default=None, help="the bot's POST /slack/events URL")
    parser.add_argument(
        "--rate-limit", type=float, default=1.0, help="chat.postMessage per channel per second; 0 = off"
    )
    parser.add_argument(
        "--channel", action="append", type=_pair, default=None, help="ID:name, repeatable (default C0TRIAGE:triage)"
    )
    parser.add_argument("--user", action="append", type=_pair, default=None, help="ID:name, repeatable")
    args = parser.parse_args(argv)

    emulator = SlackEmulator(
        host=args.host,
        port=args.port,
        bot_token=args.bot_token,
        signing_secret=args.signing_secret,
        bot_url=args.bot_url,
        rate_limit_per_channel=args.rate_limit,
    )
    for channel_id, name in args.channel or [("C0TRIAGE", "triage")]:
        emulator.add_channel(channel_id, name)
    for user_id, name in args.user or [("U0ALICE", "alice")]:
        emulator.add_user(user_id, name)
    try:
        emulator.start()
    except OSError as exc:
        raise SystemExit(
            f"emulator: cannot listen on {args.host}:{args.port} ({exc.strerror}); pick another --port"
        ) from None
    first_channel = emulator.channel_ids()[0]
    print(f"Slack emulator: Web API {emulator.base_url}  pages {emulator.web_url}", flush=True)
    print(f"  open {emulator.web_url}channels/{first_channel}", flush=True)
    print(f"  bot token {emulator.bot_token}  signing secret {emulator.signing_secret}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
