"""An httpx client that connects only where ``Reach`` allows, to the very address it checked.

The host is resolved once, inside the connection: every address it resolves to is checked, and
the socket is opened to a checked address while the Host header and TLS SNI keep the name.
Nothing resolves the name a second time, so DNS rebinding has no window; each redirect hop is a
new request and passes the same check. Environment proxies are ignored, since through a proxy
the proxy, not batchyard, would choose the address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import httpcore
import httpx

from batchyard.pipeline.addresses import AddressNotAllowed, IPAddress, Reach, address_of
from batchyard.settings import Settings

__all__ = [
    "AddressNotAllowed",
    "GuardedBackend",
    "GuardedTransport",
    "guarded_client",
    "reach_of",
]

_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking the host before it connects."""

    def __init__(self, reach: Reach, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._reach = reach
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        self._reach.check(host, addresses)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # _resolve never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from here")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host``, in the resolver's order, without duplicates."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise httpcore.ConnectError(f"host {host} could not be resolved ({reason})") from error
    addresses = list(dict.fromkeys(address_of(info[4][0]) for info in infos))
    if not addresses:
        raise httpcore.ConnectError(f"host {host} has no address")
    return addresses


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport whose connection pool connects through a GuardedBackend.

    httpx offers no parameter for the network backend, so the pool it built is replaced by one
    with the same settings; tests/integration/test_sources.py checks that it still takes effect.
    """

    def __init__(self, reach: Reach) -> None:
        super().__init__(limits=_LIMITS, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=GuardedBackend(reach),
        )


def guarded_client(
    reach: Reach, *, timeout: httpx.Timeout, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """The client for every request batchyard makes on a user's behalf (sources, webhooks)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(reach),
        timeout=timeout,
        headers=headers,
        trust_env=False,
        follow_redirects=False,
    )


def reach_of(settings: Settings) -> Reach:
    """Where this server's outbound requests may go: BATCHYARD_ALLOW_PRIVATE_SOURCES and
    BATCHYARD_TRUSTED_NETWORKS."""
    return Reach.of(settings.allow_private_sources, settings.trusted_networks)
