"""``triagebot-fake-bd``: a stand-in for the beads CLI (``bd`` 1.0.5) that ``triagebot simulate`` (and the tests) run.

Real bd cannot be installed everywhere (its package downloads a Go binary), yet our :class:`BdTracker`
must run unchanged against it. So this double reproduces the *observable contract* of bd 1.0.5 that
the bot relies on, as documented in ``shared/reference/beads-github-junit.md`` Part A:

* the command line: same subcommands and flags, cobra-style errors (``Error: unknown flag: --no-daemon``,
  exit 1) so a client that passes a flag bd 1.0 removed fails here too;
* workspace discovery (``$BEADS_DIR`` → ``$BEADS_DB``/``$BD_DB`` → walk up from cwd for ``.beads/``);
* the three JSON shapes (bare for ``FAKE_BD_VERSION`` < 1.0.3, inline ``schema_version`` by default,
  ``BD_JSON_ENVELOPE=1`` envelope), pretty-printed with Go's HTML escaping of ``< > &``;
* error JSON on stderr, or on stdout for show/update/close (bd's "RespectJSON" errors), exit 1;
* ids ``<prefix>-<base36>`` of at least 3 characters, children ``<parent>.<n>``.

State lives in ``<BEADS_DIR>/issues.jsonl`` in the ``bd export`` line shape (``"_type":"issue"``), rewritten
atomically (temp file + rename) under an exclusive ``flock``, so concurrent invocations serialise like
bd ≥1.0.4 does (it waits instead of failing fast).

Fault injection (for tests and the simulation), read on every invocation:

* ``FAKE_BD_FAIL=n``: the next n *writing* invocations fail with a generic error, exit 1;
* ``FAKE_BD_LOCKED=n``: the next n invocations fail with the real embedded-dolt lock message;
* ``FAKE_BD_HANG=s``: sleep s seconds before answering;
* ``FAKE_BD_VERSION=x.y.z``: report that version and use its JSON shapes;
* ``<BEADS_DIR>/fake-bd-faults.json`` ``{"fail": n, "hang": s, "locked": n, "unavailable": true}``: the same,
  switchable while a long-running process keeps calling us; counters are decremented in the file.

Env counters are remembered in ``<BEADS_DIR>/fake-bd-env-counters.json`` (keyed by the env value, so
setting a new value starts a new budget). This module uses only the standard library: it is started
once per call and must be quick.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_VERSION = "1.0.5"
ISSUES_FILE = "issues.jsonl"
FAULTS_FILE = "fake-bd-faults.json"
ENV_COUNTERS_FILE = "fake-bd-env-counters.json"
LOCK_FILE = ".fake-bd.lock"

LOCK_MESSAGE = (
    "embeddeddolt: another process holds the exclusive lock on {dir}/embeddeddolt/.lock; the embedded "
    "backend supports only one writer at a time — use the dolt server backend for concurrent access"
)
UNAVAILABLE_MESSAGE = "failed to open database: dial tcp 127.0.0.1:3307: connect: connection refused"
FAIL_MESSAGE = "failed to commit transaction: injected failure (fake bd)"

STATUSES = ("open", "in_progress", "blocked", "deferred", "closed", "pinned", "hooked")
ISSUE_TYPES = {
    "bug": "bug",
    "feature": "feature",
    "enhancement": "feature",
    "feat": "feature",
    "task": "task",
    "epic": "epic",
    "chore": "chore",
    "decision": "decision",
    "dec": "decision",
    "adr": "decision",
}
# Issue fields in the order bd's Go struct (and so its JSON) lists them.
ISSUE_FIELDS = (
    "id",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "priority",
    "issue_type",
    "assignee",
    "owner",
    "created_at",
    "created_by",
    "updated_at",
    "started_at",
    "closed_at",
    "close_reason",
    "due_at",
    "external_ref",
    "metadata",
)
WRITE_COMMANDS = frozenset({"create", "update", "close", "reopen", "comments add", "comment"})
# Root persistent flags of bd 1.0 (cmd/bd/main.go); the ones in VALUE_FLAGS take a value.
VALUE_FLAGS = frozenset({"--actor", "--db", "-C", "--directory", "--profile"})
COMMANDS = ("init", "create", "list", "show", "update", "close", "reopen", "comments", "comment", "version")
COMMAND_ALIASES = {"new": "create", "view": "show"}
EXTRA_COMMANDS = ("export",)


class BdError(Exception):
    """A failure reported the way bd reports it.

    ``to_stdout`` marks bd's "RespectJSON" errors (show/update/close), whose JSON goes to stdout;
    ``plain`` marks errors bd prints as text even under ``--json`` (cobra usage errors, discovery).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: int = 1,
        to_stdout: bool = False,
        plain: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        self.to_stdout = to_stdout
        self.plain = plain


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing argparse's own usage text and exiting 2."""

    def error(self, message: str) -> NoReturn:
        match = re.match(r"argument (\S+): expected one argument", message)
        if match:
            names = match.group(1).split("/")
            flag = next((n for n in names if n.startswith("--")), names[0])
            raise BdError(f"flag needs an argument: {flag}", plain=True)
        raise BdError(message, plain=True)


