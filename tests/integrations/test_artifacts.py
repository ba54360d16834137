"""Reading a hostile artifact zip: what comes out, and every way a bad archive is refused."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from slackbot.clients.artifacts import MB, ArchiveLimits, UnsafeArchive, extract, safe_member_path


def build(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def test_reads_wanted_members_with_normalised_paths() -> None:
    data = build(
        [
            ("reports/report.json", b'{"schemaVersion": 1}'),
            ("./reports/junit.xml", b"<testsuites/>"),
            ("evidence/BID-001/shot.png", b"\x89PNG"),
            (zipfile.ZipInfo("reports/empty-dir/"), b""),
        ]
    )
    files = extract(data, wanted=lambda p: p.endswith((".json", ".xml")))
    assert [(f.path, f.data) for f in files] == [
        ("reports/report.json", b'{"schemaVersion": 1}'),
        ("reports/junit.xml", b"<testsuites/>"),
    ]


@pytest.mark.parametrize(
    "name",
    ["../evil.json", "reports/../../evil.json", "/etc/cron.d/evil", "..\\..\\evil.json", "C:/evil.json"],
)
def test_zip_slip_entries_reject_the_whole_archive(name: str) -> None:
    data = build([("report.json", b"{}"), (zipfile.ZipInfo(name), b"{}")])
    with pytest.raises(UnsafeArchive, match=r"absolute|outside"):
        extract(data)


def test_symlink_member_is_refused_even_when_not_wanted() -> None:
    link = zipfile.ZipInfo("report.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = build([(link, b"/etc/passwd")])
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        extract(data, wanted=lambda _p: False)


def test_zip_bomb_member_stops_at_the_per_file_cap() -> None:
    bomb = b"\0" * (3 * MB)  # compresses to a few KB
    data = build([("report.json", bomb)])
    assert len(data) < 64 * 1024
    with pytest.raises(UnsafeArchive, match="larger than 1 MB uncompressed"):
        extract(data, limits=ArchiveLimits(max_member_bytes=1 * MB))


def test_many_medium_members_stop_at_the_total_cap() -> None:
    chunk = b"x" * (MB // 2)
    data = build([(f"junit-{i}.xml", chunk) for i in range(5)])
    limits = ArchiveLimits(max_member_bytes=1 * MB, max_total_bytes=2 * MB)
    with pytest.raises(UnsafeArchive, match="add up to more than 2 MB"):
        extract(data, limits=limits)


def test_too_many_members_is_refused_before_reading() -> None:
    data = build([(f"f{i}.json", b"{}") for i in range(51)])
    with pytest.raises(UnsafeArchive, match="51 members; the limit is 50"):
        extract(data, limits=ArchiveLimits(max_members=50))


def test_encrypted_member_is_refused() -> None:
    info = zipfile.ZipInfo("report.json")
    data = bytearray(build([(info, b"{}")]))
    # Set the "encrypted" general-purpose flag in both the local and the central header.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    with pytest.raises(UnsafeArchive, match="encrypted"):
        extract(bytes(data))


def test_not_a_zip() -> None:
    with pytest.raises(UnsafeArchive, match="not a zip archive"):
        extract(b"<html>expired link</html>")


def test_safe_member_path_keeps_ordinary_names() -> None:
    assert safe_member_path("reports\\nightly\\report.json") == "reports/nightly/report.json"
    assert safe_member_path("./a/./b.xml") == "a/b.xml"
    with pytest.raises(UnsafeArchive, match="NUL"):
        safe_member_path("report.json\x00.png")


def test_corrupt_deflate_data_is_an_unsafe_archive() -> None:
    data = bytearray(build([("report.json", b'{"schemaVersion": 1, "results": []}' * 100)]))
    start = data.index(b"report.json") + len("report.json")
    data[start] = 0xFF  # the deflate stream's first block: BTYPE 11, which does not exist
    with pytest.raises(UnsafeArchive, match=r"'report\.json' cannot be read"):
        extract(bytes(data))


def test_a_member_name_flagged_utf8_that_is_not_is_an_unsafe_archive() -> None:
    data = bytearray(build([("report-xx.json", b"{}")]))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + flags_at + 1] |= 0x08  # bit 11: names are UTF-8
    data = bytearray(bytes(data).replace(b"report-xx.json", b"report-\xff\xfe.json"))
    with pytest.raises(UnsafeArchive, match="flagged UTF-8 but is not"):
        extract(bytes(data))
