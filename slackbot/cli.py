"""The ``triagebot`` command (DESIGN.md section 2)."""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from slackbot.settings import Settings


def _settings() -> Settings:
    return Settings()


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """triagebot: integration-test failure triage in Slack."""


# -- check ----------------------------------------------------------------------------------------


@main.command()
@click.option("--runbooks", "runbooks_dir", type=click.Path(path_type=Path), help="default: TRIAGE_RUNBOOKS_DIR")
@click.option(
    "--manifest", type=click.Path(path_type=Path), default=None, help="default: manifest.yml at the repo root"
)
def check(runbooks_dir: Path | None, manifest: Path | None) -> None:
    """Validate runbooks/ (every playbook, every template rendered) and manifest.yml; each error
    names file, line and field."""
    from slackbot.manifest import check_manifest
    from slackbot.settings import DEFAULT_MANIFEST
    from slackbot.template_check import check_directory

    directory = runbooks_dir or _settings().runbooks_dir
    problems = [str(p) for p in check_directory(directory)]
    manifest_path = manifest or DEFAULT_MANIFEST
    problems += [str(p) for p in check_manifest(manifest_path)]
    if problems:
        for line in problems:
            click.echo(line)
        _fail(f"{len(problems)} problem(s) in {directory} / {manifest_path.name}")
    from slackbot.config import load_playbooks

    names = ", ".join(p.name for p in load_playbooks(directory))
    click.echo(f"ok: {directory} (playbooks: {names}; templates render) and {manifest_path.name} are valid")


# -- db -------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (Alembic) to TRIAGE_DATABASE_URL."""
    from slackbot.db.engine import make_engine
    from slackbot.db.migrate import current_revision, upgrade

    engine = make_engine(_settings().database_url)
    upgrade(engine, revision)
    click.echo(f"database at revision {current_revision(engine)}")


# -- report ---------------------------------------------------------------------------------------


@main.group()
def report() -> None:
    """The report format."""


@report.command("schema")
@click.option("--out", type=click.Path(path_type=Path), default=None)
def report_schema(out: Path | None) -> None:
    """Print (or write) the JSON Schema of report v1, generated from the models."""
    from slackbot.sources.report import report_json_schema

    text = report_json_schema()
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}")
    else:
        click.echo(text, nl=False)


# -- send -----------------------------------------------------------------------------------------

_GITHUB_ENV = {
    "repository": "GITHUB_REPOSITORY",
    "runId": "GITHUB_RUN_ID",
    "runAttempt": "GITHUB_RUN_ATTEMPT",
    "branch": "GITHUB_REF_NAME",
    "sha": "GITHUB_SHA",
    "workflow": "GITHUB_WORKFLOW",
}


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--server",
    required=True,
    envvar="TRIAGE_SERVER",
    help="the bot's base URL, e.g. https://triage.example.com",
)
@click.option(
    "--secret", "secret_value", envvar="TRIAGE_INGEST_SECRET", help="HMAC key (default: TRIAGE_INGEST_SECRET)"
)
@click.option("--repository", help="JUnit only; default GITHUB_REPOSITORY")
@click.option("--run-id", help="JUnit only; default GITHUB_RUN_ID")
@click.option("--run-attempt", type=int, help="JUnit only; default GITHUB_RUN_ATTEMPT")
@click.option("--suite", default=None, help="JUnit only: smoke, full or nightly (default full)")
@click.option("--url", "run_url", help="JUnit only: the CI run URL")
@click.option("--branch")
@click.option("--sha")
@click.option("--retries", default=3, show_default=True, help="retries on 5xx and connection errors")
def send(
    file: Path,
    server: str,
    secret_value: str | None,
    repository: str | None,
    run_id: str | None,
    run_attempt: int | None,
    suite: str | None,
    run_url: str | None,
    branch: str | None,
    sha: str | None,
    retries: int,
) -> None:
    """Sign and send a report (JSON v1 or JUnit XML) to a running bot. For CI jobs."""
    from slackbot.client import SendError, send_report
    from slackbot.sources.junit import looks_like_junit

    if not secret_value:
        _fail("no secret: pass --secret or set TRIAGE_INGEST_SECRET (the same value as on the server)", 2)
    assert secret_value is not None
    body = file.read_bytes()
    params: dict[str, Any] = {}
    if looks_like_junit(body):
        params = _junit_run_params(
            {
                "repository": repository,
                "runId": run_id,
                "runAttempt": run_attempt,
                "branch": branch,
                "sha": sha,
                "suite": suite,
                "url": run_url,
            }
        )
    try:
        result = send_report(body, server, secret_value, params=params, retries=retries)
    except SendError as exc:
        _fail(str(exc), 1 if exc.status else 3)
        return
    duplicate = " (duplicate; nothing changed)" if result.get("duplicate") else ""
    click.echo(
        f"sent {file.name}: {result['failures']} failing of {result['results']} results -> "
        f"{len(result['incidents'])} incident(s){duplicate}"
    )
    for item in result["incidents"]:
        state = "new" if item["created"] else "seen again"
        click.echo(f"  {item['id']} {state}: {item['scenarioId']} / {item['invariantId']}")


