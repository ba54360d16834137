"""What keeps the simulation fast enough to run on every change (issue 15: 14 days under 20 s)."""

from __future__ import annotations

import subprocess
import sys


def test_the_bd_double_starts_without_the_emulators_network_stack() -> None:
    """The simulation runs the bd double once per bd call. It lives in ``slackbot.emulator``, whose
    package used to import the whole Slack emulator (aiohttp, httpx, slack_sdk): about 1 s of wall
    time per bead filed, searched or commented."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, slackbot.emulator.fake_bd; "
            "print(sorted(m for m in ('aiohttp', 'httpx', 'slack_sdk', 'sqlalchemy') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
