"""The digest's schedule as data: validated by `triagebot check`, kept on the wall clock across DST."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from slackbot.config import check_playbooks
from slackbot.config.workspace import DigestSchedule
from tests.conftest import RUNBOOKS


def test_a_bad_schedule_is_named_by_file_line_and_field(tmp_path: Path) -> None:
    root = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, root)
    workspace = root / "workspace.yml"
    text = workspace.read_text(encoding="utf-8")
    bad = text.replace("  day: monday\n", "  day: caturday\n").replace('  time: "09:00"\n', '  time: "9 am"\n')
    bad = bad.replace("  timezone: Europe/Berlin\n", "  timezone: Europe/Atlantis\n")
    workspace.write_text(bad, encoding="utf-8")
    lines = bad.splitlines()

    found = {(p.file, p.line, p.field): p.message for p in check_playbooks(root)}  # what `triagebot check` prints
    for field, needle in (("digest.day", "day: caturday"), ("digest.time", "9 am"), ("digest.timezone", "Atlantis")):
        line = next(i for i, content in enumerate(lines, 1) if needle in content)
        assert ("workspace.yml", line, field) in found, (field, found)
    assert (
        "unknown time zone 'Europe/Atlantis'"
        in found[("workspace.yml", lines.index("  timezone: Europe/Atlantis") + 1, "digest.timezone")]
    )


def test_monday_nine_stays_nine_in_berlin_across_daylight_saving_time() -> None:
    schedule = DigestSchedule(day="monday", time="09:00", timezone="Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    # The Monday before summer time starts (Sunday 28 March 2027) and the one after.
    before = datetime(2027, 3, 22, 9, 0, tzinfo=berlin)
    assert schedule.latest(datetime(2027, 3, 22, 8, 0, tzinfo=UTC)) == before  # 09:00 CET is 08:00 UTC
    assert schedule.following(before.astimezone(UTC)) == datetime(2027, 3, 29, 9, 0, tzinfo=berlin)
    assert schedule.following(before.astimezone(UTC)).astimezone(UTC).hour == 7  # 09:00 CEST
    # A minute early is still last week's; a Wednesday's latest is that week's Monday.
    assert schedule.latest(datetime(2027, 3, 22, 7, 59, tzinfo=UTC)) == datetime(2027, 3, 15, 9, 0, tzinfo=berlin)
    assert schedule.latest(datetime(2027, 3, 24, 12, 0, tzinfo=UTC)) == before
