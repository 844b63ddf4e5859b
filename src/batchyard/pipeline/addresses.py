"""Which network addresses batchyard may reach on a user's behalf (no server-side request forgery).

Only public unicast addresses, unless the operator allows private ones (all of them, or a few
trusted networks). A host is read the way the HTTP client and the OS will read it: getaddrinfo
accepts inet_aton's shorthands (``127.1``, ``0x7f.1``, ``0177.0.0.1``, ``2130706433``), and an
IPv6 address may carry an IPv4 one inside (``::ffff:127.0.0.1``, 6to4, NAT64), so each of those
spellings is the address it names, not a host name to wave through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Not global, though Python's tables call some of them so (IETF protocol assignments).
_NEVER_PUBLIC = (ipaddress.ip_network("192.0.0.0/24"),)
#: IPv6 prefixes whose last 32 bits are an IPv4 address the packet ends up at.
_IPV4_INSIDE = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated, still parsed)
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64
)


class AddressNotAllowed(Exception):
    """The host is, or resolves to, an address that is not public (and not allowed here)."""

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host = host
        self.address = address
        super().__init__(f"{host} is {address}, which is not a public address")


@dataclass(frozen=True)
class Reach:
    """The addresses outbound requests may connect to.

    ``allow_private`` lets everything through (tests, trusted networks); otherwise public
    addresses and those inside ``trusted`` networks only.
    """

    allow_private: bool = False
    trusted: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, allow_private: bool, trusted: str | None = None) -> Reach:
        """From the settings: the flag and a comma-separated list of networks (CIDR)."""
        networks = tuple(
            ipaddress.ip_network(part.strip(), strict=False)
            for part in (trusted or "").split(",")
            if part.strip()
        )
        return cls(allow_private, networks)

    def allows(self, address: IPAddress) -> bool:
        if self.allow_private or is_public(address):
            return True
        return any(address in network for network in self.trusted)

    def check(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Raise AddressNotAllowed unless every address ``host`` stands for may be reached.

        All of them, not just one: the connection may be made to any of them.
        """
        for address in addresses:
            if not self.allows(address):
                raise AddressNotAllowed(host, address)

    def check_literal(self, host: str) -> None:
        """The check that needs no network: a host that spells an address is that address."""
        address = literal_address(host)
        if address is not None:
            self.check(host, [address])


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells in any form the OS accepts, or None for a host name."""
    name = unquote(host).strip("[]")
    try:
        return ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        pass
    try:  # AI_NUMERICHOST: parse only, never a DNS query
        infos = socket.getaddrinfo(name, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return address_of(infos[0][4][0])


def address_of(sockaddr_host: str | int) -> IPAddress:
    """An address as getaddrinfo gives it (an IPv6 link-local one names its interface after %)."""
    return _unscoped(ipaddress.ip_address(str(sockaddr_host).partition("%")[0]))


def is_public(address: IPAddress) -> bool:
    """A global unicast address; an IPv6 one that carries an IPv4 address is judged by that."""
    inner = _ipv4_inside(address) if isinstance(address, ipaddress.IPv6Address) else None
    if inner is not None:
        return is_public(inner)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not any(address in network for network in _NEVER_PUBLIC)
    )


def _ipv4_inside(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _IPV4_INSIDE):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unscoped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return ipaddress.IPv6Address(address.compressed.partition("%")[0])
    return address
