"""Per-request bookkeeping around every route: the request id, and the HTTP metrics.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware), so streamed answers — event
streams, result files — pass through untouched and are timed to their last byte.
"""

from __future__ import annotations

import random
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batchyard import log_context, metrics

#: The header a request id arrives and leaves in (a proxy's id is kept when it is sane).
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Names each request (``X-Request-ID``, in its log lines too) and counts it by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = log_context.request_id.set(request_id)
        started = time.monotonic()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_context.request_id.reset(token)
            _count(scope, status, time.monotonic() - started)


def _request_id(scope: Scope) -> str:
    """The proxy's id when it is sane, else a random one (a UUID4, as before).

    From ``random``, not ``uuid.uuid4()``: that reads ``os.urandom``, a system call for which
    the event loop lets go of the GIL on every request, and while an import's threads run
    Python it waits to get it back. An id names a request in the log; it guards nothing.
    """
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = str(value.decode("latin-1"))
            if _SANE_ID.match(given):
                return given
    return uuid.UUID(int=random.getrandbits(128), version=4).hex


#: The metric series of each (method, route, status) seen, so a request does not look its
#: labels up again (``labels()`` takes a lock and checks every label). Bounded: routes are
#: templates, and statuses few.
_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _count(scope: Scope, status: int, seconds: float) -> None:
    """By route template (``/batches/{batch_id}``), never the raw path: ids would make every
    request a series of its own."""
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    method = str(scope["method"])
    series = _series.get((method, route, status))
    if series is None:
        series = (
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            metrics.HTTP_SECONDS.labels(method=method, route=route),
        )
        _series[(method, route, status)] = series
    requests, durations = series
    requests.inc()
    durations.observe(seconds)
