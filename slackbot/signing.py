"""HMAC-SHA256 body signatures: ``sha256=<hex>`` over the raw bytes, and Slack's ``v0=`` scheme.

The same scheme serves our ``X-Triage-Signature`` and GitHub's ``X-Hub-Signature-256``, so one
function signs in ``triagebot send`` and verifies in both routes. Every comparison is of bytes:
``hmac.compare_digest`` raises TypeError on a ``str`` that is not ASCII, and header values are
whatever a caller sent, so a stray ``é`` must be a wrong signature, not a 500.
"""

from __future__ import annotations

import hashlib
import hmac

SLACK_MAX_AGE_SECONDS = 60 * 5  # Slack's replay window (the same one Bolt applies)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def same_secret(given: str | bytes, expected: str) -> bool:
    """Constant-time equality of a header value and a secret, whatever characters the header holds."""
    raw = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(raw, expected.encode())


def verify(body: bytes, header: str | None, secret: str) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return same_secret(header.strip(), sign(body, secret))


def slack_request_problem(
    body: bytes, timestamp: str | None, signature: str | None, secret: str, now: float
) -> str | None:
    """Why a request claiming to come from Slack is refused, or None when its signature holds.

    Checked before Bolt sees the request so that nothing unsigned reaches Bolt (which logs the
    bodies it refuses) and a malformed timestamp is a 401, not the ValueError slack_sdk raises.
    ``now`` is wall-clock time: Slack signs with its own clock, not ours.
    """
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature header (requests must come from Slack)"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "X-Slack-Request-Timestamp must be a Unix time in seconds"
    if abs(now - int(timestamp)) > SLACK_MAX_AGE_SECONDS:
        return "X-Slack-Request-Timestamp is more than 5 minutes away from the server's time (replayed or clock skew)"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not same_secret(signature.strip(), expected):
        return "X-Slack-Signature does not match the body (wrong signing secret or altered body)"
    return None
