"""BdTracker: the bead tracker backed by the beads CLI (``bd`` ≥1.0.4).

Why a subprocess and not a library: bd is a Go binary with an embedded Dolt store; its CLI with
``--json`` is the only stable contract (``shared/reference/beads-github-junit.md`` Part A). The same
code runs against the real bd and against ``triagebot-fake-bd``.

Contract points that shape this module:

* **stdout only, three shapes.** bd ≤1.0.2 prints bare JSON, ≥1.0.3 injects ``"schema_version": 1`` into
  objects, and ``BD_JSON_ENVELOPE=1`` wraps everything as ``{"schema_version": 1, "data": ...}``.
  Warnings go to stderr, so stderr is never parsed for success.
* **Exit codes, not text** — with one exception: lock contention. bd's own tests retry on the
  substrings in :data:`LOCK_MARKERS`, so we do too, with their backoff (0.5 s · 2^min(n, 4)).
* **One writer per workspace.** Embedded Dolt tolerates one writer; every call for one ``BEADS_DIR``
  goes through one asyncio lock in this process.
* **No daemon flags.** bd 1.0 rejects ``--no-daemon`` & co. as unknown flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from slackbot.clients.tracker import Bead, BeadRequest, TrackerError

SUPPORTED_BD = ">=1.0.4,<2"
LOCK_MARKERS = ("one writer at a time", "database is locked", "locked by another dolt process")
FINGERPRINT_KEY = "ci_fingerprint"
_STDERR_KEEP = 4000
_MESSAGE_KEEP = 600

Sleep = Callable[[float], Awaitable[Any]]

# One lock per (event loop, workspace). Keyed by loop because an asyncio.Lock that has had waiters is
# bound to its loop; tests (and `triagebot simulate`) run several loops in one process.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _workspace_lock(key: str, purpose: str) -> asyncio.Lock:
    per_loop = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault((key, purpose), asyncio.Lock())


# --------------------------------------------------------------------------- versions


def _version_tuple(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0)


def _satisfies(version: tuple[int, int, int], spec: str) -> bool:
    for clause in (c.strip() for c in spec.split(",") if c.strip()):
        match = re.match(r"^(>=|<=|==|!=|>|<)\s*(.+)$", clause)
        bound = _version_tuple(match.group(2)) if match else None
        if match is None or bound is None:
            raise ValueError(f"bad version clause {clause!r}")
        op = match.group(1)
        ok = {
            ">=": version >= bound,
            "<=": version <= bound,
            ">": version > bound,
            "<": version < bound,
            "==": version == bound,
            "!=": version != bound,
        }[op]
        if not ok:
            return False
    return True


def check_bd_version(version: str, spec: str = SUPPORTED_BD) -> str | None:
    """A warning for the operator when ``version`` is outside ``spec``; ``None`` when it is supported.

    Only a warning: an untested bd may still work, and refusing to start over it would take the
    whole bot down for a ticketing side effect.
    """
    parsed = _version_tuple(version)
    if parsed is None:
        return f"could not parse bd version {version!r}; supported: {spec}"
    if not _satisfies(parsed, spec):
        hint = " (bd < 1.0.4 holds an exclusive lock per process)" if parsed < (1, 0, 4) else ""
        return f"bd {version} is not a supported version (supported: {spec}){hint}"
    return None


# --------------------------------------------------------------------------- output parsing


def _loads_lenient(text: str) -> Any:
    """Parse a JSON document; tolerate stray non-JSON lines around it (old builds printed tips)."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty output")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    for match in re.finditer(r"(?m)^[\[{]", stripped):
        try:
            value, _ = decoder.raw_decode(stripped, match.start())
            return value
        except json.JSONDecodeError:
            continue
    raise ValueError("output is not JSON")


def unwrap(value: Any) -> Any:
    """Remove bd's JSON framing: the ``data`` envelope and the inline ``schema_version``."""
    if isinstance(value, dict) and "schema_version" in value and "data" in value and "id" not in value:
        value = value["data"]
    if isinstance(value, dict) and "schema_version" in value:
        value = {k: v for k, v in value.items() if k != "schema_version"}
    return value


def parse_bd_json(stdout: str) -> Any:
    """bd's ``--json`` stdout in any of its three shapes, as the bare payload (object or array)."""
    return unwrap(_loads_lenient(stdout))


