"""The weekly digest as Slack blocks, and the figures its chart draws: pure functions of a view.

``slackbot.reads.digest`` fills a ``DigestView`` from the database; ``slackbot.slack.chart`` turns
its ``ChartData`` into a PNG. Test names, labels and owner handles come from CI output and the
playbooks, so every one of them is escaped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slackbot.slack.escape import code, escape, truncate

SECTION_LIMIT = 2900  # Block Kit allows 3,000 characters in a section's text


def short(seconds: float | None) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 04h``: compact enough for one line per class."""
    if seconds is None:
        return "—"
    value = round(seconds)
    if value < 60:
        return f"{value}s"
    minutes, _ = divmod(value, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{round(rate * 100)}%"


@dataclass(frozen=True)
class FlakyTest:
    """A test whose recent runs on its branch went back and forth between failing and passing.

    ``flake_rate`` is the share of consecutive runs that disagree (flips / (runs − 1)): 0 for a
    test that always passes or has failed since one change, 1 for one that alternates."""

    name: str
    repository: str
    branch: str
    runs: int
    failed: int
    flips: int
    evidence: str | None = None  # e.g. "passed on rerun attempt 2 of run 9187"

    @property
    def flake_rate(self) -> float:
        return self.flips / (self.runs - 1) if self.runs > 1 else 0.0

    @property
    def fail_rate(self) -> float:
        return self.failed / self.runs if self.runs else 0.0

    def line(self) -> str:
        where = f" on {escape(self.branch)}" if self.branch else ""
        why = f"; {escape(self.evidence)}" if self.evidence else ""
        return (
            f"{code(self.name)} flake rate {percent(self.flake_rate)} ({self.flips} flips in {self.runs} runs{where}),"
            f" fails {percent(self.fail_rate)} ({self.failed}/{self.runs}){why}"
        )


@dataclass(frozen=True)
class ClassLine:
    label: str
    opened: int
    classified: int
    classify_n: int
    classify_median: float | None
    classify_p90: float | None
    within_target: int
    resolved: int
    mttr: float | None
    reclassified: int


@dataclass(frozen=True)
class OwnerLoad:
    owner: str  # a handle from routing.yml (never a mention: a digest must not page anyone)
    open: int


@dataclass(frozen=True)
class DigestView:
    channel: str
    since: datetime
    until: datetime
    zone: str
    new: int
    recurring: int
    classify_within: timedelta | None
    total: ClassLine
    classes: list[ClassLine]
    flaky: list[FlakyTest] = field(default_factory=list)
    owners: list[OwnerLoad] = field(default_factory=list)


@dataclass(frozen=True)
class ChartData:
    title: str
    target_minutes: float | None
    classes: list[tuple[str, float | None, float | None]]  # label, median and p90 minutes to classify
    flaky: list[tuple[str, float]]  # test name, flake rate


def _week(view: DigestView) -> str:
    zone = ZoneInfo(view.zone)
    since, until = view.since.astimezone(zone), view.until.astimezone(zone)
    return f"{since:%a %d %b %H:%M} – {until:%a %d %b %H:%M} ({view.zone})"


def _target(view: DigestView) -> str:
    return f"{int(view.classify_within.total_seconds() // 60)} min" if view.classify_within else "no timed rule"


def _class_line(line: ClassLine, view: DigestView) -> str:
    timed = view.classify_within and line.classify_n
    within = f", {line.within_target}/{line.classify_n} within {_target(view)}" if timed else ""
    reclassified = percent(line.reclassified / line.classified if line.classified else None)
    return (
        f"{line.opened} opened · classify median {short(line.classify_median)}, p90 {short(line.classify_p90)}"
        f" (n={line.classify_n}{within}) · resolve mean {short(line.mttr)} (n={line.resolved})"
        f" · reclassified {line.reclassified}/{line.classified} ({reclassified})"
    )


def digest_text(view: DigestView) -> str:
    """The digest as one mrkdwn text (the message's fallback text, and what the blocks hold)."""
    return "\n\n".join(section for _, section in _sections(view))


def _sections(view: DigestView) -> list[tuple[str, str]]:
    head = (
        f"*Weekly triage digest* for <#{view.channel}> · {escape(_week(view))}\n"
        f"*{view.new}* new incidents · *{view.recurring}* recurring (failed again this week)"
        f" · classification target {_target(view)}"
    )
    if view.total.opened:
        rows = [f"• *All:* {_class_line(view.total, view)}"]
        rows += [f"• *{escape(c.label)}:* {_class_line(c, view)}" for c in view.classes]
        per_class = "*Time to classify and to resolve, per class*\n" + "\n".join(rows)
    else:
        per_class = "*Time to classify and to resolve, per class*\nNo incidents opened this week."
    flaky = "*Flakiest tests*\n" + (
        "\n".join(f"• {t.line()}" for t in view.flaky) if view.flaky else "No test flipped between failing and passing."
    )
    owners = "*Most open incidents, by owner*\n" + (
        "\n".join(f"• {escape(o.owner)}: {o.open} open" for o in view.owners) if view.owners else "No open incidents."
    )
    return [("head", head), ("classes", per_class), ("flaky", flaky), ("owners", owners)]


def digest_blocks(view: DigestView) -> list[dict[str, object]]:
    """No header block: a header is what marks an incident's card in a channel."""
    blocks: list[dict[str, object]] = []
    for name, section in _sections(view):
        if blocks:
            blocks.append({"type": "divider"})
        blocks.append(
            {
                "type": "section",
                "block_id": f"digest_{name}",
                "text": {"type": "mrkdwn", "text": truncate(section, SECTION_LIMIT)},
            }
        )
    return blocks


def chart_data(
    title: str, classes: list[ClassLine], classify_within: timedelta | None, flaky: list[FlakyTest]
) -> ChartData:
    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else seconds / 60

    return ChartData(
        title=title,
        target_minutes=classify_within.total_seconds() / 60 if classify_within else None,
        classes=[(c.label, minutes(c.classify_median), minutes(c.classify_p90)) for c in classes if c.classify_n],
        flaky=[(t.name, t.flake_rate) for t in flaky],
    )


def digest_chart(view: DigestView) -> ChartData:
    return chart_data(
        f"Triage, week to {view.until.astimezone(ZoneInfo(view.zone)):%d %b %Y}",
        view.classes,
        view.classify_within,
        view.flaky,
    )
