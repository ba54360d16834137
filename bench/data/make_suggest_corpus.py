"""Writes bench/data/suggest_corpus.jsonl: labelled failures for bench/suggest.py.

Each failure is shaped like what a real CI step prints (vitest, jest, pytest, Go, .NET, psql,
drizzle, alembic, EF Core, Docker, pnpm) and carries its true class with the reasoning a
responder following the playbook would give. Some carry the test's history on the branch
(oldest first: sha, attempt, outcome) or the run's shape (how many tests failed, how many with
this very error, the scenario prefixes the run spans). A few are ambiguous on purpose, as real
failures are: the benchmark must show how often the suggestion is wrong, not only that it is right.

Regenerate (deterministic): ``.venv/bin/python bench/data/make_suggest_corpus.py``.
"""

from __future__ import annotations

# ruff: noqa: E501  (the failures are CI output, quoted whole)
import json
import random
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("suggest_corpus.jsonl")
R = random.Random(16)
IT = "integration-triage"
TABLES = ["bid_windows", "assignments", "notifications", "shifts", "organizations", "drivers", "routes", "invoices"]
COLUMNS = ["tenant_id", "org_id", "driver_id", "window_closes_at", "tier", "status_reason", "version", "deleted_at"]
SCEN = ["SCH", "BID", "NOS", "HLT", "API", "UI", "ADV"]
INV = ["TENANT", "IDEMP", "NOTIF", "ASSIGN", "STATE"]
FILES = {
    "SCH": "tests/integration/scheduling.test.ts",
    "BID": "tests/integration/bidding.test.ts",
    "NOS": "tests/integration/notifications.test.ts",
    "HLT": "tests/integration/health.test.ts",
    "API": "tests/integration/api.test.ts",
    "UI": "tests/integration/ui.test.ts",
    "ADV": "tests/integration/adversarial/concurrency.test.ts",
}
corpus: list[dict[str, Any]] = []


def sha() -> str:
    return f"{R.getrandbits(160):040x}"


def ids() -> tuple[str, str, str]:
    prefix = R.choice(SCEN[:6])
    return f"{prefix}-{R.randint(1, 40):03d}", f"{R.choice(INV)}-{R.randint(1, 20):03d}", FILES[prefix]


def add(
    cls: str, why: str, message: str, *, detail: str = "", playbook: str = IT, framework: str, **extra: Any
) -> None:
    scenario, invariant, test_file = ids() if playbook == IT else (None, None, None)
    item: dict[str, Any] = {
        "id": f"c{len(corpus) + 1:03d}",
        "playbook": playbook,
        "framework": framework,
        "scenarioId": scenario,
        "invariantId": invariant,
        "testFile": test_file,
        "message": message,
        "detail": detail,
        "class": cls,
        "why": why,
    }
    item.update(extra)
    corpus.append(item)


def regression_history(failing: int) -> list[list[Any]]:
    green, bad = sha(), sha()
    runs = [[sha(), 1, "passed"], [green, 1, "passed"]]
    runs += [[bad if n == 0 else sha(), 1, "failed"] for n in range(failing)]
    return runs


def flaky_history(kind: str) -> list[list[Any]]:
    s = sha()
    if kind == "rerun":
        return [[sha(), 1, "passed"], [s, 1, "failed"], [s, 2, "passed"]]
    if kind == "same-sha":
        other = sha()
        return [[other, 1, "passed"], [s, 1, "passed"], [sha(), 1, "passed"], [s, 1, "failed"]]
    return [[sha(), 1, "passed"], [s, 1, "failed+passed"]]  # retried within the run


# -- Infra/CI -------------------------------------------------------------------------------------
for port in (5432, 5433, 6543):
    add(
        "infra_ci",
        "Postgres service not reachable: the job's service container never came up; every DB test fails alike",
        f"Error: connect ECONNREFUSED 127.0.0.1:{port}",
        detail=f" ❯ Pool.connect node_modules/pg-pool/index.js:45:11\n ❯ tests/integration/harness/db.ts:12:3\nCaused by: Error: connect ECONNREFUSED 127.0.0.1:{port}",
        framework="vitest",
        run={"failing": R.randint(30, 120), "sharing": "most"},
    )