def _error_text(stdout: str, stderr: str) -> str:
    """bd's error message: JSON ``error`` (+ ``hint``) from stdout or stderr, else ``Error:`` lines."""
    for stream in (stdout, stderr):
        try:
            payload = parse_bd_json(stream)
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get("error"):
            text = str(payload["error"])
            if payload.get("hint"):
                text += f" (hint: {payload['hint']})"
            return text
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    errors = [line.removeprefix("Error:").strip() for line in lines if not line.startswith("Hint:")]
    hints = [line.removeprefix("Hint:").strip() for line in lines if line.startswith("Hint:")]
    text = "; ".join(errors[:3]) or "no error output"
    if hints:
        text += f" (hint: {hints[0]})"
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bead(issue: Any, what: str) -> Bead:
    if not isinstance(issue, dict) or not isinstance(issue.get("id"), str):
        raise TrackerError(f"bd {what} returned an unexpected JSON shape", retryable=False)
    labels = issue.get("labels") or ()
    return Bead(
        id=issue["id"],
        title=str(issue.get("title", "")),
        status=str(issue.get("status") or "open"),
        url=None,
        labels=tuple(str(label) for label in labels),
    )


def _first(payload: Any, what: str) -> Any:
    """update/close/show/reopen answer with an array; create with an object. Accept either."""
    if isinstance(payload, list):
        if not payload:
            raise TrackerError(f"bd {what} returned no issue", retryable=False)
        return payload[0]
    return payload


def _opt(flag: str, value: str) -> list[str]:
    """``[flag, value]``, or ``flag=value`` when the value starts with '-' so it is not read as a flag."""
    return [f"{flag}={value}"] if value.startswith("-") else [flag, value]


# --------------------------------------------------------------------------- the tracker