# --------------------------------------------------------------------------- output


def go_json(value: Any, *, pretty: bool = True) -> str:
    """JSON as Go's encoding/json writes it: HTML-escaped ``< > &`` and U+2028/U+2029."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        indent=2 if pretty else None,
        separators=None if pretty else (",", ":"),
    )
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _version_tuple(text: str) -> tuple[int, int, int]:
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        return (1, 0, 5)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


class Output:
    """Where and in which shape this invocation answers."""

    def __init__(self, *, json_mode: bool, version: str, envelope: bool) -> None:
        self.json = json_mode
        self.version = version
        self.vtuple = _version_tuple(version)
        self.versioned = self.vtuple >= (1, 0, 3)  # schema_version exists from 1.0.3
        self.envelope = envelope and self.versioned

    def shape(self, payload: Any) -> Any:
        """Apply the wire shape: bare (≤1.0.2), inline schema_version (objects only), or envelope."""
        if self.envelope:
            return {"schema_version": 1, "data": payload}
        if self.versioned and isinstance(payload, dict):
            return {"schema_version": 1, **payload}
        return payload

    def emit(self, payload: Any) -> None:
        _write(sys.stdout, go_json(self.shape(payload)) + "\n")

    def text(self, text: str) -> None:
        _write(sys.stdout, text if text.endswith("\n") else text + "\n")

    def fail(self, err: BdError) -> None:
        if self.json and not err.plain:
            body: dict[str, Any] = {"error": err.message}
            if err.hint:
                body["hint"] = err.hint
            if self.envelope:
                shaped: Any = {"schema_version": 1, "data": body}
            elif self.versioned:
                shaped = {**body, "schema_version": 1}
            else:
                shaped = body
            _write(sys.stdout if err.to_stdout else sys.stderr, go_json(shaped) + "\n")
            return
        text = f"Error: {err.message}\n"
        if err.hint:
            text += f"Hint: {err.hint}\n"
        _write(sys.stderr, text)


def _write(stream: Any, text: str) -> None:
    stream.flush()
    stream.buffer.write(text.encode("utf-8"))
    stream.buffer.flush()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- workspace and storage


def find_beads_dir(db: str | None, directory: str | None) -> Path | None:
    """bd's discovery order (internal/beads/beads.go FindDatabasePath)."""

    def initialised(path: Path) -> Path | None:
        redirect = path / "redirect"
        if redirect.is_file():
            target = Path(redirect.read_text().strip())
            path = target if target.is_absolute() else (path / target)
        return path if (path / "metadata.json").is_file() else None

    if db:
        path = Path(db)
        return initialised(path if path.is_dir() else path.parent)
    if os.environ.get("BEADS_DIR"):
        return initialised(Path(os.environ["BEADS_DIR"]))
    for name in ("BEADS_DB", "BD_DB"):
        if os.environ.get(name):
            path = Path(os.environ[name])
            return initialised(path if path.is_dir() else path.parent)
    start = Path(directory or os.getcwd()).resolve()
    for candidate in (start, *start.parents):
        found = initialised(candidate / ".beads")
        if found:
            return found
    return None