for host in ("postgres", "db", "pg.internal"):
    add(
        "infra_ci",
        "DNS for the database service does not resolve: the service name in the workflow is wrong or the network is down",
        f"Error: getaddrinfo ENOTFOUND {host}",
        detail=f"    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26) {{ errno: -3008, code: 'ENOTFOUND', hostname: '{host}' }}",
        framework="vitest",
        run={"failing": R.randint(20, 80), "sharing": "most"},
    )
for _ in range(3):
    add(
        "infra_ci",
        "Postgres accepted the connection before it was ready: the health check is missing from the service definition",
        "FATAL:  the database system is starting up",
        detail="psycopg.OperationalError: connection failed: FATAL:  the database system is starting up",
        framework="pytest",
        run={"failing": R.randint(8, 40), "sharing": "most"},
    )
for _ in range(2):
    add(
        "infra_ci",
        "connection slots exhausted on the CI database: a parallelism/config problem of the job, not the code",
        "error: sorry, too many clients already",
        detail="PostgresError: sorry, too many clients already\n    at ErrorResponse (node_modules/postgres/src/connection.js:790:26)",
        framework="vitest",
    )
for var in ("DATABASE_URL", "CRON_SECRET", "BETTER_AUTH_SECRET", "INTEGRATION_TEST"):
    add(
        "infra_ci",
        f"environment contract: {var} is not set in the job env (secret or workflow env missing)",
        f"Error: {var} is not set",
        detail="    at loadEnv (src/lib/server/env.ts:14:11)\n    at tests/integration/setup.ts:3:1",
        framework="vitest",
        run={"failing": R.randint(10, 200), "sharing": "most"},
    )
for var in ("BETTER_AUTH_SECRET", "STRIPE_WEBHOOK_SECRET", "DATABASE_URL"):
    add(
        "infra_ci",
        f"pytest job env lacks {var}: the environment contract is broken in the workflow",
        f"KeyError: '{var}'",
        detail=f"conftest.py:18: in <module>\n    DSN = os.environ['{var}']\nE   KeyError: '{var}'",
        framework="pytest",
    )
add(
    "infra_ci",
    "missing env var reported by the harness's env check",
    "Missing required env var: CRON_SECRET (see docs/environment.md)",
    framework="vitest",
)
add(
    "infra_ci",
    "pnpm install failed before any test ran",
    ' ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" because pnpm-lock.yaml is not up to date with package.json',
    framework="pnpm",
    command="pnpm install --frozen-lockfile",
)
add(
    "infra_ci",
    "npm dependency resolution failed in setup",
    "npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree",
    framework="npm",
    command="npm ci",
)
add(
    "infra_ci",
    "a package is missing from the install (node_modules incomplete after a cache restore)",
    "Error: Cannot find module '@acme/db' imported from /home/runner/work/dispatch/tests/integration/setup.ts",
    framework="vitest",
    run={"failing": 64, "sharing": "most"},
)
add(
    "infra_ci",
    "node version in the workflow does not match engines",
    'error dispatch@1.0.0: The engine "node" is incompatible with this module. Expected version ">=20". Got "18.19.0"\nUnsupported engine',
    framework="pnpm",
)
add(
    "infra_ci",
    "runner disk full",
    "Error: ENOSPC: No space left on device, write",
    detail="System.IO.IOException: No space left on device",
    framework="vitest",
)
add(
    "infra_ci",
    "the runner killed the job (OOM)",
    "Error: Process completed with exit code 137.",
    framework="github-actions",
)
add(
    "infra_ci",
    "the hosted runner went away mid-job",
    "The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.",
    framework="github-actions",
)
add(
    "infra_ci",
    "Docker Hub rate limit pulling the Postgres service image",
    "docker: Error response from daemon: toomanyrequests: You have reached your pull rate limit.",
    framework="github-actions",
)
for _ in range(3):
    add(
        "infra_ci",
        "Go tests cannot reach Postgres: connection refused on the service port",
        "dial tcp 127.0.0.1:5432: connect: connection refused",
        detail="--- FAIL: TestAssignDriver (0.00s)\n    store_test.go:31: failed to connect to `host=127.0.0.1 user=test database=test`: dial error (dial tcp 127.0.0.1:5432: connect: connection refused)",
        framework="go",
        run={"failing": R.randint(12, 50), "sharing": "most"},
    )
