"""Small builders for reports in tests: only the fields a test cares about need to be named."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from slackbot.db.models import OutboxItem
from slackbot.sources.report import Report


def result(
    scenario: str | None = "BID-001",
    invariant: str | None = "TENANT-001",
    *,
    status: str = "failed",
    message: str = "notification for org-b visible to org-a",
    test_file: str = "tests/integration/bidding.test.ts",
    test_name: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "scenarioId": scenario,
        "invariantId": invariant,
        "status": status,
        "message": message,
        "testFile": test_file,
        "testName": test_name or f"{scenario or 'unnamed'} {invariant or ''} check".strip(),
        "organizationUnderTest": "org-a",
        "keyEntityIds": {"orgId": "org-a", "bidWindowId": "bw-17"},
        "evidence": [{"kind": "db_snapshot", "path": f"evidence/{scenario}/rows.json"}],
    }
    data.update(extra)
    return data


def report(
    *results: dict[str, Any],
    run_id: str = "9187",
    attempt: int = 1,
    suite: str = "nightly",
    repository: str = "acme/dispatch",
) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "run": {
            "provider": "github",
            "repository": repository,
            "runId": run_id,
            "runAttempt": attempt,
            "url": f"https://github.com/{repository}/actions/runs/{run_id}",
            "workflow": "integration-nightly",
            "suite": suite,
            "branch": "main",
            "sha": "3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345",
            "finishedAt": "2026-11-22T03:12:00Z",
        },
        "results": list(results),
    }


def parsed(*results: dict[str, Any], **kwargs: Any) -> Report:
    return Report.model_validate(report(*results, **kwargs))


def outbox(engine: Engine, kind: str, incident_id: int | None = None) -> list[OutboxItem]:
    with Session(engine) as session:
        query = select(OutboxItem).where(OutboxItem.kind == kind)
        if incident_id is not None:
            query = query.where(OutboxItem.incident_id == incident_id)
        return list(session.exec(query.order_by(col(OutboxItem.id))))
