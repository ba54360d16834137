"""Load ``runbooks/`` and report every problem as ``file:line: field: message``.

PyYAML's composed node tree keeps the line of every key and value, so each pydantic error location
(a path of keys and indexes) is mapped back to the line a person has to edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from slackbot.config.models import Policy, Routing, Runbook, Taxonomy

FILES: dict[str, type[BaseModel]] = {"taxonomy.yml": Taxonomy, "routing.yml": Routing, "policy.yml": Policy}


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML silently keeps the last of two equal keys; in a routing table that hides a mistake."""


def _compose(text: str, file: str) -> yaml.Node | None:
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


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


def load_file(path: Path, model: type[BaseModel]) -> tuple[BaseModel | None, list[ConfigProblem]]:
    name = path.name
    if not path.is_file():
        return None, [ConfigProblem(name, 1, "(file)", f"missing: expected {path}")]
    text = path.read_text(encoding="utf-8")
    try:
        node = _compose(text, name)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigProblem(name, line, "(yaml)", f"not valid YAML: {reason}")]
    problems = _duplicate_keys(node, name)
    if not isinstance(data, dict):
        return None, [*problems, ConfigProblem(name, 1, "(document)", "expected a mapping at the top level")]
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            message = err["msg"].removeprefix("Value error, ")
            problems.append(ConfigProblem(name, _line_of(node, loc), _field_name(loc), message))
        return None, problems
    return (parsed if not problems else None), problems


def load_runbook(directory: Path) -> Runbook:
    """Load and validate all three files; raise ``RunbookError`` listing every problem at once."""
    parsed: dict[str, BaseModel] = {}
    problems: list[ConfigProblem] = []
    for filename, model in FILES.items():
        value, found = load_file(directory / filename, model)
        problems += found
        if value is not None:
            parsed[filename.removesuffix(".yml")] = value
    if problems:
        raise RunbookError(problems)
    return Runbook.model_validate(parsed)


def check_runbook(directory: Path) -> list[ConfigProblem]:
    try:
        load_runbook(directory)
    except RunbookError as exc:
        return exc.problems
    return []
