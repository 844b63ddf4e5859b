"""The server's and workers' log setup: one format, and no secrets from HTTP client libraries."""

from __future__ import annotations

import logging

#: Loggers of the HTTP client libraries: at INFO and below they write every request URL, with
#: the user info and query strings (passwords, presigned signatures) of sources and webhooks.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging(level: str) -> None:
    """Log at ``level`` to stderr; the HTTP client libraries only ever log warnings and errors."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet = max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