add(
    "infra_ci",
    "Go: service DNS name unknown in the job network",
    "dial tcp: lookup postgres on 127.0.0.11:53: no such host",
    framework="go",
)
for _ in range(3):
    add(
        "infra_ci",
        "psycopg cannot connect: the service container is not running",
        'psycopg.OperationalError: connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
        framework="pytest",
        run={"failing": R.randint(15, 90), "sharing": "most"},
    )
add(
    "infra_ci",
    "the Python image lacks a dependency: the install step failed",
    "ModuleNotFoundError: No module named 'psycopg'",
    framework="pytest",
    run={"failing": 140, "sharing": "most"},
)
add(
    "infra_ci",
    "connection reset by the database proxy in CI",
    "Error: Connection terminated unexpectedly",
    detail="    at Connection.<anonymous> (node_modules/pg/lib/client.js:132:73)",
    framework="vitest",
    run={"failing": 22, "sharing": "most"},
)
add(
    "infra_ci",
    "TLS handshake to the registry timed out pulling the image",
    'Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout',
    framework="github-actions",
)
# ambiguous: a timeout that is really the database not coming up
add(
    "infra_ci",
    "the harness waits for Postgres; the service never became healthy (infra, though it reads like a timeout)",
    "Timeout waiting for database to accept connections after 30000ms",
    framework="vitest",
    run={"failing": 90, "sharing": "most"},
)

# -- Harness/diagnostics --------------------------------------------------------------------------
for helper in ("resetDatabase", "seedFixtures", "truncateAll", "resetDb"):
    add(
        "harness_diagnostics",
        f"the harness's {helper} helper broke: reset/seed is harness code, no product logic ran",
        f"Error: {helper} failed: TRUNCATE cannot be executed inside a read-only transaction",
        detail=f" ❯ {helper} tests/integration/harness/reset.ts:22:9\n ❯ tests/integration/setup.ts:8:3",
        framework="vitest",
    )
for _ in range(3):
    add(
        "harness_diagnostics",
        "a beforeAll hook of the harness failed: setup, not the scenario",
        "Error in beforeAll hook: seedFixtures threw: organization org-a already exists",
        framework="vitest",
    )
add(
    "harness_diagnostics",
    "vitest hook timeout in the harness's global setup",
    'Error: Hook timed out in 10000ms.\nIf this is a long-running hook, pass a timeout value as the last argument or configure it globally with "hookTimeout".',
    detail=" ❯ tests/integration/harness/global-setup.ts:14:1",
    framework="vitest",
)
for fixture in ("clock", "db_session", "org_factory"):
    add(
        "harness_diagnostics",
        f"pytest fixture {fixture} is not defined: the harness's conftest changed",
        f"E       fixture '{fixture}' not found",
        detail=">       available fixtures: cache, capfd, capsys, ...\n>       use 'pytest --fixtures [testpath]' for help on them.\nERROR at setup of test_bid_window_closes",
        framework="pytest",
    )
add(
    "harness_diagnostics",
    "the fake clock helper lost a method: harness clock wiring",
    "TypeError: fakeClock.advanceTo is not a function",
    detail=" ❯ tests/integration/harness/clock.ts:31:15",
    framework="vitest",
)
add(
    "harness_diagnostics",
    "freezegun helper misused by the harness",
    "freezegun: clock helper not started before the scenario; frozen time is None",
    framework="pytest",
)
for scen in ("SCH-004", "BID-011"):
    add(
        "harness_diagnostics",
        "the evidence snapshot the report names does not exist: the harness did not write it",
        f"evidence snapshot evidence/{scen}/rows.json not found",
        framework="vitest",
    )
