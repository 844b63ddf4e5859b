"""Idempotency-Key on POST /batches: retries return the first batch, even when they race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.settings import Settings
from batchyard.store.tables import batches
from support.accounts import TINY_CSV, Accounts, open_accounts
from support.servers import FileServer


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        assert (await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await accounts.add_user("alice", "member")
        await accounts.add_user("bob", "member")
        yield accounts


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "files"
    root.mkdir()
    (root / "orders.csv").write_bytes(TINY_CSV)
    with FileServer(root) as server:
        yield server


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def post_urls(acc: Accounts, who: str, key: str, url: str, **extra: object) -> httpx.Response:
    body = {"dataset": "orders", "sources": [url], **extra}
    return await acc.call(who, "POST", "/batches", json=body, headers=keyed(key))


async def post_upload(acc: Accounts, who: str, key: str, **params: str) -> httpx.Response:
    return await acc.call(
        who,
        "POST",
        "/batches",
        params={"dataset": "orders", **params},
        content=TINY_CSV,
        headers={"Content-Type": "application/octet-stream", **keyed(key)},
    )


async def own_batch_ids(acc: Accounts, who: str) -> list[str]:
    listed = await acc.call(who, "GET", "/batches", params={"limit": 500})
    return [b["batch"] for b in listed.json()["batches"]]


async def test_a_retry_returns_the_first_batch(acc: Accounts, files: FileServer) -> None:
    first = await post_urls(acc, "alice", "k-1", f"{files.url}/orders.csv")
    again = await post_urls(acc, "alice", "k-1", f"{files.url}/orders.csv")
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["batch"] == first.json()["batch"]

    upload = await post_upload(acc, "alice", "k-2")
    upload_again = await post_upload(acc, "alice", "k-2")
    assert (upload.status_code, upload_again.status_code) == (202, 200)
    assert upload_again.json()["batch"] == upload.json()["batch"]
    assert sorted(await own_batch_ids(acc, "alice")) == sorted(
        [first.json()["batch"], upload.json()["batch"]]
    )


async def test_same_key_for_a_different_request_is_a_conflict(
    acc: Accounts, files: FileServer
) -> None:
    url = f"{files.url}/orders.csv"
    assert (await post_urls(acc, "alice", "k", url)).status_code == 202
    changed = await post_urls(acc, "alice", "k", url, options={"max_errors": 3})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    as_upload = await post_upload(acc, "alice", "k")
    assert as_upload.status_code == 409
    assert len(await own_batch_ids(acc, "alice")) == 1


async def test_keys_belong_to_their_user(acc: Accounts, files: FileServer) -> None:
    url = f"{files.url}/orders.csv"
    mine = await post_urls(acc, "alice", "shared", url)
    theirs = await post_urls(acc, "bob", "shared", url)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["batch"] != theirs.json()["batch"]


async def test_keys_are_kept_beyond_a_day(acc: Accounts, files: FileServer) -> None:
    first = await post_urls(acc, "alice", "old", f"{files.url}/orders.csv")
    async with acc.services.store.begin() as conn:
        await conn.execute(sa.update(batches).values(created_ts=batches.c.created_ts - 25 * 3600))
    later = await post_urls(acc, "alice", "old", f"{files.url}/orders.csv")
    assert later.status_code == 200 and later.json()["batch"] == first.json()["batch"]


@pytest.mark.parametrize("form", ["urls", "upload"])
async def test_concurrent_duplicates_create_exactly_one_batch(
    acc: Accounts, files: FileServer, form: str
) -> None:
    async def once() -> httpx.Response:
        if form == "urls":
            return await post_urls(acc, "alice", "race", f"{files.url}/orders.csv")
        return await post_upload(acc, "alice", "race")

    responses = await asyncio.gather(*(once() for _ in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [202], [r.text for r in responses]
    assert len({r.json()["batch"] for r in responses}) == 1
    assert await own_batch_ids(acc, "alice") == [responses[0].json()["batch"]]
