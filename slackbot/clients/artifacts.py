"""Reading a CI artifact (a zip from GitHub Actions) without trusting it.

An artifact is whatever the workflow uploaded, and a workflow can be changed by anyone who can
open a pull request, so the archive is hostile until proven otherwise:

* **nothing is written to disk**: members are read into memory, so a ``../../etc/cron.d/x`` or
  ``/abs/path`` entry could not land anywhere even if a check were missed; such entries (and
  symlinks, which only make sense when extracting to disk) still reject the whole archive,
  because an archive that contains them was not produced by an honest test harness;
* **sizes are counted while decompressing**, never taken from the headers, which a zip bomb
  forges: a member stops being read at its cap, and the total across members is capped too;
* **the number of members is capped** before anything is read (a million empty files costs
  memory and time in ``infolist`` alone);
* encrypted members are refused (there is no password to give).

The caller decides which members it wants (``wanted``); the others are only inspected for the
checks above, never decompressed.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

MB = 1024 * 1024
_CHUNK = 64 * 1024
# What zipfile raises on a damaged archive besides BadZipFile: a truncated or lying header
# (OSError, EOFError, struct.error, ValueError, OverflowError), corrupt deflate data (zlib.error),
# a name flagged UTF-8 that is not (UnicodeDecodeError, a ValueError), a compression method it
# cannot read such as deflate64 (NotImplementedError).
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    OverflowError,
    struct.error,
    zlib.error,
    NotImplementedError,
)


class UnsafeArchive(ValueError):
    """The archive breaks a safety rule; the message says which member and which rule."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 2000
    max_member_bytes: int = 25 * MB
    max_total_bytes: int = 100 * MB


@dataclass(frozen=True)
class ArchiveFile:
    path: str  # normalised, relative, forward slashes
    data: bytes


def safe_member_path(name: str) -> str:
    """The member's relative path, or UnsafeArchive when it could escape the extraction folder.

    Windows separators count as separators (a zip made on Windows may use them, and an attacker
    can use them to hide a ``..``)."""
    if "\x00" in name:
        raise UnsafeArchive(f"member {name!r} has a NUL byte in its name")
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise UnsafeArchive(f"member {name!r} has an absolute path")
    parts = [p for p in PurePosixPath(normalised).parts if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member {name!r} points outside the archive (..)")
    if not parts:
        raise UnsafeArchive(f"member {name!r} has an empty name")
    return "/".join(parts)


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = (info.external_attr >> 16) & 0xFFFF
    return stat.S_ISLNK(mode)


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, cap: int) -> bytes:
    out = bytearray()
    with archive.open(info) as member:
        while True:
            chunk = member.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > cap:
                raise UnsafeArchive(f"member {path!r} is larger than {cap // MB} MB uncompressed")
    return bytes(out)


def extract(
    data: bytes,
    *,
    wanted: Callable[[str], bool] = lambda _path: True,
    limits: ArchiveLimits | None = None,
) -> list[ArchiveFile]:
    """Every wanted regular file in the zip, in archive order; UnsafeArchive on any violation."""
    limits = limits or ArchiveLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except UnicodeDecodeError as exc:
        raise UnsafeArchive(f"a member name is flagged UTF-8 but is not: {exc}") from None
    except _DAMAGED as exc:
        raise UnsafeArchive(f"not a zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_members:
            raise UnsafeArchive(f"archive has {len(infos)} members; the limit is {limits.max_members}")
        selected: list[tuple[zipfile.ZipInfo, str]] = []
        for info in infos:
            path = safe_member_path(info.filename)
            if _is_symlink(info):
                raise UnsafeArchive(f"member {info.filename!r} is a symbolic link")
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise UnsafeArchive(f"member {info.filename!r} is encrypted")
            if wanted(path):
                selected.append((info, path))
        files: list[ArchiveFile] = []
        total = 0
        for info, path in selected:
            cap = min(limits.max_member_bytes, limits.max_total_bytes - total)
            try:
                content = _read_capped(archive, info, path, cap)
            except UnsafeArchive:
                if cap < limits.max_member_bytes:
                    raise UnsafeArchive(
                        f"archive members add up to more than {limits.max_total_bytes // MB} MB uncompressed"
                    ) from None
                raise
            except _DAMAGED as exc:
                raise UnsafeArchive(f"member {path!r} cannot be read: {exc}") from None
            total += len(content)
            files.append(ArchiveFile(path, content))
        return files
