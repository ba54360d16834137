"""Load ``runbooks/`` and report every problem as ``file:line: field: message``.

Two layouts:

* **several playbooks**: ``workspace.yml`` lists them; each is a directory with ``routing.yml``,
  ``policy.yml``, an optional ``taxonomy.yml`` and optional ``templates/`` (which override the
  shared ``templates/`` beside ``workspace.yml``);
* **one playbook** (the layout before playbooks): the three files at the top, workspace settings
  in ``routing.yml``. It is the ``integration-triage`` playbook.

PyYAML's composed node tree keeps the line of every key and value, so each pydantic error location
(a path of keys and indexes) is mapped back to the line a person has to edit. Checks across files
(a class named in the taxonomy but not declared in routing, a suite claimed by two playbooks) are
located the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from slackbot.config import legacy
from slackbot.config.playbook import Playbook, Playbooks
from slackbot.config.policy import Policy
from slackbot.config.routing import Routing
from slackbot.config.taxonomy import EMPTY_TAXONOMY, Taxonomy
from slackbot.config.workspace import DEFAULT_PLAYBOOK, Workspace

M = TypeVar("M", bound=BaseModel)

WORKSPACE_ONLY = ("ops_channel", "responders", "triage_reaction", "alert_sources")
# The shipped templates: the last place a template is looked for, so a runbooks directory written
# before a template existed (card_summary.j2, flag.j2) still renders it.
SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "runbooks" / "templates"


def _template_dirs(*dirs: Path) -> tuple[Path, ...]:
    found: list[Path] = []
    for folder in (*dirs, SHIPPED_TEMPLATES):
        if folder.resolve() not in [f.resolve() for f in found]:
            found.append(folder)
    return tuple(found)


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class RunbookError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# libyaml when PyYAML has it (it parses the shipped playbooks several times faster).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Source:
    """One YAML file: its name as shown in problems, its data and its node tree (for lines)."""

    name: str
    data: dict[str, Any] | None = None
    node: yaml.Node | None = None
    problems: list[ConfigProblem] = field(default_factory=list)

    def line(self, loc: tuple[int | str, ...]) -> int:
        return _line_of(self.node, loc)

    def problem(self, loc: tuple[int | str, ...], message: str) -> ConfigProblem:
        return ConfigProblem(self.name, self.line(loc), _field_name(loc), message)


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                problems.append(
                    ConfigProblem(file, key.start_mark.line + 1, name, f"duplicate key (first on line {seen[name]})")
                )
            seen[name] = key.start_mark.line + 1
            problems += _duplicate_keys(value, file)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            problems += _duplicate_keys(item, file)
    return problems


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The line of the deepest node on ``loc`` that exists (a missing field points at its parent)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                return line
            key, node = match
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field_name(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def read_yaml(path: Path, shown: str) -> Source:
    source = Source(shown)
    if not path.is_file():
        source.problems.append(ConfigProblem(shown, 1, "(file)", f"missing: expected {path}"))
        return source
    text = path.read_text(encoding="utf-8")
    try:
        # One parse: the node tree keeps the lines (and shows two equal keys, which YAML would
        # silently merge, hiding a mistake in a routing table); the data is built from it.
        loader = _Loader(text)
        try:
            source.node = loader.get_single_node()
            data: Any = loader.construct_document(source.node) if source.node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or str(exc)
        source.problems.append(ConfigProblem(shown, line, "(yaml)", f"not valid YAML: {reason}"))
        return source
    source.problems += _duplicate_keys(source.node, shown)
    if not isinstance(data, dict):
        source.problems.append(ConfigProblem(shown, 1, "(document)", "expected a mapping at the top level"))
        return source
    source.data = data
    return source


def validate(source: Source, model: type[M]) -> M | None:
    if source.data is None:
        return None
    try:
        parsed = model.model_validate(source.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            message = err["msg"].removeprefix("Value error, ")
            source.problems.append(source.problem(loc, message))
        return None
    return parsed if not source.problems else None


# -- one playbook ---------------------------------------------------------------------------------


@dataclass
class _PlaybookFiles:
    name: str
    directory: Path
    taxonomy: Source | None
    routing: Source
    policy: Source

    @property
    def sources(self) -> list[Source]:
        return [s for s in (self.taxonomy, self.routing, self.policy) if s is not None]


def _read_playbook(name: str, directory: Path, shown_prefix: str) -> _PlaybookFiles:
    taxonomy_path = directory / "taxonomy.yml"
    taxonomy = read_yaml(taxonomy_path, f"{shown_prefix}taxonomy.yml") if taxonomy_path.exists() else None
    routing = read_yaml(directory / "routing.yml", f"{shown_prefix}routing.yml")
    policy = read_yaml(directory / "policy.yml", f"{shown_prefix}policy.yml")
    if routing.data is not None and policy.data is not None and legacy.is_legacy(routing.data, policy.data):
        routing.data, policy.data = legacy.upgrade(routing.data, policy.data)
    return _PlaybookFiles(name, directory, taxonomy, routing, policy)


def _cross_check(files: _PlaybookFiles, taxonomy: Taxonomy, routing: Routing, policy: Policy) -> list[ConfigProblem]:
    """What one file says about another: classes and severities must be declared where used."""
    problems: list[ConfigProblem] = []
    classes, severities = routing.classes, policy.severities
    choices = ", ".join(classes)
    for kind in ("scenarios", "invariants"):
        for index, entry in enumerate(getattr(taxonomy, kind)):
            if entry.likely_class and entry.likely_class not in classes and files.taxonomy is not None:
                problems.append(
                    files.taxonomy.problem(
                        (kind, index, "likely_class"),
                        f"class {entry.likely_class} is not declared in routing.yml classes ({choices})",
                    )
                )
            if entry.default_severity and entry.default_severity not in severities and files.taxonomy is not None:
                problems.append(
                    files.taxonomy.problem(
                        (kind, index, "default_severity"),
                        f"severity {entry.default_severity} is not declared in policy.yml severities "
                        f"({', '.join(severities)})",
                    )
                )
    for key, route in classes.items():
        if route.default_severity and route.default_severity not in severities:
            problems.append(
                files.routing.problem(
                    ("classes", key, "default_severity"),
                    f"severity {route.default_severity} is not declared in policy.yml severities "
                    f"({', '.join(severities)})",
                )
            )
    for index, alert in enumerate(policy.alerts):
        if alert.failure_class and alert.failure_class not in classes:
            problems.append(
                files.policy.problem(
                    ("alerts", index, "failure_class"),
                    f"class {alert.failure_class} is not declared in routing.yml classes ({choices})",
                )
            )
    lease = policy.flake.lease if policy.flake else None
    if lease is not None and not any("flake" in r.signals for r in classes.values()):
        problems.append(
            files.policy.problem(
                ("flake", "lease"),
                "a lease needs a flake class: give one class in routing.yml signals: [flake] "
                "(classifying into it grants the lease)",
            )
        )
    holder = next((k for k, r in classes.items() if r.takes_missing_ids), None)
    if policy.id_contract != "none" and holder is None:
        problems.append(
            files.routing.problem(
                ("classes",),
                f"id_contract is '{policy.id_contract}' but no class sets takes_missing_ids: true "
                "(where does a failure without its ids go?)",
            )
        )
    return problems


def _build(files: _PlaybookFiles, workspace: Workspace | None, template_dirs: tuple[Path, ...]) -> Playbook | None:
    taxonomy = validate(files.taxonomy, Taxonomy) if files.taxonomy is not None else EMPTY_TAXONOMY
    routing = validate(files.routing, Routing)
    policy = validate(files.policy, Policy)
    if taxonomy is None or routing is None or policy is None:
        return None
    problems = _cross_check(files, taxonomy, routing, policy)
    if workspace is None:
        # One playbook: its routing.yml is the workspace too.
        data = files.routing.data or {}
        missing = [k for k in ("default_channel", "ops_channel") if not data.get(k)]
        for name in missing:
            problems.append(files.routing.problem((), f"{name} is required (the channel {name.replace('_', ' ')})"))
        if not missing:
            workspace = Workspace(
                version=routing.version,
                updated=routing.updated,
                playbooks=[files.name],
                default_channel=data["default_channel"],
                ops_channel=data["ops_channel"],
                responders=routing.responders or [],
                triage_reaction=routing.triage_reaction or "rotating_light",
                alert_sources=routing.alert_sources or [],
            )
    else:
        for key in WORKSPACE_ONLY:
            if getattr(routing, key) is not None:
                problems.append(
                    files.routing.problem((key,), f"{key} belongs in workspace.yml (shared by every playbook)")
                )
    files.routing.problems += problems
    if problems or workspace is None:
        return None
    return Playbook(
        name=files.name,
        directory=files.directory,
        taxonomy=taxonomy,
        routing=routing,
        policy=policy,
        workspace=workspace,
        template_dirs=template_dirs,
    )


# -- the directory --------------------------------------------------------------------------------


def load_playbooks(directory: Path) -> Playbooks:
    """Load and validate every playbook; raise ``RunbookError`` listing every problem at once."""
    directory = Path(directory)
    shared_templates = directory / "templates"
    if not (directory / "workspace.yml").is_file():
        if not (directory / "routing.yml").is_file():
            raise RunbookError(
                [
                    ConfigProblem(
                        "workspace.yml", 1, "(file)", f"missing: {directory} has no workspace.yml or routing.yml"
                    )
                ]
            )
        files = _read_playbook(DEFAULT_PLAYBOOK, directory, "")
        playbook = _build(files, None, _template_dirs(shared_templates))
        problems = [p for s in files.sources for p in s.problems]
        if problems or playbook is None:
            raise RunbookError(problems)
        return Playbooks(playbook.workspace, directory, {playbook.name: playbook})

    ws_source = read_yaml(directory / "workspace.yml", "workspace.yml")
    workspace = validate(ws_source, Workspace)
    problems = list(ws_source.problems)
    if workspace is None:
        raise RunbookError(problems)
    read: list[_PlaybookFiles] = []
    for index, name in enumerate(workspace.playbooks):
        folder = directory / name
        if not (folder / "routing.yml").is_file():
            problems.append(
                ws_source.problem(("playbooks", index), f"playbook {name}: no {name}/routing.yml in {directory}")
            )
            continue
        read.append(_read_playbook(name, folder, f"{name}/"))
    built: dict[str, Playbook] = {}
    for files in read:
        playbook = _build(files, workspace, _template_dirs(files.directory / "templates", shared_templates))
        problems += [p for s in files.sources for p in s.problems]
        if playbook is not None:
            built[playbook.name] = playbook
    problems += _across_playbooks(read, built)
    if problems:
        raise RunbookError(problems)
    return Playbooks(workspace, directory, built)


def _across_playbooks(read: list[_PlaybookFiles], built: dict[str, Playbook]) -> list[ConfigProblem]:
    """A suite or an alert routed to two playbooks is ambiguous: say where both claims are."""
    problems: list[ConfigProblem] = []
    suites: dict[str, str] = {}
    alerts: dict[str, str] = {}
    for files in read:
        playbook = built.get(files.name)
        if playbook is None:
            continue
        for suite in playbook.routing.suites:
            if suite in suites:
                problems.append(
                    files.routing.problem(
                        ("suites", suite), f"suite {suite} is already routed to the {suites[suite]} playbook"
                    )
                )
            suites.setdefault(suite, playbook.name)
        for index, alert in enumerate(playbook.policy.alerts):
            if alert.alertname in alerts:
                problems.append(
                    files.policy.problem(
                        ("alerts", index, "alertname"),
                        f"alert {alert.alertname} already has a runbook in the {alerts[alert.alertname]} playbook",
                    )
                )
            alerts.setdefault(alert.alertname, playbook.name)
    return problems


def check_playbooks(directory: Path) -> list[ConfigProblem]:
    try:
        load_playbooks(directory)
    except RunbookError as exc:
        return exc.problems
    return []
