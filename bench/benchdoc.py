"""Each benchmark owns one section of docs/benchmarks.md, between markers, and rewrites only it."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Numbers written by the scripts in `bench/` (run them with `.venv/bin/python bench/<name>.py`).
Each section says what was measured, on what machine and when. Targets come from the issues.
"""


def machine() -> str:

    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.system()}"
    )


def update_section(name: str, body: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n\n_Measured {stamp} on {machine()}._\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def verdict(values: list[float], good: Callable[[float], bool]) -> str:
    """``meets`` or ``misses`` only when every round says so: a median that passes while some
    rounds fail is noise, not a pass (issue 17)."""
    said = {bool(good(v)) for v in values}
    return "noise" if len(said) > 1 else ("meets" if said == {True} else "MISSES")