class BdTracker:
    """:class:`~slackbot.clients.tracker.BeadTracker` over the ``bd`` CLI.

    ``extra_env`` adds variables for the child only (the simulation uses it for the double's fault
    switches); it never overrides ``BEADS_DIR``/``BEADS_ACTOR``.
    """

    name = "bd"

    def __init__(
        self,
        bin: str = "bd",
        beads_dir: str | os.PathLike[str] | None = None,
        *,
        actor: str = "triagebot",
        timeout: float = 30.0,
        lock_retries: int = 10,
        env_envelope: bool = False,
        sleep: Sleep = asyncio.sleep,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.bin = bin
        self.beads_dir = str(Path(beads_dir).absolute()) if beads_dir is not None else None
        self.actor = actor
        self.timeout = timeout
        self.lock_retries = lock_retries
        self.env_envelope = env_envelope
        self._sleep = sleep
        self.extra_env = dict(extra_env or {})

    # ---- plumbing

    @property
    def _key(self) -> str:
        if self.beads_dir is not None:
            return os.path.realpath(self.beads_dir)
        inherited = self.extra_env.get("BEADS_DIR") or os.environ.get("BEADS_DIR")
        return os.path.realpath(inherited) if inherited else f"cwd:{os.getcwd()}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.beads_dir is not None:
            env["BEADS_DIR"] = self.beads_dir
        env["BEADS_ACTOR"] = self.actor
        env["BD_NON_INTERACTIVE"] = "1"
        if self.env_envelope:
            env["BD_JSON_ENVELOPE"] = "1"
        return env

    async def _exec(self, args: list[str], stdin: str | None, what: str) -> tuple[int, str, str]:
        """Run bd once. Raises retryable TrackerError when it cannot start or does not finish in time."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self.bin,
                *args,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                start_new_session=True,  # its own process group, so a timeout can kill any children too
            )
        except FileNotFoundError:
            raise TrackerError(f"bd executable not found: {self.bin}", retryable=True) from None
        except OSError as exc:
            raise TrackerError(f"bd could not be started: {self.bin}: {exc.strerror}", retryable=True) from None
        data = stdin.encode("utf-8") if stdin is not None else None
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout=self.timeout)
        except TimeoutError:
            await self._kill(proc)
            raise TrackerError(f"bd timed out after {self.timeout:g}s ({what})", retryable=True) from None
        except BaseException:
            await self._kill(proc)
            raise
        rc = proc.returncode if proc.returncode is not None else -1
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), timeout=5)

    async def _run(self, args: list[str], *, stdin: str | None = None) -> Any:
        """Run one bd command under the workspace lock; retry lock contention; return the payload."""
        what = " ".join(args[:2]) if args[0] == "comments" else args[0]
        attempt = 0
        while True:
            async with _workspace_lock(self._key, "io"):
                rc, out, err = await self._exec(args, stdin, what)
            if rc == 0:
                try:
                    return parse_bd_json(out)
                except ValueError:
                    raise TrackerError(
                        f"bd {what} printed output that is not JSON",
                        retryable=False,
                        exit_code=0,
                        stderr=_clip(err, _STDERR_KEEP),
                    ) from None
            if any(marker in out or marker in err for marker in LOCK_MARKERS):
                if attempt >= self.lock_retries:
                    raise TrackerError(
                        f"bd {what}: beads database still locked after {attempt + 1} attempts: "
                        + _clip(_error_text(out, err), _MESSAGE_KEEP),
                        retryable=True,
                        exit_code=rc,
                        stderr=_clip(err, _STDERR_KEEP),
                    )
                await self._sleep(0.5 * 2 ** min(attempt, 4))
                attempt += 1
                continue
            if rc < 0:  # killed by a signal: a crash (e.g. the embedded-Dolt SIGSEGV), not a verdict
                raise TrackerError(
                    f"bd {what} was killed by signal {-rc}",
                    retryable=True,
                    exit_code=rc,
                    stderr=_clip(err, _STDERR_KEEP),
                )
            raise TrackerError(
                f"bd {what} failed (exit {rc}): {_clip(_error_text(out, err), _MESSAGE_KEEP)}",
                retryable=False,
                exit_code=rc,
                stderr=_clip(err, _STDERR_KEEP),
            )

    # ---- the BeadTracker interface

    async def version(self) -> str:
        payload = await self._run(["version", "--json"])
        if not isinstance(payload, dict) or not payload.get("version"):
            raise TrackerError("bd version printed no version", retryable=False)
        return str(payload["version"])

    async def create(self, req: BeadRequest) -> Bead:
        """Idempotent by fingerprint: find first, create only when nothing carries it.

        The find and the create run under one per-workspace lock so two concurrent filings of the
        same incident cannot both miss and both create.
        """
        async with _workspace_lock(self._key, "create"):
            existing = await self.find_by_fingerprint(req.fingerprint)
            if existing is not None:
                return existing
            args = ["create", *_opt("--title", req.title)] if req.title.startswith("-") else ["create", req.title]
            args += ["-t", "bug", "-p", str(req.priority), "--body-file", "-"]
            if req.labels:
                args += _opt("-l", ",".join(req.labels))
            if req.external_ref:
                args += _opt("--external-ref", req.external_ref)
            args += ["--metadata", json.dumps({**req.metadata, FINGERPRINT_KEY: req.fingerprint})]
            if req.assignee:
                args += _opt("-a", req.assignee)
            if req.due is not None:  # bd 1.0 parses RFC 3339 (cmd/bd/create.go, --due)
                args += ["--due", req.due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
            args.append("--json")
            issue = _first(await self._run(args, stdin=req.body), "create")
            if isinstance(issue, dict) and "labels" not in issue and req.labels:
                # bd < 1.0.5 attached labels after the insert, so its create JSON omits them
                issue = {**issue, "labels": list(req.labels)}
            return _bead(issue, "create")

    async def find_by_fingerprint(self, fingerprint: str) -> Bead | None:
        payload = await self._run(
            ["list", "--json", "--all", "-n", "0", "--metadata-field", f"{FINGERPRINT_KEY}={fingerprint}"]
        )
        if not isinstance(payload, list):
            raise TrackerError("bd list returned an unexpected JSON shape", retryable=False)
        matches = [
            issue
            for issue in payload
            if isinstance(issue, dict)
            and (
                not isinstance(issue.get("metadata"), dict)  # trust bd's filter when metadata is not echoed
                or issue["metadata"].get(FINGERPRINT_KEY) == fingerprint
            )
        ]
        if not matches:
            return None
        # Prefer a live bead, then the oldest: that is the one the incident was first filed as.
        matches.sort(key=lambda i: (i.get("status") == "closed", str(i.get("created_at", "")), str(i["id"])))
        return _bead(matches[0], "list")

    async def comment(self, bead_id: str, text: str) -> None:
        if bead_id.startswith("-") or text.startswith("-"):
            await self._run(["comments", "add", "--json", "--", bead_id, text])
        else:
            await self._run(["comments", "add", bead_id, text, "--json"])

    async def update(
        self,
        bead_id: str,
        *,
        status: str | None = None,
        priority: int | None = None,
        add_labels: Sequence[str] = (),
    ) -> Bead:
        args = ["update", bead_id]
        if status is not None:
            args += _opt("-s", status)
        if priority is not None:
            args += ["-p", str(priority)]
        for label in add_labels:
            args += _opt("--add-label", label)
        if len(args) == 2:  # nothing to change; bd would refuse with "no updates specified"
            return await self.show(bead_id)
        args.append("--json")
        return _bead(_first(await self._run(args), "update"), "update")

    async def close(self, bead_id: str, reason: str) -> Bead:
        payload = await self._run(["close", bead_id, *_opt("-r", reason), "--json"])
        return _bead(_first(payload, "close"), "close")

    async def reopen(self, bead_id: str, reason: str) -> Bead:
        payload = await self._run(["reopen", bead_id, *_opt("-r", reason), "--json"])
        return _bead(_first(payload, "reopen"), "reopen")

    async def show(self, bead_id: str) -> Bead:
        payload = await self._run(["show", bead_id, "--json"])
        return _bead(_first(payload, "show"), "show")