add(
    "harness_diagnostics",
    "ENOENT on the evidence file the harness should have written",
    "Error: ENOENT: no such file or directory, open 'evidence/NOS-002/before.json'",
    framework="vitest",
)
for message in (
    "expected 2 notifications, got 3",
    "AssertionError: expected 'PENDING' to be 'ASSIGNED'",
    "Error: connect ECONNREFUSED 127.0.0.1:5432",
    "Timeout waiting for assignment",
    "expected 1 row, found 0",
    'error: relation "shifts" does not exist',
    "TypeError: Cannot read properties of undefined (reading 'orgId')",
    "expected 200, got 500",
    'duplicate key value violates unique constraint "bids_pkey"',
    "expected true to be false",
):
    corpus.append(
        {
            "id": f"c{len(corpus) + 1:03d}",
            "playbook": IT,
            "framework": "vitest",
            "scenarioId": None,
            "invariantId": None,
            "testFile": "tests/integration/misc.test.ts",
            "message": message,
            "detail": "",
            "class": "harness_diagnostics",
            "why": "no scenarioId/invariantId: the harness broke the output contract (seed 001: missing ids are harness/diagnostics, whatever the message)",
        }
    )
for message in (
    "expected 1 row for org-a, found 0",
    "expected 3 to equal 2",
    "TypeError: Cannot read properties of undefined (reading 'id')",
):
    add(
        "harness_diagnostics",
        "one error across many scenario prefixes in one run: a shared harness cause, not each scenario's logic",
        message,
        framework="vitest",
        run={"failing": R.randint(12, 40), "sharing": "most", "spans": ["SCH", "BID", "NOS", "API"]},
    )
add(
    "harness_diagnostics",
    "harness invariant wiring points at the wrong helper",
    "Error: invariant TENANT-003 is not registered in tests/integration/harness/invariants.ts",
    framework="vitest",
)

# -- Algorithm regression -------------------------------------------------------------------------
for _ in range(6):
    a, b = R.randint(2, 9), R.randint(10, 19)
    add(
        "algorithm_regression",
        "deterministic assertion on business data, failing on every run since one change (last green before it)",
        f"AssertionError: expected {a} to deeply equal {b}",
        detail=f"- Expected\n+ Received\n\n- {b}\n+ {a}\n ❯ tests/integration/scheduling.test.ts:88:23",
        framework="vitest",
        history=regression_history(R.randint(2, 4)),
    )
for _ in range(4):
    add(
        "algorithm_regression",
        "jest equality on a state machine result; reproduces every run since the merge",
        "expect(received).toBe(expected) // Object.is equality",
        detail='Expected: "ASSIGNED"\nReceived: "PENDING"\n\n  at Object.<anonymous> (tests/integration/assignment.test.ts:52:31)',
        framework="jest",
        history=regression_history(R.randint(2, 5)),
    )
for _ in range(4):
    add(
        "algorithm_regression",
        "pytest assertion on an API result; deterministic since one sha",
        f"AssertionError: assert {R.choice([412, 409, 422])} == 200",
        detail="tests/integration/test_bids.py:77: AssertionError",
        framework="pytest",
        history=regression_history(R.randint(2, 3)),
    )
for _ in range(4):
    add(
        "algorithm_regression",
        "Go test: business rule result changed; failing on each run since the change",
        f"--- FAIL: TestScheduleShift (0.02s)\n    schedule_test.go:48: got {R.randint(3, 6)} shifts, want 2",
        framework="go",
        history=regression_history(R.randint(2, 4)),
    )
for _ in range(4):
    add(
        "algorithm_regression",
        "first failure right after a green run, plain assertion on computed totals: a regression from that change",
        f"AssertionError: expected {R.randint(100, 900)} to equal {R.randint(100, 900)}",
        framework="vitest",
        history=regression_history(1),
    )
