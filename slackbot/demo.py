"""``triagebot demo``: the main job on embedded defaults, printed as a responder would see it."""

from __future__ import annotations

import click

from slackbot.clock import SystemClock
from slackbot.config import load_runbook
from slackbot.db.engine import make_engine, session_scope
from slackbot.db.migrate import upgrade
from slackbot.presenters import incident_table
from slackbot.report import Report
from slackbot.services.ingest import IngestService
from slackbot.services.queries import incident_json, list_incidents
from slackbot.settings import DEFAULT_RUNBOOKS

SAMPLE = DEFAULT_RUNBOOKS / "examples" / "nightly-report.json"


def run_demo(*, database_url: str, keep_serving: bool = False) -> None:
    runbook = load_runbook(DEFAULT_RUNBOOKS)
    engine = make_engine(database_url)
    upgrade(engine)
    report = Report.model_validate_json(SAMPLE.read_bytes())
    result = IngestService(runbook, SystemClock()).ingest_report(engine, report, source="demo")
    click.echo(f"Ingested {SAMPLE.name}: {result.failures} failing of {result.results} results")
    with session_scope(engine) as session:
        rows = [incident_json(i) for i in list_incidents(session, status="open")]
    click.echo(incident_table(rows))
