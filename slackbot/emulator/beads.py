"""A local beads workspace for the demo and the simulation: bd when it is installed, else the
shipped double (``triagebot-fake-bd``, :mod:`slackbot.emulator.fake_bd`), which behaves like bd 1.0.5
for the commands the bot uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class BdMissing(RuntimeError):
    """Neither bd nor the double is installed."""


def fake_bd_executable() -> str:
    beside = Path(sys.executable).parent / "triagebot-fake-bd"
    if beside.exists():
        return str(beside)
    found = shutil.which("triagebot-fake-bd")
    if found:
        return found
    raise BdMissing("the bd double (console script triagebot-fake-bd) is not installed: pip install -e .")


def init_workspace(directory: Path, *, prefix: str, bd: str | None = None) -> Path:
    """``bd init`` a workspace in ``directory/.beads`` the way a server would (git-free,
    non-interactive) and return the ``.beads`` directory (``BEADS_DIR``)."""
    beads_dir = directory / ".beads"
    command = [bd or fake_bd_executable(), "init", "--prefix", prefix, "--quiet", "--non-interactive"]
    subprocess.run(
        [*command, "--skip-hooks", "--skip-agents"],
        check=True,
        env={**os.environ, "BEADS_DIR": str(beads_dir)},
        capture_output=True,
    )
    return beads_dir
