"""One TLS context per process for the bot's outgoing HTTP clients.

Loading the CA bundle is one C call of 20-100 ms; each client used to load its own (four per
process start: GitHub's runs, compares and issues, PagerDuty). A context is safe to share between
clients and threads.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx


@cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
