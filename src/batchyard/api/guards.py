"""Refusals made before a request reaches a route: nothing of the body is read for them.

A declared Content-Length over the largest accepted input is a 413 at once (the client would
otherwise stream gigabytes into a batch that must fail), and a NUL character anywhere in the
path or query is a 422 (PostgreSQL cannot store one, and no name or cursor holds one).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from batchyard.api.errors import error_body


class RequestGuard:
    """ASGI middleware: answers hopeless requests before any route or body read."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope["query_string"]):
            return JSONResponse(
                error_body("invalid_request", "The path or query holds a NUL character"),
                status_code=422,
            )
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return JSONResponse(
                error_body(
                    "payload_too_large",
                    f"The request declares {declared} bytes; this server accepts at most "
                    f"{self.max_body_bytes}",
                    {"max_bytes": self.max_body_bytes, "content_length": declared},
                ),
                status_code=413,
                headers={"Connection": "close"},
            )
        return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            if not text.isdigit():
                return None
            return int(text) if len(text) < 19 else 10**19  # no int() of a 5,000-digit length

    return None