for _ in range(4):
    add(
        "algorithm_regression",
        "assertion on business data with no history yet: the playbook's default reading of an assertion is a regression",
        f"AssertionError: expected '{R.choice(['OPEN', 'CLOSED', 'LOCKED'])}' to be '{R.choice(['SETTLED', 'PENDING'])}'",
        framework="vitest",
    )
for _ in range(3):
    add(
        "algorithm_regression",
        "jest numeric assertion, reproducible locally; no flake evidence",
        "expect(received).toEqual(expected) // deep equality",
        detail='- Expected  - 1\n+ Received  + 1\n\n-   "total": 1200,\n+   "total": 1180,',
        framework="jest",
    )
for _ in range(3):
    add(
        "algorithm_regression",
        "pytest comparison of a computed schedule, deterministic",
        "assert [<Shift 3>, <Shift 4>] == [<Shift 3>]",
        detail="E       AssertionError: assert [<Shift 3>, <Shift 4>] == [<Shift 3>]\nE         Left contains one more item: <Shift 4>",
        framework="pytest",
        history=regression_history(2),
    )
for _ in range(3):
    add(
        "algorithm_regression",
        "Go table test mismatch, failing since one sha",
        "--- FAIL: TestPriceQuote/weekend (0.00s)\n    quote_test.go:61: Quote() = 118.00, want 120.00",
        framework="go",
        history=regression_history(3),
    )
add(
    "algorithm_regression",
    "message only says a count is off; the scenario reproduces locally (ambiguous without history)",
    "expected 1 row for org-a, found 2",
    framework="vitest",
)
add(
    "algorithm_regression",
    "wrong tenant filter in a service query: an invariant broken by logic",
    "notification for org-b visible to org-a",
    framework="vitest",
    history=regression_history(2),
)

# -- Data/schema drift ----------------------------------------------------------------------------
for table in TABLES:
    add(
        "data_schema_drift",
        f"the table {table} is missing: a migration did not run or was renamed",
        f'error: relation "{table}" does not exist',
        detail="PostgresError: relation does not exist\n    at Socket.emit (node:events:519:28)\n  code: '42P01'",
        framework="vitest",
    )
for column in COLUMNS:
    add(
        "data_schema_drift",
        f"code or seed expects column {column} the schema does not have (migration/seed mismatch)",
        f'column "{column}" does not exist',
        framework="vitest",
    )
for column, table in zip(COLUMNS[:4], TABLES[:4], strict=True):
    add(
        "data_schema_drift",
        "the seed inserts a column the migrated schema lacks",
        f'PostgresError: column "{column}" of relation "{table}" does not exist',
        detail="    at scripts/seed.ts:44:5",
        framework="vitest",
    )
for _ in range(3):
    add(
        "data_schema_drift",
        "seed assumes an old NOT NULL constraint was dropped; schema and fixtures landed apart",
        f'null value in column "{R.choice(COLUMNS)}" of relation "{R.choice(TABLES)}" violates not-null constraint',
        framework="pytest",
    )
add(
    "data_schema_drift",
    "enum changed in a migration but the seed still uses the old value",
    'invalid input value for enum shift_status: "CANCELLED"',
    framework="vitest",
)
add(
    "data_schema_drift",
    "foreign key the seed does not satisfy after a migration reordered tables",
    'insert or update on table "bids" violates foreign key constraint "bids_window_id_fkey"',
    framework="vitest",
)
add(
    "data_schema_drift",
    "drizzle migration failed to apply in CI",
    'Error: migration 0042_add_tenant.sql failed: column "tenant_id" already exists',
    framework="drizzle",
    command="pnpm db:push",
)
add(
    "data_schema_drift",
    "alembic cannot find a revision: migration history diverged",
    "alembic.util.exc.CommandError: Can't locate revision identified by 'a1b2c3d4e5f6'",
    framework="pytest",
)
add(
    "data_schema_drift",
    "SQLAlchemy model expects a column the schema lacks",
    "sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedColumn) column users.org_id does not exist",
    framework="pytest",
)
add(
    "data_schema_drift",
    "SQLite test database built from an old schema",
    "sqlite3.OperationalError: no such column: tenant_id",
    framework="pytest",
)
add(
    "data_schema_drift",
    "EF Core query against a table the migrations never created",
    'Npgsql.PostgresException (0x80004005): 42P01: relation "Orders" does not exist',
    framework="dotnet",
)
add(
    "data_schema_drift",
    "EF Core model changed without a migration",
    "System.InvalidOperationException: The model for context 'DispatchContext' has pending changes. Add a new migration before updating the database. Pending model changes",
    framework="dotnet",
)
for _ in range(2):
    add(
        "data_schema_drift",
        "Go pgx: table missing after the migration rename",
        'ERROR: relation "shift_slots" does not exist (SQLSTATE 42P01)',
        framework="go",
    )
