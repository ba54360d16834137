"""What the process logs, and what it never logs: request bodies and secrets.

Bolt writes request bodies into some of its messages: every request with a bad signature at INFO
(one unauthenticated 400 MB POST became a 419 MB log line), and parts of bodies in its "unhandled
request" warnings. Its loggers get :class:`NoRequestBodies` through the base logger the app is
built with (Bolt copies a base logger's filters to every logger it creates); the server adds the
same filter to its log handlers, so a record from any library is cut the same way.
"""

from __future__ import annotations

import logging

# Where a body starts in the messages of Bolt and slack_sdk (signature failures, unhandled
# requests, middleware that skipped next(), socket-mode results, their documented examples).
BODY_MARKERS = ("body: ", "Body: ", "for the request (", "Unhandled request (")
MAX_MESSAGE = 2000
BOLT_LOGGER = "slackbot.bolt"


class NoRequestBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is a library's bug; pass it on untouched
            return True
        cut = min((i + len(m) for m in BODY_MARKERS if (i := message.find(m)) >= 0), default=-1)
        if cut >= 0:
            record.msg, record.args = message[:cut] + "<request body not logged>", None
        elif len(message) > MAX_MESSAGE:
            record.msg, record.args = message[:MAX_MESSAGE] + f"… ({len(message)} characters)", None
        return True


def bolt_logger() -> logging.Logger:
    """The base logger for the Bolt app (``AsyncApp(logger=…)``)."""
    logger = logging.getLogger(BOLT_LOGGER)
    if not any(isinstance(f, NoRequestBodies) for f in logger.filters):
        logger.addFilter(NoRequestBodies())
    return logger


def configure_logging(level: int = logging.INFO) -> None:
    """``triagebot serve``: one line per record, bodies cut, and no full URLs of outgoing requests
    (artifact downloads are redirected to storage URLs whose query string is a signed credential)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, NoRequestBodies) for f in handler.filters):
            handler.addFilter(NoRequestBodies())
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
