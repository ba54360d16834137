"""Parsing in a child process (slackbot/clients/isolated.py): a child must start parsing at once,
not after running the parent's main script again (multiprocessing's main fixup), which cost about
a second per artifact whenever the bot ran under a script importing the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
with open({marker!r}, "a") as marker:
    marker.write(str(os.getpid()) + "\\n")  # the main script's body: once per process that runs it
from slackbot.clients.isolated import run_in_child

if __name__ == "__main__":
    answers = [run_in_child(json.loads, "[%d]" % n) for n in range(4)]
    assert answers == [[0], [1], [2], [3]], answers
    print("ok")
"""


def test_children_parse_without_running_the_parents_main_script_again(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "main_script.py"
    script.write_text(SCRIPT.format(root=str(Path(__file__).parents[2]), marker=str(marker)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    # The parent, and the forkserver once (so the children it forks have it): not one per parse.
    runs = marker.read_text().split()
    assert len(runs) == 2, f"the main script ran in {len(runs)} processes for 4 parses"
