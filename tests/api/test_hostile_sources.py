"""Hostile sources and webhook receivers (local servers on 127.0.0.1) against the real pipeline.

Each attack ends in a prompt, specific outcome: refused at create, or the batch ``failed`` with a
code at the head of its message and no traceback in its log; nothing inflates before a limit,
and nothing slow holds a runner or delivery slot that another user is waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.settings import Settings
from support.accounts import Accounts, open_accounts
from support.hostile_http import HostileServer, closed_port
from support.receiver import Receiver

MIB = 2**20


@pytest.fixture
def backend() -> str:
    """What a source does to the server does not depend on the metadata database."""
    return "sqlite"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer(interval=0.3, inner_bytes=128 * MIB) as server:
        yield server


@contextlib.asynccontextmanager
async def members(settings: Settings, **changes: Any) -> AsyncIterator[Accounts]:
    """The app with ``changes`` to its settings, the orders dataset, and members alice and bob."""
    async with open_accounts(settings.model_copy(update=changes)) as acc:
        assert (await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await acc.add_user("alice", "member")
        await acc.add_user("bob", "member")
        yield acc


async def fetch(acc: Accounts, who: str, url: str, **extra: Any) -> dict[str, Any]:
    """Create a batch of one URL source as ``who``; 202 expected."""
    body = {"dataset": "orders", "sources": [url], **extra}
    response = await acc.call(who, "POST", "/batches", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


async def failed_with(acc: Accounts, batch: dict[str, Any], code: str) -> str:
    """Wait for the batch to fail with ``code``; its message, checked to be plain."""
    ended = await acc.finished("alice", batch["batch"])
    message = str(ended["error_message"])
    assert (ended["status"], message.partition(":")[0]) == ("failed", code), ended
    assert "internal error" not in message
    log = (await acc.call("alice", "GET", f"/batches/{batch['batch']}/log")).text
    assert "Traceback" not in log and "internal error" not in log, log
    return message


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def test_stacked_encodings_are_refused_before_anything_is_inflated(
    settings: Settings, hostile: HostileServer
) -> None:
    async with members(settings) as acc:
        peak = peak_rss_bytes()
        batch = await fetch(acc, "alice", f"{hostile.url}/stacked")
        message = await failed_with(acc, batch, "source_encoding_unsupported")
        assert "'gzip, gzip'" in message
        assert peak_rss_bytes() - peak < 64 * MIB  # 128 MiB inside: none of it was inflated


async def test_one_gzip_layer_is_stored_as_the_gzip_file_it_is(
    settings: Settings, hostile: HostileServer
) -> None:
    async with members(settings) as acc:
        batch = await fetch(acc, "alice", f"{hostile.url}/gzip/orders.csv")
        ended = await acc.finished("alice", batch["batch"])
    assert (ended["status"], ended["successful_operations"]) == ("completed", 1), ended


async def test_a_trickling_source_is_cut_off_and_frees_its_slot(
    settings: Settings, hostile: HostileServer
) -> None:
    """Two trickling sources hold both runner slots only until the minimum rate cuts them."""
    limits = {"source_min_bytes_per_second": 1000, "source_rate_window_seconds": 1.0}
    async with members(settings, concurrent_batches=2, **limits) as acc:
        slow = [await fetch(acc, "alice", f"{hostile.url}/trickle/{n}") for n in (1, 2)]
        started = time.monotonic()
        quick = await acc.upload("bob")
        done = await acc.finished("bob", quick["batch"], within=30)
        assert done["status"] == "completed"
        assert time.monotonic() - started < 20
        message = await failed_with(acc, slow[0], "source_timeout")
    assert "sent fewer than 1000 bytes per second over 1 s" in message


async def test_a_source_is_cut_off_at_its_whole_transfer_deadline(
    settings: Settings, hostile: HostileServer
) -> None:
    limits = {"source_min_bytes_per_second": 0, "source_deadline_seconds": 1.5}
    async with members(settings, **limits) as acc:
        batch = await fetch(acc, "alice", f"{hostile.url}/trickle/forever")
        message = await failed_with(acc, batch, "source_timeout")
    assert "did not arrive within 1.5 s" in message


async def test_sources_that_cannot_be_fetched_fail_with_a_code_and_a_plain_message(
    settings: Settings, hostile: HostileServer
) -> None:
    cases = {
        f"http://127.0.0.1:{closed_port()}/a.csv": ("source_unreachable", "could not be fetched"),
        f"{hostile.url}/nothing-here": ("source_http_error", "returned 404 Not Found"),
        "http://no-such-host.invalid/a.csv": ("source_unreachable", "could not be resolved"),
        f"https://127.0.0.1:{hostile.port}/file/a.csv": ("source_unreachable", "SSL"),
    }
    async with members(settings) as acc:
        batches = {url: await fetch(acc, "alice", url) for url in cases}
        for url, (code, words) in cases.items():
            message = await failed_with(acc, batches[url], code)
            assert words in message, message


SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "127.1",
    "0177.0.0.1",
    "0x7f.1",
    "[::ffff:127.0.0.1]",
    "[::1]",
    "0.0.0.0",
    "169.254.169.254",
    "10.0.0.1",
]


async def test_private_addresses_in_any_spelling_are_refused_at_create(settings: Settings) -> None:
    async with open_accounts(settings.model_copy(update={"allow_private_sources": False})) as acc:
        assert (await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        for host in SPELLINGS:
            body = {"dataset": "orders", "sources": [f"http://{host}:8080/a.csv"]}
            response = await acc.call("admin", "POST", "/batches", json=body)
            assert response.status_code == 422, (host, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_source", (host, error)
            assert "not a public address" in error["message"]
        listed = await acc.call("admin", "GET", "/batches")
    assert listed.json()["batches"] == []


async def test_a_name_that_resolves_to_loopback_is_refused_on_connect(
    settings: Settings, hostile: HostileServer
) -> None:
    async with members(settings, allow_private_sources=False) as acc:
        batch = await fetch(acc, "alice", f"http://localhost:{hostile.port}/file/a.csv")
        message = await failed_with(acc, batch, "invalid_source")
    assert "which is not a public address" in message
    assert hostile.hits.total() == 0


@pytest.mark.parametrize("inside", ["http://169.254.169.254/latest/meta-data/", "127.0.0.2"])
async def test_a_redirect_to_a_private_address_is_refused(
    settings: Settings, hostile: HostileServer, inside: str
) -> None:
    """Only the hostile server's own address is trusted; where it redirects to is not."""
    target = inside if "://" in inside else f"http://{inside}:{hostile.port}/file/a.csv"
    trusted = {"allow_private_sources": False, "trusted_networks": "127.0.0.1/32"}
    async with members(settings, **trusted) as acc:
        batch = await fetch(acc, "alice", f"{hostile.url}/to/{target}")
        message = await failed_with(acc, batch, "invalid_source")
    assert "which is not a public address" in message
    assert hostile.hits["/file/a.csv"] == 0


