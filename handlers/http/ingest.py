"""``POST /ingest/report`` and ``POST /ingest/junit``: authenticate, parse, hand to the ingest service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import partial

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http.body import BodyTooLarge, loads_json, problem, read_capped, too_large
from slackbot.clients.isolated import free_in_pieces, off_loop, preload
from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.signing import verify
from slackbot.sources.junit import JUnitError, parse_junit
from slackbot.sources.report import InvalidReport, Report, RunInfo, validate_report

SIGNATURE_HEADER = "x-triage-signature"
# json.loads is one C call that holds the GIL while it builds every value of the body: in a worker
# thread it stalls the event loop that long (about 0.1 s a million values). Up to this many values
# (a 10,000-result report has about 320,000; json.loads takes some 40 ms) a JSON report is parsed
# in a thread, validated a chunk at a time; a body that may hold more goes to a child process
# (slackbot.clients.isolated), whose answer costs as much again to send back.
THREAD_JSON_VALUES = 500_000


def json_values_at_most(body: bytes) -> int:
    """An upper bound on the values (and keys) in a JSON body: each but the first follows a
    ``,`` ``:`` ``[`` or ``{``. Counting them is a few milliseconds for 5 MB."""
    return 1 + sum(body.count(c) for c in (b",", b":", b"[", b"{"))


def describe_validation_error(exc: ValidationError | InvalidReport) -> str:
    """``results[3].status: Input should be 'passed', 'failed', …`` — the field a CI author must fix."""
    parts = []
    errors = exc.errors() if isinstance(exc, ValidationError) else exc.errors
    for err in errors[:10]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        parts.append(f"{where or 'body'}: {err['msg']}")
    more = len(errors) - 10
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_report_json(body: bytes, now: datetime | None = None) -> Report:
    """Raises ValueError with a message naming the field, for JSON syntax, depth and schema errors.
    ``now`` (the server's clock) bounds ``run.finishedAt``."""
    data = loads_json(body)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object with schemaVersion, run and results")
    if "schemaVersion" not in data:
        raise ValueError("schemaVersion: required (this server accepts schemaVersion 1)")
    if type(data["schemaVersion"]) is not int or data["schemaVersion"] != 1:
        raise ValueError(
            f"schemaVersion: unsupported version {data['schemaVersion']!r:.40}; this server accepts the integer 1"
        )
    try:
        # loads_json made every string storable: the models need not look again
        return validate_report(data, {"now": now, "storable_text": True})
    except InvalidReport as exc:
        raise ValueError(describe_validation_error(exc)) from None


def run_info_from_query(request: Request, now: datetime | None = None) -> RunInfo:
    """JUnit carries no run metadata, so CI passes it as query parameters (camelCase, as in v1)."""
    try:
        return RunInfo.model_validate(dict(request.query_params), context={"now": now})
    except ValidationError as exc:
        raise ValueError("query parameters: " + describe_validation_error(exc)) from exc


def routes(runtime: Runtime) -> list[Route]:
    preload(__name__)  # a large report is parsed by parse_report_json in a forked child

    async def authenticated_body(request: Request) -> bytes | Response:
        try:
            body = await read_capped(request, runtime.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return too_large(exc)
        key = secret(runtime.settings.ingest_secret)
        if key is None:
            return problem(503, "ingest is disabled: set TRIAGE_INGEST_SECRET on the server")
        if not request.headers.get(SIGNATURE_HEADER):
            return problem(401, "missing X-Triage-Signature header (sha256=<hex HMAC-SHA256 of the body>)")
        if not verify(body, request.headers.get(SIGNATURE_HEADER), key):
            return problem(401, "X-Triage-Signature does not match the body (wrong secret or altered body)")
        return body

    async def accept(
        request: Request, parse: Callable[[bytes], Report], source: str, *, in_thread: Callable[[bytes], bool]
    ) -> Response:
        body = await authenticated_body(request)
        if isinstance(body, Response):
            return body
        try:
            # Parsing holds the GIL for as long as each C call runs: in a thread when no call is
            # long, else in a child process (see slackbot.clients.isolated).
            if in_thread(body):
                report = await asyncio.to_thread(parse, body)
            else:
                report = await off_loop(parse, body, size=len(body))
        except (ValueError, JUnitError) as exc:
            return problem(400, str(exc))

        def ingest() -> Response:
            try:
                ingested = runtime.ingest.ingest_report(runtime.engine, report, source=source)
                # rendered here too: 8,000 new incidents are 1.5 MB of JSON, tens of ms off the loop
                return JSONResponse(ingested.as_json(), status_code=202)
            finally:
                # else the last reference goes with this coroutine's frame, on the loop: freeing
                # 100,000 results is one C call, 35 ms that hold the GIL
                free_in_pieces(report.results)

        response = await asyncio.to_thread(ingest)
        runtime.notify_committed()
        return response

    async def ingest_report(request: Request) -> Response:
        parse = partial(parse_report_json, now=runtime.clock.now())
        return await accept(
            request, parse, "api", in_thread=lambda body: json_values_at_most(body) <= THREAD_JSON_VALUES
        )

    async def ingest_junit(request: Request) -> Response:
        try:
            run = run_info_from_query(request, runtime.clock.now())
        except ValueError as exc:
            return problem(400, str(exc))
        parse = partial(parse_junit, run=run, invariant_prefixes=runtime.invariant_prefixes)
        return await accept(request, parse, "junit", in_thread=lambda _: False)

    return [
        Route("/ingest/report", ingest_report, methods=["POST"]),
        Route("/ingest/junit", ingest_junit, methods=["POST"]),
    ]
