"""``POST /webhooks/github``: verify, de-duplicate, queue, answer 202 — the work happens after.

GitHub gives a delivery 10 seconds and never redelivers by itself, so this route does only what
must happen before the answer: check ``X-Hub-Signature-256`` over the raw body, and record the
``X-GitHub-Delivery`` id together with a ``github_run`` outbox job in one transaction. A
redelivery (same id) is answered 200 without a second job. Everything else — artifacts, unzip,
ingest, validation evidence — runs from the outbox (``slackbot.sources.github``).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from handlers.http.body import BodyTooLarge, loads_json, problem, read_capped, too_large
from slackbot.runtime import Runtime
from slackbot.settings import secret
from slackbot.signing import verify
from slackbot.sources.github import GitHubRunService, WebhookError, WorkflowRun


def routes(runtime: Runtime) -> list[Route]:
    service = GitHubRunService(
        runtime.playbooks, runtime.clock, runtime.ingest, report_artifact=runtime.settings.github_report_artifact
    )

    async def webhook(request: Request) -> Response:
        try:
            body = await read_capped(request, runtime.settings.max_body_bytes)
        except BodyTooLarge as exc:
            return too_large(exc)
        key = secret(runtime.settings.github_webhook_secret)
        if key is None:
            return problem(503, "the GitHub webhook is disabled: set GITHUB_WEBHOOK_SECRET on the server")
        signature = request.headers.get("x-hub-signature-256")
        if not signature:
            return problem(401, "missing X-Hub-Signature-256 header (set the webhook's secret in GitHub)")
        if not verify(body, signature, key):
            return problem(401, "X-Hub-Signature-256 does not match the body (wrong secret or altered body)")
        event = request.headers.get("x-github-event", "")
        if event == "ping":
            return JSONResponse({"ok": True, "message": "pong"})
        if event != "workflow_run":
            return JSONResponse({"ignored": f"event {event or '(none)'}: only workflow_run is used"})
        delivery = request.headers.get("x-github-delivery", "").strip()
        if not delivery:
            return problem(400, "missing X-GitHub-Delivery header")
        try:
            payload = loads_json(body)
        except ValueError as exc:
            return problem(400, f"{exc} (send application/json, not a form)")
        if isinstance(payload, dict) and payload.get("action") != "completed":
            action = str(payload.get("action"))[:40]
            return JSONResponse({"ignored": f"action {action!r}: only completed runs are used"})
        try:
            run = WorkflowRun.from_webhook(payload)
        except WebhookError as exc:
            return problem(400, str(exc))
        if not service.wants(run):
            return JSONResponse({"ignored": f"conclusion {run.conclusion!r}", "run": run.label})
        if not await asyncio.to_thread(service.accept, runtime.engine, delivery, run):
            return JSONResponse({"duplicate": True, "delivery": delivery})
        runtime.notify_committed()
        action = "validate" if run.conclusion == "success" else "ingest"
        return JSONResponse({"accepted": delivery, "run": run.label, "action": action}, status_code=202)

    return [Route("/webhooks/github", webhook, methods=["POST"])]