def _junit_run_params(given: dict[str, Any]) -> dict[str, Any]:
    """JUnit has no run metadata: take it from flags, else from the GitHub Actions environment."""
    for key, env in _GITHUB_ENV.items():
        if given.get(key) is None and os.environ.get(env):
            given[key] = os.environ[env]
    if given.get("url") is None and os.environ.get("GITHUB_RUN_ID") and os.environ.get("GITHUB_REPOSITORY"):
        base = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        given["url"] = f"{base}/{os.environ['GITHUB_REPOSITORY']}/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    params = {k: v for k, v in given.items() if v is not None}
    missing = [flag for key, flag in (("repository", "--repository"), ("runId", "--run-id")) if key not in params]
    if missing:
        _fail(f"JUnit needs run metadata: pass {' and '.join(missing)} (or run inside GitHub Actions)", 2)
    return params


# -- incidents ------------------------------------------------------------------------------------


@main.command()
@click.option("--status", type=click.Choice(["open", "resolved"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def incidents(status: str | None, as_json: bool) -> None:
    """List incidents from the database."""
    from slackbot.db.engine import make_engine, session_scope
    from slackbot.db.migrate import upgrade
    from slackbot.reads.queries import incident_json, list_incidents

    engine = make_engine(_settings().database_url)
    upgrade(engine)
    with session_scope(engine) as session:
        rows = [incident_json(i) for i in list_incidents(session, status=status)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from slackbot.presenters import incident_table

    click.echo(incident_table(rows))


# -- archive --------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--before",
    "before",
    default=None,
    help="archive incidents resolved before this day (YYYY-MM-DD); default: the TRIAGE_RETAIN_* settings",
)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="gzip JSONL file, appended to")
@click.option("--dry-run", is_flag=True, help="count what would move; write and delete nothing")
def archive(before: str | None, out: Path | None, dry_run: bool) -> None:
    """Move occurrences and timeline rows of incidents resolved long ago to a gzip JSONL archive and
    delete them, in batches. Open incidents keep every row; each archived incident keeps a timeline
    row naming the file and the SHA-256 of what went there. Safe to run again, or after a crash."""
    from datetime import UTC, date, datetime, timedelta

    from slackbot.db.engine import make_engine
    from slackbot.db.migrate import upgrade
    from slackbot.db.retention import MIN_RETAIN_DAYS, Cutoffs, archive_rows, cutoff_before

    settings = _settings()
    now = datetime.now(UTC)
    floor = now - timedelta(days=MIN_RETAIN_DAYS)
    if before is not None:
        try:
            day = date.fromisoformat(before)
        except ValueError:
            _fail(f"--before must be a day like 2026-01-31; got '{before[:40]}'", 2)
        cutoff = cutoff_before(day)
        if cutoff > floor:
            _fail(f"--before must be at least {MIN_RETAIN_DAYS} days ago (/triage stats reads 30 days): {day}", 2)
        cutoffs = Cutoffs(occurrences=cutoff, timeline=cutoff)
    else:

        def days_ago(days: int | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        cutoffs = Cutoffs(days_ago(settings.retain_occurrences_days), days_ago(settings.retain_timeline_days))
    if cutoffs.occurrences is None and cutoffs.timeline is None:
        click.echo(
            "nothing to archive: every row is kept (set TRIAGE_RETAIN_OCCURRENCES_DAYS or "
            "TRIAGE_RETAIN_TIMELINE_DAYS, or pass --before DAY)"
        )
        return
    if out is None and not dry_run:
        out = Path(f"triagebot-archive-{now:%Y%m%d}.jsonl.gz")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    report = archive_rows(engine, cutoffs, out=out, now=now, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    where = "" if dry_run else f" to {out}"
    click.echo(
        f"{verb} {report.occurrences} occurrences and {report.timeline} timeline rows of "
        f"{report.incidents} resolved incidents{where}"
    )


# -- serve ----------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="proxies whose X-Forwarded-For names the client (comma-separated IPs or '*'); "
    "the client address decides who is loopback for /api (README: Trust boundaries)",
)
@click.option("--socket-mode", is_flag=True, help="Slack over Socket Mode (needs SLACK_APP_TOKEN)")
@click.option(
    "--no-slack", is_flag=True, help="ingest only: no Slack token needed, /slack/events answers 503, posts wait"
)
def serve(host: str, port: int, forwarded_allow_ips: str, socket_mode: bool, no_slack: bool) -> None:
    """Run the bot: Slack requests and all HTTP routes on one port. Checks the Slack token with
    auth.test first and refuses to start, in one line, when it is missing or rejected."""
    from slackbot.server import run_server

    run_server(
        _settings(),
        host=host,
        port=port,
        socket_mode=socket_mode,
        no_slack=no_slack,
        forwarded_allow_ips=forwarded_allow_ips,
    )


# -- doctor ---------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--manifest", type=click.Path(path_type=Path), default=None, help="default: ./manifest.yml, else the shipped one"
)
def doctor(manifest: Path | None) -> None:
    """Check a deployment against its workspace: placeholders left in runbooks/ and manifest.yml,
    the token's scopes, channels (and the bot in them), user groups, users, bd, PagerDuty keys and
    the ingest secret. One line per problem with its fix; exit 1 when there is any."""
    from slackbot.doctor import doctor as run_doctor
    from slackbot.settings import DEFAULT_MANIFEST

    # the manifest `triagebot manifest --out manifest.yml` wrote here, else the one shipped
    here = Path("manifest.yml")
    manifest_path = manifest or (here if here.is_file() else DEFAULT_MANIFEST)
    settings = _settings()
    click.echo(f"checking: runbooks {settings.runbooks_dir}, manifest {manifest_path}")
    findings = run_doctor(settings, manifest_path)
    for note in findings.notes:
        click.echo(note)
    for problem in findings.problems:
        click.echo(problem)
    if findings.problems:
        _fail(f"{len(findings.problems)} problem(s); fix them and run `triagebot doctor` again")
    click.echo("ok: ready for the workspace")


# -- manifest -------------------------------------------------------------------------------------


@main.command()
@click.option("--url", required=True, help="the bot's public base URL, e.g. https://triage.acme.com")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="write here (default: stdout)")
@click.option("--manifest", type=click.Path(path_type=Path), default=None, help="default: the shipped manifest.yml")
def manifest(url: str, out: Path | None, manifest: Path | None) -> None:
    """The Slack app manifest for your host: paste it into Slack (Create app → From a manifest)."""
    from slackbot.manifest import ManifestError, manifest_for_host
    from slackbot.settings import DEFAULT_MANIFEST

    try:
        text = manifest_for_host((manifest or DEFAULT_MANIFEST).read_text(encoding="utf-8"), url)
    except ManifestError as exc:
        _fail(str(exc), 2)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out} (request URLs: {url.rstrip('/')}/slack/events)", err=True)


