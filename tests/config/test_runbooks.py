"""The shipped integration-triage playbook (seeds 000/001: taxonomy, routing, policy) and how
`triagebot check` reports broken copies.

Every problem is ``file:line: field: message``; the broken-copy tests assert the exact file, line and
field a person has to edit. Paths are located from this file, never from the working directory.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from slackbot.config import RunbookError, check_playbooks, load_playbooks
from slackbot.config.durations import format_duration, parse_duration
from slackbot.config.loader import ConfigProblem
from slackbot.config.routing import Routing, glob_match
from slackbot.sources.report import Report

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"
EXAMPLES = RUNBOOKS / "examples"
PLAYBOOK = "integration-triage"
ROUTING, POLICY, TAXONOMY = (f"{PLAYBOOK}/{name}.yml" for name in ("routing", "policy", "taxonomy"))

SCENARIO_PREFIXES = {"SCH", "BID", "NOS", "HLT", "API", "UI", "ADV"}
INVARIANT_PREFIXES = {"TENANT", "IDEMP", "NOTIF", "ASSIGN", "STATE"}


@pytest.fixture(scope="module")
def shipped():
    return load_playbooks(RUNBOOKS).named(PLAYBOOK)


# ---------------------------------------------------------------------------------------------
# The shipped playbook


def test_shipped_runbooks_have_no_problems() -> None:
    assert check_playbooks(RUNBOOKS) == []


def test_taxonomy_has_every_seed_prefix_with_evidence(shipped) -> None:
    taxonomy = shipped.taxonomy
    assert {s.prefix for s in taxonomy.scenarios} == SCENARIO_PREFIXES
    assert {i.prefix for i in taxonomy.invariants} == INVARIANT_PREFIXES
    assert taxonomy.version == 1
    assert str(taxonomy.updated) == "2026-11-22"
    for entry in [*taxonomy.scenarios, *taxonomy.invariants]:
        assert entry.meaning and entry.failure_surface and entry.evidence, entry.prefix
    # Seed 001 wording.
    assert taxonomy.scenario("BID").meaning == "Bidding lifecycle (competitive/instant/emergency)"
    assert taxonomy.invariant("TENANT").evidence == [
        "counts by orgId",
        "sample foreign ids",
        "offending rows",
    ]
    assert taxonomy.scenario("ADV").likely_class == "flake_concurrency"
    assert taxonomy.scenario("UI").likely_class is None
    assert any("DST" in e for e in taxonomy.scenario("SCH").evidence)


def test_routing_covers_the_five_classes_with_owners_and_scopes(shipped) -> None:
    routing = shipped.routing
    labels = {c: r.label for c, r in routing.classes.items()}
    assert labels == {
        "infra_ci": "Infra/CI",
        "harness_diagnostics": "Harness/diagnostics",
        "algorithm_regression": "Algorithm regression",
        "data_schema_drift": "Data/schema drift",
        "flake_concurrency": "Flake/concurrency",
    }
    scopes = {c: r.scope for c, r in routing.classes.items()}
    assert scopes["infra_ci"] == [".github/workflows/**"]
    assert scopes["harness_diagnostics"] == ["tests/integration/harness/**", "vitest.integration.config.ts"]
    assert scopes["algorithm_regression"] == ["src/lib/server/services/**"]
    assert scopes["data_schema_drift"] == ["drizzle/**", "scripts/seed.ts"]
    assert scopes["flake_concurrency"]
    for failure_class in ("infra_ci", "algorithm_regression"):
        key = routing.classes[failure_class].owner.pagerduty_routing_key
        assert key is not None and re.fullmatch(r"[0-9a-f]{32}", key)
    for route in routing.classes.values():
        assert route.owner.usergroup and route.owner.oncall_user and route.owner.handle
        assert route.examples and len(route.first_response) >= 3
    trackers = {c: (r.tracker, r.github_repository) for c, r in routing.classes.items()}
    assert trackers.pop("data_schema_drift") == ("github", "acme/dispatch")
    assert {t for t, _ in trackers.values()} == {"beads"}
    flake = routing.classes["flake_concurrency"]
    assert "do not rerun until green" in " ".join(flake.first_response).lower()
    # Seed 001's rules for flakes and missing ids, as behaviour flags on the classes.
    assert (flake.files_bead, flake.bead_before_resolve, flake.reopens_within) == (True, True, timedelta(days=7))
    assert shipped.missing_ids_class == "harness_diagnostics" == shipped.run_escalation_class
    assert set(routing.suites) == {"smoke", "full", "nightly"}
    workspace = shipped.workspace
    assert workspace.triage_reaction == "rotating_light"
    assert len(workspace.responders) == 2
    assert workspace.alert_sources[0].bot_id == "B0GHACTIONS"
    assert routing.release_maintainer.user


def test_every_slack_id_is_in_the_documented_scheme() -> None:
    """The demo seeds the Slack emulator from routing.yml: each id used is listed in its header."""
    text = (RUNBOOKS / ROUTING).read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\b[USC]0[A-Z0-9]+\b", body))
    assert used, "routing.yml references no Slack ids"
    assert {i[0] for i in used} == {"U", "S", "C"}
    undocumented = sorted(i for i in used if not re.search(rf"\b{i}\b", header))
    assert undocumented == []


def test_policy_has_the_seed_rules_and_exact_commands(shipped) -> None:
    policy = shipped.policy
    assert policy.classify_within == timedelta(minutes=20)
    assert policy.commands.artifact_download == "gh run download {runId} --dir logs/nightly/{date}/ci-artifacts"
    assert policy.commands.repro == (
        'pnpm exec vitest -c vitest.integration.config.ts tests/integration --run -t "{scenarioId}"'
    )
    assert "{runId}" in policy.commands.artifact_list
    assert policy.commands.suites["smoke"] == ["pnpm install", "pnpm db:push", "pnpm test:integration:smoke"]
    assert policy.commands.suites["full"][-1] == "pnpm test:integration:full"
    env = {v.name: v for v in policy.environment}
    assert set(env) == {"INTEGRATION_TEST", "DATABASE_URL", "CRON_SECRET", "BETTER_AUTH_SECRET"}
    assert env["INTEGRATION_TEST"].value == "1" and not env["INTEGRATION_TEST"].secret
    assert env["CRON_SECRET"].secret and env["BETTER_AUTH_SECRET"].secret
    assert list(policy.severities) == ["SEV-1", "SEV-2", "SEV-3"]
    sev1 = policy.severities["SEV-1"]
    assert "release_maintainer" in sev1.pages and sev1.pagerduty_severity == "critical"
    assert (sev1.bead_priority, sev1.file_bead) == (0, True)
    assert policy.severities["SEV-2"].bead_priority == 1
    assert policy.severities["SEV-3"].pagerduty_severity == "warning"
    assert policy.default_severity == "SEV-3"
    assert policy.escalation.repeat_every == timedelta(minutes=10) and policy.escalation.max_repeats == 3
    assert policy.flake.rerun_until_green is False
    assert policy.status_update_every == timedelta(hours=1)
    assert [m.key for m in policy.milestones] == [
        "triage_complete",
        "mitigation_active",
        "fix_merged",
        "validation_complete",
        "resolved",
    ]
    assert {s.phase for s in policy.response_steps} == {"detect", "diagnose", "recover", "verify", "document"}
    assert policy.alerts == []  # operational alerts are the operations playbook's (seed 004)
    assert policy.id_contract == "both" and policy.document == "integration-triage-runbook.md"


# ---------------------------------------------------------------------------------------------
# Example reports


def test_nightly_example_covers_every_prefix_and_the_edge_cases(shipped) -> None:
    report = Report.model_validate_json((EXAMPLES / "nightly-report.json").read_text(encoding="utf-8"))
    assert (report.run.repository, report.run.run_id, report.run.suite) == (
        "acme/dispatch",
        "9187",
        "nightly",
    )
    assert report.run.sha is not None and re.fullmatch(r"[0-9a-f]{40}", report.run.sha)
    failures = [r for r in report.results if r.is_failure]
    scenario_prefixes = {r.scenario_id.split("-")[0] for r in failures if r.scenario_id}
    invariant_prefixes = {r.invariant_id.split("-")[0] for r in failures if r.invariant_id}
    assert scenario_prefixes >= SCENARIO_PREFIXES
    assert invariant_prefixes >= INVARIANT_PREFIXES
    assert "PAY" in scenario_prefixes and shipped.taxonomy.scenario("PAY") is None  # documentation gap
    violations = [r for r in failures if not (r.scenario_id and r.invariant_id)]
    assert len(violations) == 1 and violations[0].test_file and violations[0].test_name
    assert sum(r.status == "passed" for r in report.results) >= 2
    owners = {shipped.routing.owner_for_path(r.test_file) for r in failures}
    assert {o[0] for o in owners if o} >= {"flake_concurrency", "harness_diagnostics"}


def test_smoke_example_is_one_prefix() -> None:
    report = Report.model_validate_json((EXAMPLES / "smoke-report.json").read_text(encoding="utf-8"))
    failures = [r for r in report.results if r.is_failure]
    assert report.run.suite == "smoke"
    assert 1 <= len(failures) <= 2
    assert len({r.scenario_id.split("-")[0] for r in failures if r.scenario_id}) == 1


# ---------------------------------------------------------------------------------------------
# Broken copies: every problem names the file, the line and the field


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    target = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS, target, ignore=shutil.ignore_patterns("examples", "templates"))
    return target / PLAYBOOK  # the files a test edits; problems name them from the runbooks directory


def edit(directory: Path, filename: str, old: str, new: str) -> int:
    """Replace the first ``old`` with ``new``; return the 1-based line where the edit starts."""
    path = directory / filename
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {filename}"
    index = text.index(old)
    path.write_text(text[:index] + new + text[index + len(old) :], encoding="utf-8")
    return text.count("\n", 0, index) + 1


def line_of(directory: Path, filename: str, needle: str) -> int:
    text = (directory / filename).read_text(encoding="utf-8")
    assert needle in text
    return text.count("\n", 0, text.index(needle)) + 1


def problems(directory: Path) -> list[ConfigProblem]:
    """Problems of the whole runbooks directory, with the playbook's prefix taken off the file."""
    root = directory.parent
    with pytest.raises(RunbookError) as caught:
        load_playbooks(root)
    assert caught.value.problems == check_playbooks(root)
    found = caught.value.problems
    assert all(p.file.startswith(f"{PLAYBOOK}/") for p in found), [str(p) for p in found]
    return [ConfigProblem(p.file.removeprefix(f"{PLAYBOOK}/"), p.line, p.field, p.message) for p in found]