add(
    "data_schema_drift",
    "column type narrowed by a migration; fixture values too long",
    "value too long for type character varying(32)",
    framework="vitest",
)
add(
    "data_schema_drift",
    "schema version check in the harness: migrations pending",
    "Error: schema version 41 is behind the code's 42: migrations pending",
    framework="vitest",
)

# -- Flake/concurrency ----------------------------------------------------------------------------
for what in ("notification", "assignment", "bid confirmation", "websocket message"):
    add(
        "flake_concurrency",
        f"waiting on an async {what} with a wall-clock timeout: timing-dependent",
        f"Error: Timeout waiting for {what} after 5000ms",
        framework="vitest",
    )
for _ in range(3):
    add(
        "flake_concurrency",
        "vitest test timeout under load; passes alone",
        'Error: Test timed out in 5000ms.\nIf this is a long-running test, pass a timeout value as the last argument or configure it globally with "testTimeout".',
        framework="vitest",
    )
for _ in range(2):
    add(
        "flake_concurrency",
        "jest timeout in an async assertion",
        'thrown: "Exceeded timeout of 5000 ms for a test.\nAdd a timeout value to this test to increase the timeout, if this is a long-running test."',
        framework="jest",
    )
for _ in range(2):
    add(
        "flake_concurrency",
        "testing-library waitFor gave up: the UI update raced the assertion",
        "TestingLibraryElementError: Unable to find an element with the text: Assigned. waitFor timed out after 1000ms",
        framework="jest",
    )
for key in ("assignments_shift_id_key", "notifications_dedupe_key", "bids_window_driver_key"):
    add(
        "flake_concurrency",
        "a duplicate under concurrent requests: missing idempotency, depends on ordering",
        f'duplicate key value violates unique constraint "{key}"',
        framework="vitest",
    )
add(
    "flake_concurrency",
    "two concurrent writers deadlock",
    "error: deadlock detected",
    detail="DETAIL:  Process 4121 waits for ShareLock on transaction 9912; blocked by process 4120.",
    framework="vitest",
)
add(
    "flake_concurrency",
    "serializable transaction conflict between parallel tests",
    "could not serialize access due to concurrent update",
    framework="pytest",
)
for _ in range(2):
    add(
        "flake_concurrency",
        "the Go race detector saw concurrent map access",
        "WARNING: DATA RACE\nWrite at 0x00c0001a4030 by goroutine 12:\n  dispatch/internal/assign.(*Pool).Add()",
        framework="go",
    )
add(
    "flake_concurrency",
    "duplicate notifications from a retried job",
    "expected 1 notification, found 2 (duplicate notifications for shift sh-19)",
    framework="vitest",
)
for _ in range(3):
    add(
        "flake_concurrency",
        "vitest snapshot mismatch on rendered output with a timestamp: non-deterministic render",
        "Error: Snapshot `card > renders the assigned state 1` mismatched",
        detail='- Expected\n+ Received\n\n-   "updatedAt": "2026-11-22T03:12:00Z"\n+   "updatedAt": "2026-11-22T03:12:01Z"',
        framework="vitest",
    )
