"""An idle kept-alive connection stays open longer than clients keep one in their pool, so a
client reusing it is never answered by the server closing it ("Server disconnected")."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from support.servers import BatchyardServer


def test_a_connection_idle_longer_than_an_httpx_pool_keeps_one_is_still_served(
    server: BatchyardServer,
) -> None:
    address = urlsplit(server.url)
    conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        conn.request("GET", "/health")
        assert conn.getresponse().read() and conn.sock is not None
        opened = conn.sock
        # The idle time is what is tested: past httpx's 5 s expiry (and uvicorn's default).
        time.sleep(6)
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        assert conn.sock is opened  # the same connection, not a new one
    finally:
        conn.close()