def only(found: list[ConfigProblem]) -> ConfigProblem:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def test_invalid_duration_names_the_line_and_how_to_write_it(broken: Path) -> None:
    line = edit(broken, "policy.yml", "classify_within: 20m", "classify_within: 20 minutes")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("policy.yml", line, "classify_within")
    assert "'20 minutes' is not a duration" in problem.message and "'20m'" in problem.message
    assert str(problem).startswith(f"policy.yml:{line}: classify_within: ")


def test_nested_duration_error_has_a_dotted_field(broken: Path) -> None:
    line = edit(broken, "policy.yml", "repeat_every: 10m", "repeat_every: 10")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("policy.yml", line, "escalation.repeat_every")
    assert "need a unit" in problem.message


def test_a_class_named_in_the_taxonomy_must_be_declared_in_routing(broken: Path) -> None:
    text = (broken / "routing.yml").read_text(encoding="utf-8")
    start, end = text.index("  flake_concurrency:"), text.index("# Where cards for each suite")
    (broken / "routing.yml").write_text(text[:start] + text[end:], encoding="utf-8")
    problem, lease = problems(broken)
    assert (lease.file, lease.field) == ("policy.yml", "flake.lease")  # the flake's lease lost its class too
    assert (problem.file, problem.field) == ("taxonomy.yml", "scenarios[6].likely_class")
    assert problem.line == line_of(broken, "taxonomy.yml", "likely_class: flake_concurrency")
    assert "class flake_concurrency is not declared in routing.yml classes" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("usergroup: S0CIMAINT", "usergroup: ci-maintainers", "classes.infra_ci.owner.usergroup"),
        ("oncall_user: U0BOB", "oncall_user: bob", "classes.harness_diagnostics.owner.oncall_user"),
        ("default_channel: C0TRIAGE", 'default_channel: "#integration-triage"', "default_channel"),
        ("  user: U0FRANK", "  user: frank", "release_maintainer.user"),
    ],
)
def test_bad_slack_id(broken: Path, old: str, new: str, field: str) -> None:
    line = edit(broken, "routing.yml", old, new)
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("routing.yml", line, field)
    assert "should match pattern" in problem.message


def test_duplicate_key(broken: Path) -> None:
    first = line_of(broken, "routing.yml", "    label: Infra/CI")
    edit(broken, "routing.yml", "    label: Infra/CI\n", "    label: Infra/CI\n    label: Infra CI\n")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("routing.yml", first + 1, "label")
    assert problem.message == f"duplicate key (first on line {first})"


def test_yaml_syntax_error(broken: Path) -> None:
    line = edit(broken, "taxonomy.yml", "    failure_surface: streak", "     failure_surface: streak")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("taxonomy.yml", line, "(yaml)")
    assert problem.message.startswith("not valid YAML")


def test_missing_file(broken: Path) -> None:
    (broken / "policy.yml").unlink()
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("policy.yml", 1, "(file)")
    assert problem.message.startswith("missing")


def test_scenario_prefix_listed_twice(broken: Path) -> None:
    line = edit(broken, "taxonomy.yml", "  - prefix: NOS", "  - prefix: BID")
    problem = only(problems(broken))
    assert (problem.file, problem.line, problem.field) == ("taxonomy.yml", line, "scenarios[2].prefix")
    assert "BID is listed twice" in problem.message


def test_unknown_field_typo(broken: Path) -> None:
    line = edit(broken, "policy.yml", "classify_within: 20m", "clasify_within: 20m")
    found = {(p.file, p.field): p for p in problems(broken)}
    typo = found[("policy.yml", "clasify_within")]
    assert typo.line == line and typo.message == "Extra inputs are not permitted"


