"""Reading a ``runbooks/`` directory written before playbooks existed (one team, seed 001's shape).

Such a directory has ``taxonomy.yml``, ``routing.yml`` and ``policy.yml`` at its top and no
``workspace.yml``. Its five class keys carried behaviour the code special-cased; here that
behaviour becomes the flags a playbook now declares, and renamed keys get their new names, so an
existing deployment behaves exactly as before without editing a file.
"""

from __future__ import annotations

from typing import Any

# The behaviour seed 001's class keys had before it was data.
_LEGACY_FLAGS = {
    "harness_diagnostics": {"takes_missing_ids": True, "run_escalation": True},
    "flake_concurrency": {"bead_before_resolve": True},
}
# The other names /triage accepted for them.
_LEGACY_ALIASES = {
    "infra_ci": ["infra", "ci"],
    "harness_diagnostics": ["harness", "diagnostics"],
    "algorithm_regression": ["algorithm", "regression"],
    "data_schema_drift": ["data", "schema", "drift"],
    "flake_concurrency": ["flake", "concurrency"],
}
_FLAGS = ("takes_missing_ids", "files_bead", "bead_before_resolve", "reopens_within", "run_escalation")


def is_legacy(routing: dict[str, Any], policy: dict[str, Any]) -> bool:
    commands = policy.get("commands") or {}
    flake = policy.get("flake") or {}
    classes = routing.get("classes") or {}
    return (
        "single_scenario" in commands
        or "smoke" in commands
        or "recurrence_window" in flake
        or (
            set(_LEGACY_FLAGS) <= set(classes)
            and not any(isinstance(c, dict) and any(f in c for f in _FLAGS) for c in classes.values())
        )
    )


def upgrade(routing: dict[str, Any], policy: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """New-shape copies of a legacy routing.yml and policy.yml (the inputs are not changed)."""
    routing = dict(routing)
    policy = dict(policy)
    flake = dict(policy.get("flake") or {})
    classes = {k: dict(v) if isinstance(v, dict) else v for k, v in (routing.get("classes") or {}).items()}
    for key, flags in _LEGACY_FLAGS.items():
        if isinstance(classes.get(key), dict):
            classes[key] = {**classes[key], **flags}
    for key, aliases in _LEGACY_ALIASES.items():
        if isinstance(classes.get(key), dict) and "aliases" not in classes[key]:
            classes[key] = {**classes[key], "aliases": aliases}
    if isinstance(classes.get("flake_concurrency"), dict):
        flake_class = classes["flake_concurrency"]
        flake_class["files_bead"] = bool(flake.pop("file_bead", True))
        if "recurrence_window" in flake:
            flake_class["reopens_within"] = flake.pop("recurrence_window")
    flake.pop("file_bead", None)
    flake.pop("recurrence_window", None)
    routing["classes"] = classes
    if flake:
        policy["flake"] = flake
    commands = dict(policy.get("commands") or {})
    if "single_scenario" in commands:
        commands["repro"] = commands.pop("single_scenario")
    suites = dict(commands.get("suites") or {})
    for name in ("smoke", "full"):
        if name in commands:
            suites[name] = commands.pop(name)
    if suites:
        commands["suites"] = suites
    if commands:
        policy["commands"] = commands
    # Alerts used to default to SEV-2 and Infra/CI.
    policy["alerts"] = [
        {"severity": "SEV-2", "failure_class": "infra_ci", **alert} if isinstance(alert, dict) else alert
        for alert in policy.get("alerts") or []
    ]
    return routing, policy
