"""HMAC-SHA256 body signatures: ``sha256=<hex>`` over the raw bytes.

The same scheme serves our ``X-Triage-Signature`` and GitHub's ``X-Hub-Signature-256``, so one
function signs in ``triagebot send`` and verifies in both routes.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secret: str) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(body, secret), header.strip())
