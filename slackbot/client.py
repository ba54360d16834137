"""Sending a report to a running bot: what ``triagebot send`` and the demo do, signed and retried."""

from __future__ import annotations

import time
from typing import Any

import httpx

from slackbot.signing import sign
from slackbot.sources.junit import looks_like_junit


class SendError(Exception):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def send_report(
    body: bytes,
    server: str,
    secret: str,
    *,
    params: dict[str, Any] | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    sleep: Any = time.sleep,
) -> dict[str, Any]:
    """POST to /ingest/report or /ingest/junit; retry 5xx and connection errors, never 4xx."""
    junit = looks_like_junit(body)
    url = server.rstrip("/") + ("/ingest/junit" if junit else "/ingest/report")
    headers = {
        "X-Triage-Signature": sign(body, secret),
        "Content-Type": "application/xml" if junit else "application/json",
    }
    response: httpx.Response | None = None
    for attempt in range(retries + 1):
        try:
            response = httpx.post(url, content=body, headers=headers, params=params or {}, timeout=timeout)
        except httpx.HTTPError as exc:
            if attempt == retries:
                raise SendError(f"could not reach {url}: {exc}") from exc
            sleep(min(2**attempt, 10))
            continue
        if response.status_code >= 500 and attempt < retries:
            sleep(min(2**attempt, 10))
            continue
        break
    assert response is not None
    if response.status_code >= 400:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise SendError(f"{response.status_code}: {message}", status=response.status_code)
    result: dict[str, Any] = response.json()
    return result