@contextlib.contextmanager
def exclusive(beads_dir: Path) -> Iterator[None]:
    """Hold the workspace's write lock; other invocations wait (bd ≥1.0.4 behaviour)."""
    with open(beads_dir / LOCK_FILE, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the workspace unreadable to other users
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


class Store:
    """The workspace's issues, kept as ``bd export`` lines."""

    def __init__(self, beads_dir: Path) -> None:
        self.dir = beads_dir
        self.path = beads_dir / ISSUES_FILE
        self.issues: list[dict[str, Any]] = []
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    record = json.loads(line)
                    if record.get("_type", "issue") == "issue":
                        self.issues.append(record)
        self.metadata = _read_json_file(beads_dir / "metadata.json")

    @property
    def prefix(self) -> str:
        return str(self.metadata.get("issue_prefix") or "bd")

    def save(self) -> None:
        _atomic_write(self.path, "".join(go_json(self.export_line(i), pretty=False) + "\n" for i in self.issues))

    def get(self, ref: str) -> dict[str, Any]:
        """Resolve a full or partial id the way bd does (exact, then unique prefix of id or hash)."""
        for issue in self.issues:
            if issue["id"] == ref:
                return issue
        matches = [i for i in self.issues if i["id"].startswith(ref) or i["id"].rsplit("-", 1)[-1].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise BdError(f'ambiguous ID "{ref}" matches {len(matches)} issues')
        raise BdError(f'no issue found matching "{ref}"')

    def counts(self, issue: dict[str, Any]) -> dict[str, int]:
        dependents = sum(
            1 for other in self.issues for dep in other.get("dependencies") or () if dep["depends_on_id"] == issue["id"]
        )
        return {
            "dependency_count": len(issue.get("dependencies") or ()),
            "dependent_count": dependents,
            "comment_count": len(issue.get("comments") or ()),
        }

    def export_line(self, issue: dict[str, Any]) -> dict[str, Any]:
        line: dict[str, Any] = {"_type": "issue"}
        line.update(issue_view(issue))
        for key in ("labels", "dependencies", "comments"):
            if issue.get(key):
                line[key] = issue[key]
        line.update(self.counts(issue))
        return line

    def new_id(self, title: str) -> str:
        existing = {i["id"] for i in self.issues}
        while True:
            seed = f"{title}\0{time.time_ns()}\0{os.getpid()}\0{os.urandom(8).hex()}"
            digest = _base36(int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big"))
            for length in range(3, 9):
                candidate = f"{self.prefix}-{digest[:length]}"
                if candidate not in existing:
                    return candidate


def _base36(number: int) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    while number:
        number, rem = divmod(number, 36)
        out.append(alphabet[rem])
    return "".join(reversed(out)) or "0"


def issue_view(issue: dict[str, Any], *, with_labels: bool = True) -> dict[str, Any]:
    """The ``Issue`` JSON object (omitempty fields left out, priority always kept)."""
    view: dict[str, Any] = {}
    for key in ISSUE_FIELDS:
        value = issue.get(key)
        if key == "priority" or value not in (None, "", {}, []):
            view[key] = value
    if with_labels and issue.get("labels"):
        view["labels"] = list(issue["labels"])
    return view


# --------------------------------------------------------------------------- faults


def _take(counter: dict[str, Any], key: str) -> bool:
    left = int(counter.get(key) or 0)
    if left > 0:
        counter[key] = left - 1
        return True
    return False


def consume_faults(beads_dir: Path, command: str) -> tuple[float, str | None]:
    """Decide this invocation's injected behaviour: (extra hang seconds, error message or None)."""
    writes = command in WRITE_COMMANDS
    error: str | None = None
    faults_path = beads_dir / FAULTS_FILE
    faults = _read_json_file(faults_path)
    hang = float(faults.get("hang") or 0)
    changed = False
    if faults.get("unavailable"):
        error = UNAVAILABLE_MESSAGE
    elif _take(faults, "locked"):
        error, changed = LOCK_MESSAGE.format(dir=beads_dir), True
    elif writes and _take(faults, "fail"):
        error, changed = FAIL_MESSAGE, True
    if changed:
        _atomic_write(faults_path, json.dumps(faults))
    if error is None:
        counters_path = beads_dir / ENV_COUNTERS_FILE
        counters = _read_json_file(counters_path)
        changed = False
        for key, env, applies, message in (
            ("locked", "FAKE_BD_LOCKED", True, LOCK_MESSAGE.format(dir=beads_dir)),
            ("fail", "FAKE_BD_FAIL", writes, FAIL_MESSAGE),
        ):
            budget = os.environ.get(env, "").strip()
            if not budget or not applies:
                continue
            state = counters.get(key)
            if not isinstance(state, dict) or state.get("budget") != budget:
                state = {"budget": budget, "left": int(budget)}
                counters[key] = state
                changed = True
            if _take(state, "left"):
                error, changed = message, True
                break
        if changed:
            _atomic_write(counters_path, json.dumps(counters))
    return hang, error


# --------------------------------------------------------------------------- argument parsing


def _common(parser: argparse.ArgumentParser) -> None:
    """bd's root persistent flags; SUPPRESS so an absent flag never overwrites a present one."""
    s = argparse.SUPPRESS
    parser.add_argument("--actor", default=s)
    parser.add_argument("--db", default=s)
    parser.add_argument("-C", "--directory", default=s)
    parser.add_argument("--json", action="store_true", default=s)
    for flag in ("--sandbox", "--readonly", "--global", "--dolt-auto-commit", "--ignore-schema-skew"):
        parser.add_argument(flag, action="store_true", default=s)
    parser.add_argument("--profile", default=s)
    parser.add_argument("-v", "--verbose", action="store_true", default=s)
    parser.add_argument("-q", "--quiet", action="store_true", default=s)
    parser.add_argument("args", nargs="*")


def _parser(command: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=f"bd {command}", allow_abbrev=False)
    _common(parser)
    add = parser.add_argument
    if command == "init":
        add("--prefix", "-p")
        for flag in ("--non-interactive", "--skip-hooks", "--skip-agents", "--stealth", "--reinit-local", "--force"):
            add(flag, action="store_true")
        add("--backend")
        add("--server", action="store_true")
        add("--destroy-token")
    elif command == "create":
        add("--title")
        add("-t", "--type", default="task")
        add("-p", "--priority", default="2")
        add("-d", "--description")
        add("--body-file")
        add("--stdin", action="store_true")
        add("-l", "--labels", "--label", dest="labels", action="append", default=[])
        add("-a", "--assignee")
        add("--external-ref")
        add("--parent")
        add("--deps")
        add("--metadata")
        add("--due")
        add("--acceptance")
        add("--design")
        add("--notes")
        add("--id")
        add("--silent", action="store_true")
        add("--dry-run", action="store_true")
    elif command == "list":
        add("-s", "--status")
        add("--all", action="store_true")
        add("-n", "--limit", type=int, default=50)
        add("-l", "--label", action="append", default=[])
        add("--label-any", action="append", default=[])
        add("--title")
        add("--title-contains")
        add("--desc-contains")
        add("-t", "--type")
        add("-a", "--assignee")
        add("--id")
        add("--parent")
        add("--metadata-field", action="append", default=[])
        add("--has-metadata-key", action="append", default=[])
        add("--sort", default="priority")
        add("-r", "--reverse", action="store_true")
    elif command == "show":
        add("--include-comments", action="store_true")
        add("--include-dependents", action="store_true")
    elif command == "update":
        add("-s", "--status")
        add("-p", "--priority")
        add("-a", "--assignee")
        add("--title")
        add("-d", "--description")
        add("--notes")
        add("--append-notes")
        add("--add-label", action="append", default=[])
        add("--remove-label", action="append", default=[])
        add("--set-labels", action="append", default=None)
        add("--external-ref")
        add("--set-metadata", action="append", default=[])
        add("--claim", action="store_true")
    elif command == "close":
        add("-r", "--reason", "--resolution", dest="reason", default=None)
        add("--reason-file")
        add("-f", "--force", action="store_true")
    elif command == "reopen":
        add("-r", "--reason", default="")
    elif command in ("comments", "comments add", "comment"):
        add("-a", "--author")
        add("-f", "--file")
        add("--stdin", action="store_true")
    elif command == "export":
        add("-o", "--output")
        add("--include-memories", action="store_true")
    return parser


def split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    """Find the subcommand anywhere among root flags (cobra allows ``bd --json list``)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return None, argv
        if token.startswith("-"):
            i += 2 if token in VALUE_FLAGS else 1
            continue
        command = COMMAND_ALIASES.get(token, token)
        if command not in COMMANDS and command not in EXTRA_COMMANDS:
            raise BdError(f'unknown command "{token}" for "bd"\nRun \'bd --help\' for usage.', plain=True)
        rest = argv[:i] + argv[i + 1 :]
        if command == "comments":
            for j in range(i, len(rest)):
                if not rest[j].startswith("-"):
                    if rest[j] == "add":
                        return "comments add", rest[:j] + rest[j + 1 :]
                    break
        return command, rest
    return None, argv


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    """Parse like cobra/pflag: flags and positionals intermixed, ``--`` ends flags, unknown flags refused."""
    tail: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, tail = argv[:cut], argv[cut + 1 :]
    parser = _parser(command)
    # pflag gives a value flag the next token even when it starts with '-'; argparse would not.
    takes_value = {
        option
        for action in parser._actions
        if action.nargs is None and action.option_strings and not isinstance(action.const, bool)
        for option in action.option_strings
    }
    joined: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in takes_value and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            joined.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        joined.append(token)
        i += 1
    ns, extras = parser.parse_known_intermixed_args(joined)
    for extra in extras:
        if extra.startswith("--"):
            raise BdError(f"unknown flag: {extra.split('=', 1)[0]}", plain=True)
        if extra.startswith("-") and len(extra) > 1:
            raise BdError(f"unknown shorthand flag: {extra[1]!r} in {extra}", plain=True)
    ns.args = list(ns.args) + [e for e in extras if not e.startswith("-") or e == "-"] + tail
    return ns


def _nargs(ns: argparse.Namespace, low: int, high: int | None = None) -> list[str]:
    args: list[str] = ns.args
    if high is not None and low == high and len(args) != low:
        raise BdError(f"accepts {low} arg(s), received {len(args)}", plain=True)
    if len(args) < low:
        raise BdError(f"requires at least {low} arg(s), only received {len(args)}", plain=True)
    if high is not None and len(args) > high:
        raise BdError(f"accepts at most {high} arg(s), received {len(args)}", plain=True)
    return args


def parse_priority(raw: str, *, to_stdout: bool = False) -> int:
    text = raw.strip()
    if text[:1] in ("P", "p"):
        text = text[1:]
    if text.isdigit() and 0 <= int(text) <= 4:
        return int(text)
    raise BdError(f'invalid priority "{raw}" (expected 0-4 or P0-P4)', to_stdout=to_stdout)


def _labels(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for label in value.split(","):
            label = label.strip()
            if label and label not in out:
                out.append(label)
    return out


def _key_value(raw: str, flag: str, *, to_stdout: bool = False) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise BdError(f'invalid {flag} "{raw}": expected key=value', to_stdout=to_stdout)
    return key.strip(), value


def _read_text_source(source: str) -> str:
    if source == "-":
        return sys.stdin.buffer.read().decode("utf-8")
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise BdError(f"failed to read {source}: {exc.strerror}") from exc


def _metadata_matches(metadata: Any, key: str, expected: str) -> bool:
    if not isinstance(metadata, dict) or key not in metadata:
        return False
    value = metadata[key]
    return (value if isinstance(value, str) else json.dumps(value)) == expected


# --------------------------------------------------------------------------- commands


class Context:
    def __init__(self, ns: argparse.Namespace, out: Output, beads_dir: Path | None) -> None:
        self.ns = ns
        self.out = out
        self.dir = beads_dir
        self.actor = (
            getattr(ns, "actor", None)
            or os.environ.get("BEADS_ACTOR")
            or os.environ.get("BD_ACTOR")
            or os.environ.get("USER")
            or "unknown"
        )
        # bd takes the owner from `git config user.email` and omits it without a git identity; the
        # double reads git's own environment override instead of running git on every call.
        self.owner = os.environ.get("GIT_AUTHOR_EMAIL") or os.environ.get("EMAIL") or None

    @property
    def workspace(self) -> Path:
        if self.dir is None:  # run() resolves the workspace for every command that needs one
            raise BdError("no beads database found", plain=True)
        return self.dir

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive(self.workspace)

    def store(self) -> Store:
        return Store(self.workspace)


def cmd_version(ctx: Context) -> int:
    if ctx.out.json:
        ctx.out.emit({"version": ctx.out.version, "build": "fake"})
    else:
        ctx.out.text(f"bd version {ctx.out.version} (fake)")
    return 0


def cmd_init(ctx: Context) -> int:
    ns = ctx.ns
    if os.environ.get("BEADS_DIR"):
        target = Path(os.environ["BEADS_DIR"])
    else:
        target = Path(getattr(ns, "directory", None) or os.getcwd()) / ".beads"
    target = target.absolute()
    prefix = ns.prefix or target.parent.name.lower() or "bd"
    prefix = prefix.replace(".", "_").rstrip("-")
    target.mkdir(parents=True, exist_ok=True)
    with exclusive(target):
        existing = Store(target) if (target / "metadata.json").exists() else None
        if existing and existing.issues and not (ns.reinit_local or ns.force):
            raise BdError(
                f"{target} already contains {len(existing.issues)} issues",
                hint="use --reinit-local to re-initialize this workspace",
                code=11,
            )
        metadata = {"database": "embeddeddolt", "backend": "embedded", "issue_prefix": prefix, "fake_bd": True}
        _atomic_write(target / "metadata.json", json.dumps(metadata, indent=2) + "\n")
        _atomic_write(target / "config.yaml", f'issue-prefix: "{prefix}"\n')
        if not (target / ISSUES_FILE).exists() or ns.reinit_local or ns.force:
            _atomic_write(target / ISSUES_FILE, "")
    if not getattr(ns, "quiet", False):
        ctx.out.text(f"\n✓ bd initialized successfully!\n\n  Database: {target}\n  Issue prefix: {prefix}\n")
    return 0


def _due(value: str | None) -> str | None:
    """bd's --due also takes +6h, tomorrow or next monday; the bot sends RFC 3339 (or a date)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise BdError(f'invalid --due format "{value}". Examples: +6h, tomorrow, next monday, 2025-01-15') from None


def cmd_create(ctx: Context) -> int:
    ns = ctx.ns
    args = _nargs(ns, 0, 1)
    title: str | None = args[0] if args else None
    if ns.title is not None:
        if title is not None and title != ns.title:
            raise BdError("cannot specify both title argument and --title flag with different values")
        title = ns.title
    if title is None:
        raise BdError("title required")
    if not title.strip():
        raise BdError("title is required")
    if len(title) > 500:
        raise BdError("title must be 500 characters or less")
    issue_type = ISSUE_TYPES.get(ns.type.lower())
    if issue_type is None:
        raise BdError(f'invalid issue type "{ns.type}"')
    priority = parse_priority(ns.priority)
    sources = [s for s in (ns.description is not None, ns.body_file is not None, ns.stdin) if s]
    if len(sources) > 1:
        raise BdError("cannot specify more than one of --description, --body-file and --stdin")
    description = ns.description
    if ns.body_file is not None:
        description = _read_text_source(ns.body_file)
    elif ns.stdin:
        description = _read_text_source("-")
    metadata: Any = None
    if ns.metadata is not None:
        raw = _read_text_source(ns.metadata[1:]) if ns.metadata.startswith("@") else ns.metadata
        try:
            metadata = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BdError(f"invalid --metadata JSON: {exc.msg}") from exc
        if not isinstance(metadata, dict):
            raise BdError("invalid --metadata: must be a JSON object")
    now = _now()
    with ctx.locked():
        store = ctx.store()
        dependencies: list[dict[str, Any]] = []
        if ns.id:
            if "-" not in ns.id:
                raise BdError(f'invalid issue ID "{ns.id}": must contain a hyphen')
            if any(i["id"] == ns.id for i in store.issues):
                raise BdError(f"issue {ns.id} already exists")
            issue_id = ns.id
        elif ns.parent:
            parent = store.get(ns.parent)
            children = [i for i in store.issues if re.fullmatch(re.escape(parent["id"]) + r"\.\d+", i["id"])]
            issue_id = f"{parent['id']}.{len(children) + 1}"
            dependencies.append(
                {
                    "issue_id": issue_id,
                    "depends_on_id": parent["id"],
                    "type": "parent-child",
                    "created_at": now,
                    "created_by": ctx.actor,
                }
            )
        else:
            issue_id = store.new_id(title)
        issue: dict[str, Any] = {
            "id": issue_id,
            "title": title,
            "description": description,
            "design": ns.design,
            "acceptance_criteria": ns.acceptance,
            "notes": ns.notes,
            "status": "open",
            "priority": priority,
            "issue_type": issue_type,
            "assignee": ns.assignee,
            "owner": ctx.owner,
            "created_at": now,
            "created_by": ctx.actor,
            "updated_at": now,
            "external_ref": ns.external_ref,
            "metadata": metadata,
            "due_at": _due(ns.due),
        }
        issue = {k: v for k, v in issue.items() if v is not None}
        labels = _labels(ns.labels)
        if labels:
            issue["labels"] = labels
        if dependencies:
            issue["dependencies"] = dependencies
        if not ns.dry_run:
            store.issues.append(issue)
            store.save()
    if ns.silent:
        ctx.out.text(issue_id)
    elif ctx.out.json:
        # Before 1.0.5 labels were attached after the insert, so create's JSON lacked them.
        ctx.out.emit(issue_view(issue, with_labels=ctx.out.vtuple >= (1, 0, 5)))
    else:
        ctx.out.text(f"✓ Created issue: {issue_id}\n  Title: {title}\n  Priority: P{priority}\n  Status: open")
    return 0


def _with_counts(store: Store, issue: dict[str, Any]) -> dict[str, Any]:
    view = issue_view(issue)
    view.update(store.counts(issue))
    return view


def cmd_list(ctx: Context) -> int:
    ns = ctx.ns
    _nargs(ns, 0, 0)
    fields = [_key_value(raw, "--metadata-field") for raw in ns.metadata_field]
    statuses = {s.strip() for s in (ns.status or "").split(",") if s.strip()}
    if statuses:
        for status in statuses - {"all"}:
            if status not in STATUSES:
                raise BdError(f'invalid status "{status}"')
    wanted_labels = _labels(ns.label)
    any_labels = _labels(ns.label_any)
    with ctx.locked():
        store = ctx.store()
    rows = []
    for issue in store.issues:
        status = issue.get("status", "open")
        if statuses:
            if "all" not in statuses and status not in statuses:
                continue
        elif not ns.all and status in ("closed", "pinned"):
            continue
        labels = issue.get("labels") or []
        if any(label not in labels for label in wanted_labels):
            continue
        if any_labels and not any(label in labels for label in any_labels):
            continue
        title_filter = ns.title or ns.title_contains
        if title_filter and title_filter.lower() not in issue["title"].lower():
            continue
        if ns.desc_contains and ns.desc_contains.lower() not in (issue.get("description") or "").lower():
            continue
        if ns.type and issue.get("issue_type") != ISSUE_TYPES.get(ns.type.lower(), ns.type):
            continue
        if ns.assignee and issue.get("assignee") != ns.assignee:
            continue
        if ns.id and issue["id"] not in {s.strip() for s in ns.id.split(",")}:
            continue
        if ns.parent and not issue["id"].startswith(ns.parent + "."):
            continue
        if not all(_metadata_matches(issue.get("metadata"), k, v) for k, v in fields):
            continue
        if not all(k in (issue.get("metadata") or {}) for k in ns.has_metadata_key):
            continue
        rows.append(issue)
    sort_keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "priority": lambda i: (i.get("priority", 2), i.get("created_at", "")),
        "created": lambda i: i.get("created_at", ""),
        "updated": lambda i: i.get("updated_at", ""),
        "id": lambda i: i["id"],
        "title": lambda i: i["title"].lower(),
        "status": lambda i: i.get("status", ""),
    }
    rows.sort(key=sort_keys.get(ns.sort, sort_keys["priority"]), reverse=ns.reverse)
    if ns.limit and ns.limit > 0:
        rows = rows[: ns.limit]
    if ctx.out.json:
        ctx.out.emit([_with_counts(store, i) for i in rows])
    else:
        for issue in rows:
            ctx.out.text(
                f"{issue['id']} [P{issue.get('priority', 2)}] [{issue.get('issue_type')}] "
                f"{issue['status']} - {issue['title']}"
            )
    return 0


def cmd_show(ctx: Context) -> int:
    ns = ctx.ns
    refs = _nargs(ns, 1)
    if ctx.out.vtuple < (1, 0, 5):
        for flag in ("include_comments", "include_dependents"):
            if getattr(ns, flag):
                raise BdError(f"unknown flag: --{flag.replace('_', '-')}", plain=True)
    with ctx.locked():
        store = ctx.store()
    found = []
    for ref in refs:
        try:
            found.append(store.get(ref))
        except BdError as exc:
            _write(sys.stderr, f"Error: {exc.message}\n")
    if not found:
        raise BdError("no issues found matching the provided IDs", to_stdout=True)
    details = []
    for issue in found:
        view = issue_view(issue)
        by_id = {i["id"]: i for i in store.issues}
        deps = []
        for dep in issue.get("dependencies") or ():
            target = by_id.get(dep["depends_on_id"])
            if target:
                deps.append({**issue_view(target), "dependency_type": dep["type"]})
        if deps:
            view["dependencies"] = deps
        full_comments = ctx.out.vtuple < (1, 0, 5) or ns.include_comments
        if full_comments and issue.get("comments"):
            view["comments"] = issue["comments"]
        if ns.include_dependents or ctx.out.vtuple < (1, 0, 5):
            dependents = [
                {**issue_view(other), "dependency_type": dep["type"]}
                for other in store.issues
                for dep in other.get("dependencies") or ()
                if dep["depends_on_id"] == issue["id"]
            ]
            if dependents:
                view["dependents"] = dependents
        parent = next(
            (d["depends_on_id"] for d in issue.get("dependencies") or () if d["type"] == "parent-child"), None
        )
        if parent:
            view["parent"] = parent
        view.update(store.counts(issue))
        details.append(view)
    if ctx.out.json:
        ctx.out.emit(details)
    else:
        for view in details:
            ctx.out.text(
                f"{view['id']}: {view['title']}\nStatus: {view.get('status')}\nPriority: P{view['priority']}\n"
                f"Type: {view.get('issue_type')}\n\n{view.get('description', '')}"
            )
    return 0


def _resolve_for_write(store: Store, refs: list[str]) -> list[dict[str, Any]]:
    """Resolve each id; unknown ones are reported on stderr and skipped, as bd update/close do."""
    found = []
    for ref in refs:
        try:
            found.append(store.get(ref))
        except BdError as exc:
            _write(sys.stderr, f"Error resolving {ref}: {exc.message}\n")
    return found


def _set_status(issue: dict[str, Any], status: str, now: str) -> None:
    if status == "closed":
        issue["closed_at"] = now
    elif issue.get("status") == "closed":
        issue.pop("closed_at", None)
        issue.pop("close_reason", None)
    if status == "in_progress" and not issue.get("started_at"):
        issue["started_at"] = now
    issue["status"] = status


def cmd_update(ctx: Context) -> int:
    ns = ctx.ns
    refs = _nargs(ns, 1)
    if ns.status is not None and ns.status not in STATUSES:
        raise BdError(f'invalid status "{ns.status}"', hint=f"valid statuses: {', '.join(STATUSES)}", to_stdout=True)
    priority = parse_priority(ns.priority, to_stdout=True) if ns.priority is not None else None
    set_meta = [_key_value(raw, "--set-metadata", to_stdout=True) for raw in ns.set_metadata]
    changes = (
        ns.status,
        ns.priority,
        ns.assignee,
        ns.title,
        ns.description,
        ns.notes,
        ns.append_notes,
        ns.external_ref,
        ns.set_labels,
    )
    if all(c is None for c in changes) and not (ns.add_label or ns.remove_label or set_meta or ns.claim):
        raise BdError("no updates specified", to_stdout=True)
    now = _now()
    with ctx.locked():
        store = ctx.store()
        updated = _resolve_for_write(store, refs)
        for issue in updated:
            if ns.claim:
                issue["assignee"] = ctx.actor
                _set_status(issue, "in_progress", now)
            if ns.status is not None:
                _set_status(issue, ns.status, now)
            if priority is not None:
                issue["priority"] = priority
            for key, value in (
                ("assignee", ns.assignee),
                ("title", ns.title),
                ("description", ns.description),
                ("notes", ns.notes),
                ("external_ref", ns.external_ref),
            ):
                if value is not None:
                    issue[key] = value
            if ns.append_notes:
                issue["notes"] = (issue.get("notes", "") + "\n" + ns.append_notes).strip("\n")
            labels = list(issue.get("labels") or [])
            if ns.set_labels is not None:
                labels = _labels(ns.set_labels)
            labels += [label for label in _labels(ns.add_label) if label not in labels]
            labels = [label for label in labels if label not in _labels(ns.remove_label)]
            if labels:
                issue["labels"] = labels
            else:
                issue.pop("labels", None)
            if set_meta:
                metadata = dict(issue.get("metadata") or {})
                metadata.update(dict(set_meta))
                issue["metadata"] = metadata
            issue["updated_at"] = now
        if updated:
            store.save()
    if not updated:
        return 1
    if ctx.out.json:
        ctx.out.emit([issue_view(i) for i in updated])
    else:
        for issue in updated:
            ctx.out.text(f"✓ Updated issue: {issue['id']}")
    return 0


def cmd_close(ctx: Context) -> int:
    ns = ctx.ns
    refs = ns.args
    if not refs:
        raise BdError("no issue ID provided", to_stdout=True)
    reason = ns.reason
    if ns.reason_file is not None:
        reason = _read_text_source(ns.reason_file).strip()
    reason = reason or "Closed"
    now = _now()
    with ctx.locked():
        store = ctx.store()
        closed = _resolve_for_write(store, refs)
        for issue in closed:
            _set_status(issue, "closed", now)
            issue["close_reason"] = reason
            issue["updated_at"] = now
        if closed:
            store.save()
    if not closed:
        return 1
    if ctx.out.json:
        ctx.out.emit([issue_view(i) for i in closed])
    else:
        for issue in closed:
            ctx.out.text(f"✓ Closed {issue['id']}: {reason}")
    return 0


def _new_comment(issue: dict[str, Any], author: str, text: str, now: str) -> dict[str, Any]:
    comment = {"id": str(uuid.uuid4()), "issue_id": issue["id"], "author": author, "text": text, "created_at": now}
    issue.setdefault("comments", []).append(comment)
    return comment


def cmd_reopen(ctx: Context) -> int:
    ns = ctx.ns
    refs = _nargs(ns, 1)
    now = _now()
    with ctx.locked():
        store = ctx.store()
        reopened = _resolve_for_write(store, refs)
        for issue in reopened:
            _set_status(issue, "open", now)
            if ns.reason:
                _new_comment(issue, ctx.actor, ns.reason, now)
            issue["updated_at"] = now
        if reopened:
            store.save()
    if not reopened:
        return 1
    if ctx.out.json:
        ctx.out.emit([issue_view(i) for i in reopened])
    else:
        for issue in reopened:
            ctx.out.text(f"✓ Reopened {issue['id']}")
    return 0


def cmd_comments_add(ctx: Context) -> int:
    ns = ctx.ns
    if ns.file is not None or ns.stdin:
        ref = _nargs(ns, 1, 1)[0]
        text = _read_text_source("-" if ns.stdin else ns.file)
    elif ctx.ns.command == "comment":
        args = _nargs(ns, 2)
        ref, text = args[0], " ".join(args[1:])
    else:
        ref, text = _nargs(ns, 2, 2)
    if not text.strip():
        raise BdError("comment text is required")
    now = _now()
    with ctx.locked():
        store = ctx.store()
        issue = store.get(ref)
        comment = _new_comment(issue, ns.author or ctx.actor, text, now)
        issue["updated_at"] = now
        store.save()
    if ctx.out.json:
        ctx.out.emit(comment)
    else:
        ctx.out.text(f"Comment added to {issue['id']}")
    return 0


def cmd_comments(ctx: Context) -> int:
    ref = _nargs(ctx.ns, 1, 1)[0]
    with ctx.locked():
        store = ctx.store()
    issue = store.get(ref)
    comments = list(issue.get("comments") or [])
    if ctx.out.json:
        ctx.out.emit(comments)
    else:
        for comment in comments:
            ctx.out.text(f"[{comment['author']}] {comment['created_at']}\n  {comment['text']}")
    return 0


def cmd_export(ctx: Context) -> int:
    _nargs(ctx.ns, 0, 0)
    with ctx.locked():
        store = ctx.store()
    text = "".join(go_json(store.export_line(i), pretty=False) + "\n" for i in store.issues)
    if ctx.ns.output:
        _atomic_write(Path(ctx.ns.output), text)
        _write(sys.stderr, f"Exported {len(store.issues)} issues to {ctx.ns.output}\n")
    else:
        _write(sys.stdout, text)
    return 0


HANDLERS: dict[str, Callable[[Context], int]] = {
    "version": cmd_version,
    "init": cmd_init,
    "create": cmd_create,
    "list": cmd_list,
    "show": cmd_show,
    "update": cmd_update,
    "close": cmd_close,
    "reopen": cmd_reopen,
    "comments add": cmd_comments_add,
    "comment": cmd_comments_add,
    "comments": cmd_comments,
    "export": cmd_export,
}

NO_WORKSPACE = frozenset({"version", "init"})


def _sleep_env(name: str) -> None:
    raw = os.environ.get(name, "").strip()
    if raw:
        time.sleep(float(raw))


def run(argv: list[str], out: Output) -> int:
    command, rest = split_command(argv)
    if command is None:
        parse("version", rest)  # reports an unknown root flag the way cobra does
        out.text("Usage:\n  bd [command]\n\nAvailable Commands:\n  " + "\n  ".join(COMMANDS))
        return 0
    ns = parse(command, rest)
    ns.command = command
    out.json = bool(getattr(ns, "json", False))
    _sleep_env("FAKE_BD_HANG")
    beads_dir: Path | None = None
    if command not in NO_WORKSPACE:
        beads_dir = find_beads_dir(getattr(ns, "db", None), getattr(ns, "directory", None))
        if beads_dir is None:
            raise BdError(
                "no beads database found",
                hint="run 'bd init' to create a database in the current directory\n"
                "      or set BEADS_DIR to point to your .beads directory",
                plain=True,
            )
        with exclusive(beads_dir):
            hang, error = consume_faults(beads_dir, command)
        if hang:
            time.sleep(hang)
        if error:
            raise BdError(error)
    return HANDLERS[command](Context(ns, out, beads_dir))


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (``triagebot-fake-bd``); returns the process exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    envelope = os.environ.get("BD_JSON_ENVELOPE", "").strip().lower() in ("1", "true", "yes")
    out = Output(
        json_mode="--json" in args,
        version=os.environ.get("FAKE_BD_VERSION", "").strip() or DEFAULT_VERSION,
        envelope=envelope,
    )
    try:
        return run(args, out)
    except BdError as err:
        out.fail(err)
        return err.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