add(
    "flake_concurrency",
    "jest snapshot failed on ordering of a set",
    "› 1 snapshot failed from 1 test suite. Inspect your code changes or run `npm test -- -u` to update them.",
    framework="jest",
)
for _ in range(2):
    add(
        "flake_concurrency",
        ".NET task cancelled on a timeout under parallel test load",
        "System.Threading.Tasks.TaskCanceledException: A task was canceled.",
        framework="dotnet",
    )
for _ in range(2):
    add(
        "flake_concurrency",
        "Go context deadline in an integration test that passes on retry",
        "context deadline exceeded",
        framework="go",
        history=flaky_history("rerun"),
    )
for _ in range(6):
    add(
        "flake_concurrency",
        "the assertion reads like a regression, but the test passed on the rerun attempt of the same run: a flake",
        f"AssertionError: expected {R.randint(1, 3)} to equal {R.randint(4, 6)}",
        framework="vitest",
        history=flaky_history("rerun"),
    )
for _ in range(5):
    add(
        "flake_concurrency",
        "failed and passed on the same sha in different runs: timing-dependent",
        f"expected 1 row for org-a, found {R.randint(2, 4)}",
        framework="vitest",
        history=flaky_history("same-sha"),
    )
for _ in range(4):
    add(
        "flake_concurrency",
        "JUnit shows the test failed then passed within one run (surefire/pytest-rerunfailures retry)",
        "expect(received).toBe(expected)",
        detail="Expected: 2\nReceived: 3",
        framework="jest",
        history=flaky_history("within"),
    )
add(
    "flake_concurrency",
    "ordering assumption on an unordered query",
    "AssertionError: lists differ: order of rows is nondeterministic ([b, a] != [a, b])",
    framework="pytest",
)
add(
    "flake_concurrency",
    "lock wait timeout between parallel workers",
    "Error: lock wait timeout exceeded; try restarting transaction",
    framework="vitest",
)
add(
    "flake_concurrency",
    "Playwright navigation timed out waiting for a selector",
    "TimeoutError: page.waitForSelector: Timeout 30000ms exceeded.\nwaiting for locator('text=Assigned')",
    framework="playwright",
)
# ambiguous: looks like infra, but history says it passed on the same sha (so it is the test)
add(
    "flake_concurrency",
    "the connection error comes from the test's own pool racing shutdown; it passed on the rerun of the same sha",
    "Error: Connection terminated unexpectedly",
    framework="vitest",
    history=flaky_history("rerun"),
)

# -- library-incidents (.NET) ----------------------------------------------------------------------
LIB = "library-incidents"
for _ in range(5):
    add(
        "feature_regression",
        "xUnit equality on query results changed after a merge; no storage or transaction involvement",
        f"Assert.Equal() Failure\nExpected: {R.randint(10, 50)}\nActual:   {R.randint(51, 90)}",
        detail="   at CBDD.Tests.Query.FilterTests.WhereClauseFiltersRows() in tests/CBDD.Tests/Query/FilterTests.cs:line 41",
        playbook=LIB,
        framework="dotnet",
        testFile="tests/CBDD.Tests/Query/FilterTests.cs",
    )
for _ in range(4):
    add(
        "storage_recovery",
        "WAL replay fails after an unclean shutdown: storage recovery",
        "System.IO.InvalidDataException: WAL checksum mismatch at offset 8192",
        detail="   at CBDD.Storage.WriteAheadLog.Replay() in src/CBDD/Storage/WriteAheadLog.cs:line 212\n   at CBDD.Tests.Storage.RecoveryTests.ReplaysWalAfterCrash()",
        playbook=LIB,
        framework="dotnet",
        testFile="tests/CBDD.Tests/Storage/RecoveryTests.cs",
    )
add(
    "storage_recovery",
    "the data file does not open after restart (persistent startup failure)",
    "CBDD.StorageException: cannot open the database: data file is corrupted (page 17)",
    playbook=LIB,
    framework="dotnet",
    testFile="tests/CBDD.Tests/Storage/RestartTests.cs",
)
for _ in range(4):
    add(
        "transaction_protocol",
        "a committed write is missing after recovery: the transaction protocol guarantee broke",
        "Assert.True() Failure: committed transaction lost after recovery (key 'k17')",
        detail="   at CBDD.Tests.Transactions.DurabilityTests.CommittedWritesSurvive()",
        playbook=LIB,
        framework="dotnet",
        testFile="tests/CBDD.Tests/Transactions/DurabilityTests.cs",
    )
