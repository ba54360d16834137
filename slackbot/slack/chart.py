"""The triage chart: ``ChartData`` in, PNG bytes out.

matplotlib is imported on first use, not at import time: it costs about a second to import, and
neither the bot's start nor a test that draws no chart should pay for it. The object API
(``Figure`` + the Agg canvas) is used instead of ``pyplot``: pyplot keeps global state and picks a
GUI backend, neither of which a server thread wants.
"""

from __future__ import annotations

import io

from slackbot.slack.digest import ChartData

WIDTH, HEIGHT, DPI = 10, 7, 100
NAME_LIMIT = 48


def _name(text: str) -> str:
    # matplotlib reads $…$ as TeX; a test name is plain text.
    text = text.replace("$", r"\$")
    return text if len(text) <= NAME_LIMIT else text[: NAME_LIMIT - 1] + "…"


def render_png(data: ChartData) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.suptitle(_name(data.title))
    # One above the other: each panel gets the full width for its names.
    left, right = figure.subplots(2, 1)

    labels = [_name(label) for label, _, _ in data.classes]
    if labels:
        positions = range(len(labels))
        medians = [m or 0.0 for _, m, _ in data.classes]
        p90s = [p or 0.0 for _, _, p in data.classes]
        left.barh([p + 0.2 for p in positions], medians, height=0.4, label="median", color="#4c78a8")
        left.barh([p - 0.2 for p in positions], p90s, height=0.4, label="p90", color="#9ecae9")
        left.set_yticks(list(positions), labels)
        left.invert_yaxis()
    else:
        left.text(0.5, 0.5, "nothing classified", ha="center", va="center", transform=left.transAxes)
        left.set_yticks([])
    if data.target_minutes is not None:
        left.axvline(data.target_minutes, color="#d62728", linestyle="--", label=f"target {data.target_minutes:g} min")
    if labels or data.target_minutes is not None:
        left.legend(loc="lower right", fontsize="small")
    left.set_xlabel("minutes to classify")
    left.set_title("Time to classify, per class", fontsize="medium")

    if data.flaky:
        names = [_name(name) for name, _ in data.flaky]
        right.barh(range(len(names)), [rate * 100 for _, rate in data.flaky], color="#f58518")
        right.set_yticks(list(range(len(names))), names)
        right.invert_yaxis()
        right.set_xlim(0, 100)
    else:
        right.text(0.5, 0.5, "no flaky tests", ha="center", va="center", transform=right.transAxes)
        right.set_yticks([])
    right.set_xlabel("flake rate: % of consecutive runs that flipped between failing and passing")
    right.set_title("Flakiest tests", fontsize="medium")

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
