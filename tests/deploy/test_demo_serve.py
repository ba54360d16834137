"""``triagebot demo --serve`` as a new user runs it: the printed ``send`` command makes a new card
appear in the emulator, and a flake's bead is filed and the flake resolved through the emulator."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

TRIAGEBOT = str(Path(sys.executable).parent / "triagebot")


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return value


@dataclass
class Demo:
    process: subprocess.Popen[str]
    lines: list[str]
    emulator: str
    bot: str
    send: str


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRIAGE_", "GITHUB_", "BEADS_"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    process = subprocess.Popen(
        [TRIAGEBOT, "demo", "--serve", "--port", "0", "--playbook", "integration-triage"],
        cwd=workdir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    arrived: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            arrived.put(line.rstrip("\n"))
        arrived.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    try:
        while not lines or not lines[-1].startswith("Serving until Ctrl-C"):
            line = arrived.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "\n".join(lines)
            lines.append(line)
        text = "\n".join(lines)
        emulator = re.search(r"^Slack emulator \(open it in a browser\): (http://\S+/)$", text, re.M)
        bot = re.search(r"^Bot: (http://\S+)   ingest secret: ([0-9a-f]{32})$", text, re.M)
        send = lines[lines.index("Send another report (a new card appears in the browser):") + 1].strip()
        assert emulator and bot, text
        assert f"TRIAGE_INGEST_SECRET={bot.group(2)} " in send and f"--server {bot.group(1)}" in send
        yield Demo(process, lines, emulator.group(1), bot.group(1), send)
    finally:
        process.terminate()
        process.wait(timeout=30)


def state(demo: Demo) -> dict[str, Any]:
    return dict(httpx.get(demo.emulator + "api/state.json", timeout=10).json())


def cards(demo: Demo) -> dict[str, tuple[str, str]]:
    """Incident key -> (channel, ts) of each card the bot posted."""
    found = {}
    for channel in state(demo)["channels"]:
        for message in channel["messages"]:
            header = json.dumps(message.get("blocks") or [])
            for key in set(re.findall(r"INC-\d+", header[:400])):
                found.setdefault(key, (channel["id"], message["ts"]))
    return found


def incident(demo: Demo, key: str) -> dict[str, Any]:
    rows = httpx.get(demo.bot + "/api/incidents", params={"limit": 500}, timeout=10).json()["incidents"]
    return next(dict(row) for row in rows if row["id"] == key)


def type_in(demo: Demo, user: str, channel: str, text: str) -> dict[str, Any]:
    """What the emulator's composer does when a person types a line and presses Enter."""
    answer = httpx.post(demo.emulator + "ui/compose", json={"user": user, "channel": channel, "text": text}, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_printed_send_command_makes_a_new_card_appear(demo: Demo) -> None:
    before = cards(demo)
    assert before, "the demo's own card"
    sent = subprocess.run(demo.send, shell=True, env=_env(), capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    new = re.findall(r"^  (INC-\d+) new: ", sent.stdout, re.M)
    assert new, sent.stdout
    after = wait_for(lambda: (c := cards(demo)) and set(new) <= set(c) and c, "the new cards in the emulator")
    assert set(after) - set(before) == set(new)


def test_a_flake_is_filed_as_a_bead_and_resolved_through_the_emulator(demo: Demo) -> None:
    key, (channel, _) = sorted(cards(demo).items())[0]
    classified = type_in(demo, "U0ERIN", channel, f"/triage classify {key} flake")
    assert classified["ok"], classified
    filed = wait_for(lambda: (i := incident(demo, key))["bead"] and i, f"the bead of {key}")
    assert filed["class"] == "flake_concurrency" and filed["bead"].startswith("demo-")
    resolved = type_in(demo, "U0ERIN", channel, f"/triage resolve {key} a race between the two writers")
    assert resolved["ok"], resolved
    done = wait_for(lambda: (i := incident(demo, key))["status"] == "resolved" and i, f"{key} resolved")
    assert done["resolvedAt"]


def test_a_taken_port_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [TRIAGEBOT, "demo", "--serve", "--port", str(port), "--database", f"sqlite:///{tmp_path / 'd.db'}"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: demo: port {port} is taken (another `triagebot demo --serve` still running?): "
        "stop it, or pass --port N (--port 0 picks a free port)"
    ]
    assert "Traceback" not in result.stdout + result.stderr