def test_problems_in_several_files_are_reported_together(broken: Path) -> None:
    scenario = edit(broken, "taxonomy.yml", "  - prefix: NOS", "  - prefix: BID")
    line = edit(broken, "policy.yml", "status_update_every: 1h", "status_update_every: 0s")
    found = [(p.file, p.line, p.field) for p in problems(broken)]
    assert found == [("taxonomy.yml", scenario, "scenarios[2].prefix"), ("policy.yml", line, "status_update_every")]


# ---------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("20m", timedelta(minutes=20)),
        ("90s", timedelta(seconds=90)),
        ("3s", timedelta(seconds=3)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_duration_round_trip(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value
    assert format_duration(value) == text
    assert parse_duration(format_duration(value)) == value


def test_format_duration_picks_the_largest_exact_unit() -> None:
    assert format_duration(timedelta(minutes=60)) == "1h"
    assert format_duration(timedelta(minutes=90)) == "90m"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20", "not a duration"),
        (20, "need a unit"),
        ("-5m", "not a duration"),
        ("0s", "greater than zero"),
        ("abc", "not a duration"),
        ("1h30m", "not a duration"),
        (None, "expected a duration"),
    ],
)
def test_duration_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


# ---------------------------------------------------------------------------------------------
# Globs and owner_for_path (CODEOWNERS semantics)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        (".github/workflows/**", ".github/workflows/integration.yml", True),
        (".github/workflows/**", ".github/workflows/nested/x.yml", True),
        (".github/workflows/**", ".github/actions/setup/action.yml", False),
        ("vitest.integration.config.ts", "vitest.integration.config.ts", True),
        ("vitest.integration.config.ts", "packages/web/vitest.integration.config.ts", True),
        ("scripts/seed.ts", "scripts/seed.ts", True),
        ("scripts/seed.ts", "./scripts/seed.ts", True),
        ("scripts/seed.ts", "tools/scripts/seed.ts", False),
        ("/scripts/seed.ts", "scripts/seed.ts", True),
        ("src/*.ts", "src/app.ts", True),
        ("src/*.ts", "src/lib/app.ts", False),
        ("src/**/services/*.ts", "src/services/bid.ts", True),
        ("src/**/services/*.ts", "src/lib/server/services/bid.ts", True),
        ("src/**/services/*.ts", "src/lib/server/services/deep/bid.ts", False),
        ("drizzle/", "drizzle/0003_add_column.sql", True),
        ("drizzle/**", "drizzle/meta/_journal.json", True),
        ("drizzle/**", "src/drizzle/schema.ts", False),
        ("tests/?.ts", "tests/a.ts", True),
        ("tests/?.ts", "tests/ab.ts", False),
        ("*.md", "docs/runbook.md", True),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".github/workflows/integration-nightly.yml", "infra_ci"),
        ("tests/integration/harness/reset-db.ts", "harness_diagnostics"),
        ("vitest.integration.config.ts", "harness_diagnostics"),
        ("src/lib/server/services/bidding/winner.ts", "algorithm_regression"),
        ("drizzle/0007_bid_windows.sql", "data_schema_drift"),
        ("scripts/seed.ts", "data_schema_drift"),
        ("tests/integration/adversarial/concurrent-accept.test.ts", "flake_concurrency"),
        ("tests/integration/bidding.test.ts", None),
        ("", None),
        (None, None),
    ],
)
def test_owner_for_path_in_the_shipped_routing(shipped, path: str | None, expected: str | None) -> None:
    found = shipped.routing.owner_for_path(path)
    assert (found[0] if found else None) == expected