async def test_a_slow_webhook_receiver_is_cut_off_at_the_attempt_deadline(
    settings: Settings, hostile: HostileServer
) -> None:
    async with members(settings, webhook_timeout=1.0, webhook_attempts=1) as acc:
        batch = await acc.upload("alice", notify_url=f"{hostile.url}/slow-headers/")
        started = time.monotonic()
        while "given up" not in (log := await webhook_log(acc, batch["batch"])):
            assert time.monotonic() - started < 20, log
            await asyncio.sleep(0.1)
    assert "failed: no answer within 1 s" in log


async def test_slow_webhook_receivers_do_not_delay_other_users_webhooks(
    settings: Settings, hostile: HostileServer
) -> None:
    """Eight receivers of alice's trickle their headers (enough for every delivery slot), each
    held up to the 30 s attempt deadline: bob's webhook arrives all the same, at once."""
    async with members(settings, webhook_timeout=30.0, webhook_attempts=1) as acc:
        hooks = [f"{hostile.url}/slow-headers/{n}" for n in range(8)]
        slow = [await acc.upload("alice", notify_url=hook) for hook in hooks]
        for batch in slow:
            await acc.finished("alice", batch["batch"])
        with Receiver() as receiver:
            mine = await acc.upload("bob", notify_url=receiver.url)
            await acc.finished("bob", mine["batch"])
            started = time.monotonic()
            while not receiver.succeeded():
                assert time.monotonic() - started < 10, "bob's webhook was held up"
                await asyncio.sleep(0.05)
        assert "given up" not in await webhook_log(acc, slow[0]["batch"])  # still trickling


async def webhook_log(acc: Accounts, batch_id: str) -> str:
    return (await acc.call("alice", "GET", f"/batches/{batch_id}/log")).text


async def test_an_endless_body_stops_at_the_size_limit(
    settings: Settings, hostile: HostileServer
) -> None:
    async with members(settings, max_upload_bytes=2 * MIB) as acc:
        batch = await fetch(acc, "alice", f"{hostile.url}/endless")
        message = await failed_with(acc, batch, "payload_too_large")
    assert f"larger than this server accepts ({2 * MIB} bytes in all)" in message