# -- demo -----------------------------------------------------------------------------------------


@main.command()
@click.option("--serve", "keep_serving", is_flag=True, help="keep the emulator and the bot running (Ctrl-C stops)")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="with --serve: the emulator's port (default 8099; 0 picks a free one); the bot takes another free port",
)
@click.option("--database", default="sqlite:///triage-demo.db", show_default=True)
@click.option("--runbooks", "runbooks_dir", type=click.Path(path_type=Path), help="default: TRIAGE_RUNBOOKS_DIR")
@click.option("--playbook", default=None, help="show only this playbook's card (default: every playbook)")
def demo(keep_serving: bool, port: int | None, database: str, runbooks_dir: Path | None, playbook: str | None) -> None:
    """End to end on embedded defaults: SQLite, the local Slack emulator, the bd double and each
    playbook's sample."""
    from slackbot.demo import run_demo

    directory = runbooks_dir or _settings().runbooks_dir
    run_demo(database_url=database, runbooks_dir=directory, playbook=playbook, keep_serving=keep_serving, port=port)


# -- runbook --------------------------------------------------------------------------------------


@main.group()
def runbook() -> None:
    """The published runbook documents (one per playbook)."""


@runbook.command("render")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="directory to write to (default docs/)")
@click.option("--runbooks", "runbooks_dir", type=click.Path(path_type=Path), help="default: TRIAGE_RUNBOOKS_DIR")
@click.option("--playbook", "only", default=None, help="render only this playbook's document")
def runbook_render(out: Path | None, runbooks_dir: Path | None, only: str | None) -> None:
    """Render each playbook's published document (policy.yml ``document``) from runbooks/."""
    from slackbot.config import RunbookError
    from slackbot.documents.runbook import render_directory
    from slackbot.settings import REPO_ROOT, SHIPPED
    from slackbot.slack.replies import usage_lines

    directory = runbooks_dir or _settings().runbooks_dir
    # a checkout's docs/; installed from a wheel, ./docs (never inside site-packages)
    target = out or (REPO_ROOT / "docs" if SHIPPED == REPO_ROOT else Path("docs"))
    try:
        documents = render_directory(directory, usage_lines(), only=only)
    except RunbookError as exc:
        # The same file:line: field messages as `triagebot check`; the old documents stay as they were.
        for problem in exc.problems:
            click.echo(str(problem))
        _fail(f"{len(exc.problems)} problem(s) in {directory}; nothing was written")
    if not documents:
        _fail(f"no playbook in {directory} publishes a document" + (f" named {only}" if only else ""))
    target.mkdir(parents=True, exist_ok=True)
    for path, text in documents.items():
        (target / path.name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {target / path.name}")


# -- simulate -------------------------------------------------------------------------------------


@main.command()
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 120), help="simulated days of CI")
@click.option("--seed", default=7, show_default=True, type=int, help="the same seed tells the same story")
@click.option("--runbooks", "runbooks_dir", type=click.Path(path_type=Path), help="default: TRIAGE_RUNBOOKS_DIR")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="write the Markdown report here")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="write the JSON report here")
@click.option("--responders", is_flag=True, help="also simulate people who work the cards")
@click.option("--no-faults", is_flag=True, help="no outages and no crashes")
@click.option("--database", default=None, help="SQLAlchemy URL (default: SQLite in the work directory)")
@click.option("--workdir", type=click.Path(path_type=Path), help="keep the database and bd workspace here")
@click.option("--inject-bug", type=click.Choice(["duplicate-card"]), hidden=True, help="prove a broken bot fails")
@click.option("--mutants", is_flag=True, help="run against each planted bug (mutation proof); --report gets the table")
@click.option("--mutant", "mutant_names", multiple=True, help="with --mutants: only these (repeatable)")
def simulate(
    days: int,
    seed: int,
    runbooks_dir: Path | None,
    report_path: Path | None,
    json_path: Path | None,
    responders: bool,
    no_faults: bool,
    database: str | None,
    workdir: Path | None,
    inject_bug: str | None,
    mutants: bool,
    mutant_names: tuple[str, ...],
) -> None:
    """The founder-absence simulation: DAYS of CI failures, outages and crashes through the real bot
    in virtual time, nobody answering (or --responders), then its promises checked. Exit 1 when any
    promise is broken; the report says which, where and when. With --mutants: each planted bug of
    slackbot/simulation/mutants.py on a temporary copy of the package; exit 1 when one survives."""
    from slackbot.config import RunbookError
    from slackbot.simulation import SimulationConfig
    from slackbot.simulation import simulate as run_simulation
    from slackbot.simulation.report import write_reports
    from slackbot.simulation.responders import SimulationError

    directory = runbooks_dir or _settings().runbooks_dir
    if mutants:
        _mutation_proof(days, seed, directory, not no_faults, mutant_names, report_path)
        return
    config = SimulationConfig(
        days=days,
        seed=seed,
        runbooks_dir=directory,
        responders=responders,
        faults=not no_faults,
        database_url=database,
        workdir=workdir,
        inject_bug=inject_bug,
    )
    click.echo(f"simulating {days} days (seed {seed}, runbooks {directory})…", err=True)
    # This process runs one simulation and exits: what the imports built (about 150,000 objects)
    # lives until then, and each full collection during the run walked it again (0.3 s of 14 days).
    gc.freeze()
    try:
        result = run_simulation(config)
    except RunbookError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        _fail(f"{len(exc.problems)} problem(s) in {directory}")
    except SimulationError as exc:
        _fail(f"the simulation could not run: {exc}", code=2)
    if report_path is not None and json_path is None:
        json_path = report_path.with_suffix(".json")
    text, _ = write_reports(result, report_path, json_path)
    click.echo(text)
    for path in (report_path, json_path):
        if path is not None:
            click.echo(f"wrote {path}", err=True)
    if not result.passed:
        broken = [c.key for c in result.checks if not c.passed]
        _fail(f"{len(broken)} invariant(s) broken: {', '.join(broken)}")


