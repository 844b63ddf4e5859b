"""The server's and workers' log setup: text or JSON lines, and no secrets from HTTP clients."""

from __future__ import annotations

import logging
import sys
import time
from typing import Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from batchyard.log_context import ContextFilter

#: Loggers of the HTTP client libraries: at INFO and below they write every request URL, with
#: the user info and query strings (passwords, presigned signatures) of sources and webhooks.
QUIET_LOGGERS = ("httpx", "httpcore")
#: Record attributes renamed in JSON lines, to the names log collectors expect.
_JSON_NAMES = {"asctime": "timestamp", "levelname": "level", "name": "logger"}

LogFormat = Literal["text", "json"]


def configure_logging(level: str, log_format: LogFormat = "text") -> None:
    """Log at ``level`` to stderr; the HTTP client libraries only ever log warnings and errors.

    ``json``: one JSON object per line (timestamp, level, logger, message, and batch_id /
    request_id where known, else null), for log collectors; ``text``: time, level, logger
    and message on one line, for a terminal.
    """
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format)], force=True)
    quiet = max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


def log_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing lines of ``log_format`` to ``stream`` (stderr), context included."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(_json_formatter() if log_format == "json" else _text_formatter())
    return handler


def _text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _json_formatter() -> logging.Formatter:
    formatter = JsonFormatter(
        ["asctime", "levelname", "name", "message", "batch_id", "request_id"],
        rename_fields=_JSON_NAMES,
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's, with terminal colours
    )
    # ISO 8601 in UTC with milliseconds: 2026-01-25T14:07:52.292Z
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter
