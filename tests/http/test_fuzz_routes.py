"""Property-based tests of every HTTP route against the real app over HTTP (issue 18): random and
mutated reports (signed), Alertmanager webhooks, GitHub webhooks (signed) and /api/incidents
queries. Whatever comes in: never a 5xx, never a partial row, never a ping from rejected input."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, col, select

from slackbot.db.models import Incident, Occurrence, OutboxItem, ProcessedDelivery, Run
from tests.factories import report, result
from tests.http.conftest import Server
from tests.http.test_hostile_input import alert_payload
from tests.integrations.conftest import workflow_run_payload

FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text that has broken a route before: NUL, lone surrogates, non-ASCII digits, Slack mentions,
# numbers as text, huge numbers, dates at the edges of the calendar.
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "é€",
        "²",
        "<!channel>",
        "9" * 60,
        "true",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "2026-11-22T03:12:00Z",
        "BID-001",
        "failed",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63, 2**64])
    | st.floats(allow_nan=True, allow_infinity=False)
    | st.text(max_size=20)
    | NASTY_TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | NASTY_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in ``doc``: where a mutation can land."""
    found: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = (
            list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        )
        for key, value in items:
            found.append((node, key))
            stack.append(value)
    return found


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = _slots(doc)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(JSON)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=8) | NASTY_TEXT)] = draw(JSON)
        else:
            container.append(draw(JSON))
    return doc


def documents(base: Any) -> st.SearchStrategy[Any]:
    return mutated(base) | JSON | st.just(base)


def state(server: Server) -> tuple[tuple[int, ...], int]:
    """(rows a rejected input must not add, paging rows). Outbox rows the worker adds on its own
    (notices, retries) are not counted; the jobs and deliveries only a webhook adds are."""
    with Session(server.core.engine) as session:

        def count(table: Any, *where: Any) -> int:
            return session.scalar(select(func.count()).select_from(table).where(*where)) or 0

        rows = (
            count(Run),
            count(Incident),
            count(Occurrence),
            count(ProcessedDelivery),
            count(OutboxItem, col(OutboxItem.kind) == "github_run"),
        )
    return rows, server.pages()


def check(server: Server, response: httpx.Response, before: tuple[tuple[int, ...], int], accepted: int) -> None:
    assert response.status_code < 500, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    if response.status_code != accepted:
        after = state(server)
        assert after == before, (
            f"a rejected input ({response.status_code}) changed {before} to {after}: {response.text}"
        )


def test_reports_never_5xx_nor_partial_rows(shared_server: Server) -> None:
    server = shared_server  # relative checks: one bot per module and database
    base = report(result(), result("BID-002", "TENANT-001", test_name="other"), result(status="passed"))

    @FUZZ
    @given(documents(base))
    def run(doc: Any) -> None:
        before = state(server)
        check(server, server.report(json.dumps(doc).encode()), before, 202)

    run()


def test_alertmanager_webhooks_never_5xx_nor_partial_rows(shared_server: Server) -> None:
    server = shared_server  # relative checks: one bot per module and database

    @FUZZ
    @given(documents(alert_payload()))
    def run(doc: Any) -> None:
        before = state(server)
        check(server, server.alertmanager(json.dumps(doc).encode()), before, 200)

    run()


def test_github_webhooks_never_5xx_nor_partial_rows(shared_server: Server) -> None:
    server = shared_server  # relative checks: one bot per module and database

    @FUZZ
    @given(documents(workflow_run_payload()), st.sampled_from(["workflow_run", "ping", "push", "é"]))
    def run(doc: Any, event: str) -> None:
        before = state(server)
        response = server.github(json.dumps(doc).encode(), event=event.encode())
        check(server, response, before, 202)

    run()


def test_api_queries_never_5xx(shared_server: Server) -> None:
    server = shared_server  # relative checks: one bot per module and database
    text = st.text(max_size=30) | NASTY_TEXT | st.just(str(uuid.uuid4()))

    @FUZZ
    @given(st.dictionaries(st.sampled_from(["status", "class", "limit", "cursor", "other"]), text, max_size=4))
    def run(params: dict[str, str]) -> None:
        # httpx refuses NUL in a URL and cannot encode a lone surrogate: what a client can send
        params = {k: v.replace("\x00", "").encode("utf-8", "replace").decode() for k, v in params.items()}
        response = httpx.get(server.url + "/api/incidents", params=params)
        assert response.status_code in (200, 400), response.text

    run()