add(
    "transaction_protocol",
    "rolled-back data visible to another reader",
    "Assert.Equal() Failure: rolled-back row visible to a concurrent reader (isolation violation)",
    playbook=LIB,
    framework="dotnet",
    testFile="tests/CBDD.Tests/Transactions/IsolationTests.cs",
)
for _ in range(3):
    add(
        "ci_gate",
        "the solution does not compile on main",
        "error CS0246: The type or namespace name 'BTreeIndex' could not be found (are you missing a using directive or an assembly reference?)",
        detail="Build FAILED.",
        playbook=LIB,
        framework="dotnet",
        command="dotnet build CBDD.slnx -c Release",
    )
add(
    "ci_gate",
    "the test host crashed before reporting: the gate, not a feature",
    "The active test run was aborted. Reason: Test host process crashed : Stack overflow.",
    playbook=LIB,
    framework="dotnet",
    command="dotnet test CBDD.slnx -c Release",
)
add(
    "ci_gate",
    "coverage gate below threshold",
    "Coverage 78.2% is below the threshold 80% (scripts/coverage-check.sh)",
    playbook=LIB,
    framework="dotnet",
    command="bash scripts/coverage-check.sh",
)
add(
    "ci_gate",
    "NuGet restore cannot find a package",
    "error NU1101: Unable to find package CBDD.Analyzers. No packages exist with this id in source(s): nuget.org",
    playbook=LIB,
    framework="dotnet",
    command="dotnet restore",
)
add(
    "consumer_integration",
    "a consumer's tests break on the new CBDD release (missing API)",
    "System.MissingMethodException: Method not found: 'CBDD.Collection`1.FindOne(System.Linq.Expressions.Expression)'. (consumer acme/ledger after upgrading to CBDD 3.2.0)",
    playbook=LIB,
    framework="dotnet",
)
add(
    "consumer_integration",
    "assembly load failure in a consumer after the upgrade",
    "System.IO.FileNotFoundException: Could not load file or assembly 'CBDD, Version=3.2.0.0'",
    playbook=LIB,
    framework="dotnet",
)
add(
    "documentation_defect",
    "the documented command no longer works as written",
    "docs/deployment.md: documented option --data-dir no longer exists (library behaves as designed)",
    playbook=LIB,
    framework="docs",
)

# -- contract-drift --------------------------------------------------------------------------------
CD = "contract-drift"
for name in ("order", "invoice", "shift"):
    add(
        "schema_drift",
        "the contract schema changed and the fixture baseline was not updated",
        f"contract-drift: schemas/{name}.schema.json changed (required property 'currency' added); fixture pack fixtures/{name}/*.json not updated",
        playbook=CD,
        framework="validator",
        command="pnpm contract:check",
    )
add(
    "schema_drift",
    "validator sees fields the fixtures do not cover",
    "fixtures/api/openapi.yaml: unknown property 'tenantTier' not covered by any fixture (additionalProperties: false)",
    playbook=CD,
    framework="validator",
)
for name in ("pricing", "rounding", "labels"):
    add(
        "fixture_stale",
        "an intended runtime change merged; the expected fixture still shows the old behaviour",
        f"fixture fixtures/{name}/expected.json is stale: runtime now returns the new {name} format (intended change #41{R.randint(0, 9)}); run --update-fixtures",
        playbook=CD,
        framework="validator",
    )
for _ in range(3):
    add(
        "runtime_regression",
        "contract and fixture unchanged; the implementation's output no longer matches them",
        f"validator: output no longer matches contract for GET /orders/{R.randint(1, 99)}: status code 500 instead of 200",
        playbook=CD,
        framework="validator",
    )

OUT.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in corpus))
print(f"{len(corpus)} failures -> {OUT}")
