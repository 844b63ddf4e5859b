"""Address normalisation and the reach policy: every spelling of an internal address is caught."""

from __future__ import annotations

import ipaddress

import pytest

from batchyard.pipeline.addresses import AddressNotAllowed, Reach, is_public, literal_address

LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
        ("fe80::1%25eth0", "fe80::1"),
        ("169.254.169.254", "169.254.169.254"),
        ("93.184.215.14", "93.184.215.14"),
    ],
)
def test_literal_addresses_in_any_spelling(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "localhost", "127.0.0.1.nip.io", "1.2.3.4.5", ""])
def test_host_names_are_not_literals(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 to 127.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::"]
)
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_reach_refuses_every_private_address_unless_allowed() -> None:
    with pytest.raises(AddressNotAllowed, match=r"0x7f\.1 is 127\.0\.0\.1, which is not a public"):
        Reach().check_literal("0x7f.1")
    Reach(allow_private=True).check_literal("0x7f.1")
    Reach().check_literal("example.com")  # names are checked on connect, not here


def test_reach_refuses_a_name_when_any_of_its_addresses_is_private() -> None:
    public = ipaddress.ip_address("93.184.215.14")
    with pytest.raises(AddressNotAllowed):
        Reach().check("rebind.example", [public, LOOPBACK])
    Reach().check("example.com", [public])


def test_trusted_networks_open_only_themselves() -> None:
    reach = Reach.of(False, "127.0.0.1/32, 10.20.0.0/16")
    reach.check_literal("127.0.0.1")
    reach.check_literal("10.20.3.4")
    for host in ["127.0.0.2", "10.21.0.1", "169.254.169.254", "[::1]"]:
        with pytest.raises(AddressNotAllowed):
            reach.check_literal(host)
