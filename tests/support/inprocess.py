"""A synchronous httpx transport that runs an ASGI app in-process, for the blocking SDK client.

httpx's ASGITransport is async-only; this one runs the app (and its lifespan, so the embedded
runner) on an event loop in a background thread and hands each request over to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal


class PortalTransport(httpx.BaseTransport):
    def __init__(self, portal: BlockingPortal, app: Any) -> None:
        self.portal = portal
        self.inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()  # test payloads are small; the real-server tests stream

        async def send() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self.inner.handle_async_request(forwarded)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self.portal.call(send)


@contextmanager
def sync_transport(app: Any) -> Iterator[PortalTransport]:
    """The app started (lifespan entered) on a background loop, and a transport to reach it."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        yield PortalTransport(portal, app)
