"""What an ordinary member who wants to hurt the service can send, answered with a 4xx each time.

Issue 13: NUL characters, forged cursors, broken multipart, schemas that would break later,
huge error messages, 1,000 datasets, and request rates and quotas. Each runs on both backends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.client import AsyncClient
from batchyard.domain.errors import MAX_ERROR_MESSAGE, bounded_message
from batchyard.domain.schema import Dataset
from batchyard.settings import Settings
from batchyard.store import datasets as dataset_rows
from support.accounts import BASE_URL, Accounts, open_accounts


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        assert (await accounts.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await accounts.add_user("mallory", "member")
        yield accounts


async def _batch_count(acc: Accounts) -> int:
    return len((await acc.call("admin", "GET", "/batches")).json()["batches"])


async def test_nul_characters_and_forged_cursors_are_422(acc: Accounts) -> None:
    attacks = [
        ("GET", "/batches", {"params": {"owner": "a\x00b"}}),
        ("GET", "/batches", {"params": {"dataset": "a\x00b"}}),
        ("GET", "/batches", {"params": {"cursor": _cursor([1.0, "a\x00b"])}}),
        ("GET", "/batches", {"params": {"cursor": _cursor([int("9" * 310), "x"])}}),
        ("GET", "/batches", {"params": {"cursor": _cursor([float("nan"), "x"])}}),
        ("GET", "/datasets", {"params": {"cursor": "bm90IGFuIGlkZW50aWZpZXI\x00"}}),
        ("GET", "/datasets", {"params": {"cursor": _cursor("x")}}),
        ("GET", "/datasets/a%00b", {}),
        ("DELETE", "/datasets/a%00b", {}),
        ("POST", "/batches", {"params": {"dataset": "a\x00b"}, "content": b"id\n1\n"}),
    ]
    for method, path, kwargs in attacks:
        response = await acc.call("mallory", method, path, **kwargs)
        assert response.status_code == 422, (method, path, kwargs, response.text)
        assert response.json()["error"]["code"] in {"invalid_request", "invalid_schema"}
    named = await acc.call("admin", "POST", "/datasets", json={**ORDERS_SCHEMA, "name": "a\x00b"})
    assert named.status_code == 422, named.text
    # In a JSON body: no such dataset or role (SQLite), or text PostgreSQL cannot hold.
    urls = {"dataset": "a\x00b", "sources": ["http://x.io/a.csv"]}
    by_url = await acc.call("mallory", "POST", "/batches", json=urls)
    assert by_url.status_code in {404, 422}, by_url.text
    role = await acc.call("admin", "POST", "/users", json={"name": "zed", "role": "a\x00b"})
    assert role.status_code in {404, 422}, role.text


async def test_multipart_that_does_not_parse_leaves_no_batch(acc: Accounts) -> None:
    before = await _batch_count(acc)
    for body in (b"garbage, no boundary anywhere", b"--xyz\r\nContent-Disposition: form-da"):
        response = await acc.call(
            "mallory",
            "POST",
            "/batches",
            params={"dataset": "orders"},
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert response.status_code == 422, response.text
        assert "multipart" in response.json()["error"]["message"]
    assert await _batch_count(acc) == before


#: (column, what the refusal says): each would have broken every later batch, or the table.
_FRAGILE_COLUMNS: list[tuple[dict[str, Any], str]] = [
    ({"name": "n", "type": "integer", "min": "abc"}, "bound 'abc' is not a finite number"),
    ({"name": "n", "type": "float", "max": "nan"}, "is not a finite number"),
    ({"name": "n", "type": "integer", "min": True}, "is not a finite number"),
    ({"name": "n", "type": "integer", "max": int("9" * 400)}, "is not a finite number"),
    ({"name": "d", "type": "date", "min": "2024-13-01"}, "is not a date"),
    ({"name": "t", "type": "timestamp", "max": "yesterday"}, "is not a timestamp"),
    ({"name": "s", "type": "string", "max_length": 1_000_000_000_000}, "max_length"),
    ({"name": "id\n", "type": "integer"}, "column name"),
]


async def test_schemas_that_would_break_later_are_refused(acc: Accounts) -> None:
    for column, reason in _FRAGILE_COLUMNS:
        body = {"name": "fragile", "columns": [column]}
        response = await acc.call("admin", "POST", "/datasets", json=body)
        assert response.status_code == 422, (column, response.text)
        assert response.json()["error"]["code"] == "invalid_schema"
        assert reason in response.json()["error"]["message"], column
    assert (await acc.call("admin", "GET", "/datasets/fragile")).status_code == 404


async def test_dataset_name_ending_in_a_newline_is_refused(acc: Accounts) -> None:
    body = {**ORDERS_SCHEMA, "name": "orders2\n"}
    response = await acc.call("admin", "POST", "/datasets", json=body)
    assert response.status_code == 422
    assert (await acc.call("mallory", "GET", "/datasets/orders2")).status_code == 404


async def test_good_bounds_still_validate_records(acc: Accounts) -> None:
    body = {
        "name": "bounded",
        "columns": [
            {"name": "n", "type": "integer", "min": "1", "max": 10.5},
            {"name": "d", "type": "date", "min": "2024-01-01"},
            {"name": "t", "type": "timestamp", "max": "2030-01-01T00:00:00Z"},
        ],
    }
    assert (await acc.call("admin", "POST", "/datasets", json=body)).status_code == 201
    csv = b"n,d,t\n5,2024-06-01,2025-01-01T00:00:00\n11,2023-12-31,2031-01-01T00:00:00\n"
    batch = await acc.upload("mallory", csv, dataset="bounded")
    done = await acc.finished("mallory", batch["batch"])
    assert (done["status"], done["successful_operations"], done["failed_operations"]) == (
        "completed",
        1,
        1,
    )


async def test_error_message_of_a_wide_header_is_bounded(acc: Accounts) -> None:
    header = ",".join(f"column_{i}" for i in range(5_000))
    batch = await acc.upload("mallory", f"{header}\n".encode())
    done = await acc.finished("mallory", batch["batch"], within=120)
    assert done["status"] in {"validation_failed", "failed"}
    message = done["error_message"]
    # Refused at once by the header cap, with a short message that says why.
    assert len(message) <= MAX_ERROR_MESSAGE
    assert "5000 fields" in message, message
    history = await acc.call("mallory", "GET", f"/batches/{batch['batch']}/history")
    assert len(history.text) < 20 * MAX_ERROR_MESSAGE


@pytest.fixture
def many_datasets_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"quota_datasets": 0})


async def test_datasets_are_paged_and_fast_with_1000(many_datasets_settings: Settings) -> None:
    async with open_accounts(many_datasets_settings) as acc:
        columns = ORDERS_SCHEMA["columns"]
        async with acc.services.store.begin() as conn:
            for i in range(1000):
                dataset = Dataset.from_dict({"name": f"d{i:04d}", "columns": columns})
                await dataset_rows.insert_dataset(conn, dataset)
        await acc.call("admin", "GET", "/datasets", params={"limit": "1"})  # warm the pools
        started = time.monotonic()
        first = await acc.call("admin", "GET", "/datasets")
        took = time.monotonic() - started
        assert first.status_code == 200
        assert len(first.json()["datasets"]) == 50 and first.json()["next_cursor"]
        assert took < 3, f"a page of datasets took {took:.2f}s"  # unpaged: 5.4 s for all
        cursor = first.json()["next_cursor"]
        second = await acc.call("admin", "GET", "/datasets", params={"cursor": cursor})
        names = [d["name"] for d in first.json()["datasets"] + second.json()["datasets"]]
        assert names == [f"d{i:04d}" for i in range(100)]


async def test_a_roles_dataset_scope_applies_to_the_pages(acc: Accounts) -> None:
    for name in ("alpha", "beta"):
        body = {**ORDERS_SCHEMA, "name": name}
        assert (await acc.call("admin", "POST", "/datasets", json=body)).status_code == 201
    role = {
        "name": "alpha_reader",
        "statements": [{"actions": ["list_datasets"], "datasets": ["alpha", "orders"]}],
    }
    assert (await acc.call("admin", "POST", "/roles", json=role)).status_code == 201
    await acc.add_user("reader", "alpha_reader")
    first = (await acc.call("reader", "GET", "/datasets", params={"limit": "1"})).json()
    assert [d["name"] for d in first["datasets"]] == ["alpha"]
    rest = await acc.call("reader", "GET", "/datasets", params={"cursor": first["next_cursor"]})
    assert [d["name"] for d in rest.json()["datasets"]] == ["orders"]
    assert rest.json()["next_cursor"] is None
    transport = httpx.ASGITransport(app=acc.app)
    async with AsyncClient(acc.tokens["reader"] or "", BASE_URL, transport=transport) as sdk:
        assert [d.name for d in await sdk.datasets.list(page_size=1)] == ["alpha", "orders"]


@pytest.fixture
def tight_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "quota_unfinished_batches": 1,
            "quota_datasets": 1,
            "quota_concurrent_uploads": 1,
            "quota_upload_bytes_per_day": 2000,
        }
    )


def _assert_429(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


async def test_requests_per_minute_per_token(settings: Settings) -> None:
    async with open_accounts(settings.model_copy(update={"rate_limit_per_minute": 8})) as acc:
        await acc.add_user("mallory", "member")
        answers = [(await acc.call("mallory", "GET", "/batches")).status_code for _ in range(8)]
        assert answers == [200] * 8
        error = _assert_429(await acc.call("mallory", "GET", "/batches"), "rate_limited")
        assert error["details"] == {"limit_per_minute": 8}
        # Another token is not slowed down by mallory's.
        await acc.add_user("alice", "member")
        assert (await acc.call("alice", "GET", "/batches")).status_code == 200
        assert (await acc.call("none", "GET", "/health")).status_code == 200


async def test_quotas_of_datasets_and_unfinished_batches(tight_settings: Settings) -> None:
    async with open_accounts(tight_settings) as acc:
        builder = {"name": "builder", "statements": [{"actions": ["*_dataset", "*_batch"]}]}
        assert (await acc.call("admin", "POST", "/roles", json=builder)).status_code == 201
        await acc.add_user("mallory", "builder")
        mine = {**ORDERS_SCHEMA, "name": "mine"}
        assert (await acc.call("mallory", "POST", "/datasets", json=mine)).status_code == 201
        second = await acc.call("mallory", "POST", "/datasets", json={**mine, "name": "more"})
        assert _assert_429(second, "quota_exceeded")["details"]["quota"] == "datasets"

        async def stalled() -> AsyncIterator[bytes]:
            yield b"id,email,amount,status,ts,user_id\n"
            await asyncio.sleep(3600)

        first = asyncio.create_task(
            acc.call("mallory", "POST", "/batches", params={"dataset": "mine"}, content=stalled())
        )
        try:
            await _wait_for_batches(acc, 1)
            again = await acc.call(
                "mallory", "POST", "/batches", params={"dataset": "mine"}, content=b"id\n1\n"
            )
            error = _assert_429(again, "quota_exceeded")
            assert error["details"]["quota"] in {"unfinished_batches", "concurrent_uploads"}
            urls = {"dataset": "mine", "sources": ["http://127.0.0.1:9/a.csv"]}
            by_url = await acc.call("mallory", "POST", "/batches", json=urls)
            assert _assert_429(by_url, "quota_exceeded")["details"]["quota"] == (
                "unfinished_batches"
            )
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)


async def _wait_for_batches(acc: Accounts, count: int) -> None:
    deadline = time.monotonic() + 30
    while await _batch_count(acc) < count:
        assert time.monotonic() < deadline, "the upload never started"
        await asyncio.sleep(0.05)


async def test_uploaded_bytes_per_day(tight_settings: Settings) -> None:
    settings = tight_settings.model_copy(update={"quota_unfinished_batches": 0})
    async with open_accounts(settings) as acc:
        assert (await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)).is_success
        await acc.add_user("mallory", "member")
        rows = "".join(f"{i},u{i}@x.io,1.00,new,,\n" for i in range(1, 200)).encode()
        body = b"id,email,amount,status,ts,user_id\n" + rows
        over = await acc.call(
            "mallory", "POST", "/batches", params={"dataset": "orders"}, content=body
        )
        assert _assert_429(over, "quota_exceeded")["details"]["quota"] == "upload_bytes_per_day"
        listed = (await acc.call("admin", "GET", "/batches")).json()["batches"]
        assert [(b["status"], "24 hours" in b["error_message"]) for b in listed] == [
            ("failed", True)
        ]
        # Spent for the day: the next upload is refused before any batch is made.
        small = await acc.call(
            "mallory", "POST", "/batches", params={"dataset": "orders"}, content=b"id\n1\n"
        )
        _assert_429(small, "quota_exceeded")
        assert len((await acc.call("admin", "GET", "/batches")).json()["batches"]) == 1


def test_long_error_messages_are_cut_with_a_marker() -> None:
    text = "x" * 10_000
    bounded = bounded_message(text)
    assert len(bounded) <= MAX_ERROR_MESSAGE
    assert bounded.startswith("x" * 1000)
    assert bounded.endswith("[truncated: 10000 characters in all]")
    assert bounded_message("short") == "short"
