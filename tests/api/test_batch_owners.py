"""Whose a batch is: the ``owner`` field, and ``GET /batches?owner=NAME`` for admins and members."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.settings import Settings
from support.accounts import TINY_CSV, Accounts, open_accounts

#: A header the orders dataset does not have: the batch ends validation_failed.
WRONG_HEADER = b"nope\n1\n"


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        created = await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)
        assert created.status_code == 201, created.text
        await accounts.add_user("alice", "member")
        await accounts.add_user("bob", "member")
        yield accounts


async def _finished_upload(acc: Accounts, who: str, body: bytes = TINY_CSV) -> str:
    created = await acc.upload(who, body)
    await acc.finished(who, created["batch"])
    return str(created["batch"])


async def _listed(acc: Accounts, who: str, **params: Any) -> list[dict[str, Any]]:
    response = await acc.call(who, "GET", "/batches", params=params)
    assert response.status_code == 200, response.text
    batches: list[dict[str, Any]] = response.json()["batches"]
    return batches


async def _all_pages(acc: Accounts, who: str, **params: Any) -> list[list[str]]:
    """The ids on each page, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await acc.call(who, "GET", "/batches", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([b["batch"] for b in body["batches"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages


async def test_every_batch_response_names_its_owner(acc: Accounts) -> None:
    upload = await acc.upload("alice")
    assert upload["owner"] == "alice"
    from_urls = await acc.call(
        "bob", "POST", "/batches", json={"dataset": "orders", "sources": ["http://127.0.0.1:9/a"]}
    )
    assert from_urls.status_code == 202, from_urls.text
    assert from_urls.json()["owner"] == "bob"

    done = await acc.finished("alice", upload["batch"])
    assert done["owner"] == "alice"
    as_admin = await acc.call("admin", "GET", f"/batches/{upload['batch']}")
    assert as_admin.json()["owner"] == "alice"
    events = await acc.call("alice", "GET", f"/batches/{upload['batch']}/events")
    assert '"owner":"alice"' in events.text
    deleting = await acc.call("admin", "DELETE", f"/batches/{upload['batch']}")
    assert deleting.status_code == 202
    assert (deleting.json()["status"], deleting.json()["owner"]) == ("deleting", "alice")
    history = await acc.call("bob", "GET", f"/batches/{from_urls.json()['batch']}/history")
    assert "owner" not in history.json()[0]


async def test_admin_sees_owners_and_lists_one_users_batches(acc: Accounts) -> None:
    alices = [await _finished_upload(acc, "alice") for _ in range(2)]
    bobs = [await _finished_upload(acc, "bob")]
    admins = [await _finished_upload(acc, "admin")]

    everything = await _listed(acc, "admin")
    owners = {b["batch"]: b["owner"] for b in everything}
    assert owners == {
        **dict.fromkeys(alices, "alice"),
        **dict.fromkeys(bobs, "bob"),
        **dict.fromkeys(admins, "admin"),
    }
    only_alice = await _listed(acc, "admin", owner="alice")
    assert [b["batch"] for b in only_alice] == alices[::-1]
    assert [b["batch"] for b in await _listed(acc, "admin", owner="bob")] == bobs
    assert await _listed(acc, "admin", owner="nobody") == []


async def test_a_member_can_only_narrow_to_themselves(acc: Accounts) -> None:
    alices = [await _finished_upload(acc, "alice") for _ in range(2)]
    bobs = [await _finished_upload(acc, "bob")]
    await _finished_upload(acc, "admin")

    own = await _listed(acc, "alice")
    assert [b["batch"] for b in own] == alices[::-1]
    assert {b["owner"] for b in own} == {"alice"}
    assert [b["batch"] for b in await _listed(acc, "alice", owner="alice")] == alices[::-1]

    names = ("bob", "admin", "nobody")
    others = [await acc.call("alice", "GET", "/batches", params={"owner": n}) for n in names]
    # Another user's name answers exactly like a name no user has: nothing to probe.
    assert [(r.status_code, r.json()) for r in others] == [
        (200, {"batches": [], "next_cursor": None})
    ] * 3
    assert [b["batch"] for b in await _listed(acc, "bob", owner="bob")] == bobs


async def test_owner_filter_with_status_dataset_and_small_pages(acc: Accounts) -> None:
    completed = [await _finished_upload(acc, "alice") for _ in range(3)]
    rejected = await _finished_upload(acc, "alice", WRONG_HEADER)
    for _ in range(2):
        await _finished_upload(acc, "bob")
    await _finished_upload(acc, "bob", WRONG_HEADER)

    for who in ("admin", "alice"):
        pages = await _all_pages(acc, who, owner="alice", status="completed", limit=2)
        assert pages == [completed[:0:-1], completed[:1]], who
        every = await _all_pages(acc, who, owner="alice", dataset="orders", limit=1)
        assert every == [[batch_id] for batch_id in [rejected, *completed[::-1]]], who
    failed = await _listed(acc, "admin", owner="alice", status="validation_failed")
    assert [(b["batch"], b["owner"]) for b in failed] == [(rejected, "alice")]
    assert await _all_pages(acc, "bob", owner="alice", status="completed", limit=2) == [[]]
    assert await _listed(acc, "admin", owner="alice", dataset="items") == []


async def test_openapi_documents_the_owner_filter_and_field(acc: Accounts) -> None:
    spec = (await acc.call("none", "GET", "/openapi.json")).json()
    params = {p["name"]: p for p in spec["paths"]["/batches"]["get"]["parameters"]}
    assert "another user's name lists nothing" in params["owner"]["description"]
    batch = spec["components"]["schemas"]["BatchPublic"]
    assert "owner" in batch["required"] and "owner" in batch["properties"]