def _routing_with_scopes(scopes: dict[str, list[str]]) -> Routing:
    """The shipped routing with ``scopes`` replacing the scope lists, classes in the given order."""
    data = yaml.safe_load((RUNBOOKS / ROUTING).read_text(encoding="utf-8"))
    classes = data["classes"]
    ordered = {name: {**classes[name], "scope": scope} for name, scope in scopes.items()}
    ordered.update({name: {**route, "scope": []} for name, route in classes.items() if name not in ordered})
    data["classes"] = ordered
    return Routing.model_validate(data)


def test_owner_for_path_last_matching_pattern_wins() -> None:
    broad_first = _routing_with_scopes(
        {
            "harness_diagnostics": ["tests/integration/**"],
            "flake_concurrency": ["tests/integration/adversarial/**"],
        }
    )
    assert broad_first.owner_for_path("tests/integration/adversarial/race.test.ts") == (
        "flake_concurrency",
        "tests/integration/adversarial/**",
    )
    assert broad_first.owner_for_path("tests/integration/bidding.test.ts") == (
        "harness_diagnostics",
        "tests/integration/**",
    )
    broad_last = _routing_with_scopes(
        {
            "flake_concurrency": ["tests/integration/adversarial/**"],
            "harness_diagnostics": ["tests/integration/**"],
        }
    )
    assert broad_last.owner_for_path("tests/integration/adversarial/race.test.ts") == (
        "harness_diagnostics",
        "tests/integration/**",
    )


def test_owner_for_path_within_one_class_reports_the_last_pattern() -> None:
    routing = _routing_with_scopes({"data_schema_drift": ["**/*.sql", "drizzle/**"]})
    assert routing.owner_for_path("drizzle/0001_init.sql") == ("data_schema_drift", "drizzle/**")
    assert routing.owner_for_path("db/dump.sql") == ("data_schema_drift", "**/*.sql")