def _mutation_proof(
    days: int, seed: int, runbooks: Path, faults: bool, names: tuple[str, ...], report_path: Path | None
) -> None:
    import time

    from slackbot.simulation.mutants import MutantError, markdown, run_mutants, select

    began = time.monotonic()
    try:
        chosen = select(names)
        click.echo(f"{len(chosen)} mutants, {days} simulated days each (seed {seed}); the baseline first…", err=True)
        verdicts = run_mutants(
            chosen,
            days=days,
            seed=seed,
            runbooks=runbooks.resolve(),
            faults=faults,
            progress=lambda v: click.echo(
                f"{v.mutant.name}: {'killed' if v.killed else 'SURVIVED'} ({v.seconds:.0f} s) {v.how[:160]}", err=True
            ),
        )
    except MutantError as exc:
        _fail(str(exc), code=2)
    text = markdown(verdicts, days=days, seed=seed, wall=time.monotonic() - began)
    click.echo(text)
    if report_path is not None:
        report_path.write_text(text)
        click.echo(f"wrote {report_path}", err=True)
    survivors = [v.mutant.name for v in verdicts if not v.killed]
    if survivors:
        _fail(f"{len(survivors)} mutant(s) survived: {', '.join(survivors)}")


if __name__ == "__main__":
    main()
