"""Fix and resend: POST /batches/{id}/retry and the failed-records file sent back, on each
backend through the HTTP API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from batchyard.settings import Settings
from support.accounts import Accounts, open_accounts
from support.items import ITEMS, failed_records_of, items_csv, results_of, row_count, upload
from support.waiting import wait_for_status


@pytest.fixture
async def items(client: httpx.AsyncClient) -> None:
    response = await client.post("/datasets", json=ITEMS)
    assert response.status_code == 201, response.text


async def ended(client: httpx.AsyncClient, body: str, **options: object) -> dict[str, object]:
    batch = await upload(client, body, **options)
    return await wait_for_status(client, str(batch["batch"]))


async def test_retry_resends_what_the_target_refused_once_the_conflict_is_gone(
    client: httpx.AsyncClient, items: None
) -> None:
    first = await ended(client, "id,qty,note\n2,20,\n")
    assert first["status"] == "completed"
    # Record 2 (id 2) meets the row already there: duplicate_key. The rest are applied.
    original = await ended(client, "id,qty,note\n1,10,a\n2,21,b\n3,30,\n")
    assert (original["successful_operations"], original["failed_operations"]) == (2, 1)
    gone = await client.post(
        "/batches",
        params={"dataset": "items", "operation": "delete"},
        content=b"id\n2\n",
    )
    assert (await wait_for_status(client, gone.json()["batch"]))["status"] == "completed"

    retry = await client.post(f"/batches/{original['batch']}/retry")
    assert retry.status_code == 202, retry.text
    retried = retry.json()
    # Answered at once, as any create: the records are gathered in the background.
    assert retried["status"] == "new", retried
    assert retried["retry_of"] == original["batch"]
    assert retried["dataset"] == "items" and retried["batch"] != original["batch"]
    done = await wait_for_status(client, retried["batch"])
    assert done["status"] == "completed", done
    assert (done["total_operations"], done["successful_operations"]) == (1, 1)
    assert done["retry_of"] == original["batch"]
    assert await row_count(client) == 3
    stored = await client.get("/batches", params={"dataset": "items"})
    assert retried["batch"] in {b["batch"] for b in stored.json()["batches"]}


async def test_retry_sends_every_record_a_refused_batch_did_not_apply_with_its_options(
    client: httpx.AsyncClient, items: None
) -> None:
    original = await ended(client, items_csv(6000, bad={3}), max_errors=0)
    assert original["status"] == "validation_failed"
    retry = await client.post(f"/batches/{original['batch']}/retry")
    assert retry.status_code == 202, retry.text
    assert retry.json()["options"]["max_errors"] == 0
    done = await wait_for_status(client, retry.json()["batch"])
    # Sent as they were, with the same options: record 3 is still invalid, and trips max_errors.
    assert done["status"] == "validation_failed", done
    rows = await results_of(client, done["batch"])
    assert len(rows) == 6000
    assert [r["outcome"] for r in rows].count("failed") == 1
    assert rows[2]["error_code"] == "invalid_integer"
    assert await row_count(client) == 0


async def test_retry_with_the_same_idempotency_key_returns_the_same_batch(
    client: httpx.AsyncClient, items: None
) -> None:
    original = await ended(client, items_csv(3, bad={2}))
    key = {"Idempotency-Key": "retry-once"}
    first = await client.post(f"/batches/{original['batch']}/retry", headers=key)
    second = await client.post(f"/batches/{original['batch']}/retry", headers=key)
    assert first.status_code == 202 and second.status_code == 200, second.text
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["batch"] == second.json()["batch"]
    third = await client.post(f"/batches/{original['batch']}/retry")
    assert third.status_code == 202 and third.json()["batch"] != first.json()["batch"]

    other = await ended(client, items_csv(3, bad={1}, start=10))
    reused = await client.post(f"/batches/{other['batch']}/retry", headers=key)
    assert reused.status_code == 409, reused.text


async def test_retry_of_a_batch_with_nothing_to_retry_is_409(
    client: httpx.AsyncClient, items: None
) -> None:
    clean = await ended(client, items_csv(3))
    answer = await client.post(f"/batches/{clean['batch']}/retry")
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "nothing_to_retry"
    missing = await client.post("/batches/00000000-0000-0000-0000-000000000000/retry")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "batch_not_found"


async def test_failed_records_file_sent_back_as_is_records_what_it_resubmits(
    client: httpx.AsyncClient, items: None
) -> None:
    original = await ended(client, items_csv(4, bad={2, 4}))
    records = await failed_records_of(client, str(original["batch"]))
    assert [r["error"].split(" ")[0] for r in records] == ["invalid_integer"] * 2
    fixed = "id,qty,note,error\n" + "".join(
        f"{r['id']},7,{r['note']},{json.dumps(r['error'])}\n" for r in records
    )
    resent = await ended(client, fixed, resubmits=original["batch"])
    assert resent["status"] == "completed", resent
    assert resent["resubmits"] == original["batch"] and resent["retry_of"] is None
    assert resent["successful_operations"] == 2
    assert await row_count(client) == 4

    plain = await ended(client, fixed.replace(",7,", ",8,").replace("\n2,", "\n12,"))
    assert plain["resubmits"] is None
    assert plain["successful_operations"] == 1  # error column left out, no option needed


async def test_resubmits_must_name_a_visible_batch_of_the_dataset(
    client: httpx.AsyncClient, items: None
) -> None:
    for resubmits, needle in (
        ("00000000-0000-0000-0000-000000000000", "no batch"),
        ("not-a-batch", "resubmits"),
    ):
        response = await client.post(
            "/batches",
            params={"dataset": "items", "options": json.dumps({"resubmits": resubmits})},
            content=items_csv(1).encode(),
        )
        assert response.status_code == 422, response.text
        assert needle in response.json()["error"]["message"]


async def test_retry_follows_the_owner_rule_and_needs_create_batch(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_accounts(settings) as acc:
        await acc.call("admin", "POST", "/datasets", json=ITEMS)
        await acc.add_user("ann", "member")
        await acc.add_user("bob", "member")
        await acc.add_user("val", "viewer")
        mine = await _upload_as(acc, "ann", items_csv(2, bad={1}))
        assert (await acc.finished("ann", mine))["status"] == "completed"
        theirs = await acc.call("bob", "POST", f"/batches/{mine}/retry")
        assert theirs.status_code == 404, theirs.text
        viewer = await acc.call("val", "POST", f"/batches/{mine}/retry")
        assert viewer.status_code == 403, viewer.text
        own = await acc.call("ann", "POST", f"/batches/{mine}/retry")
        assert own.status_code == 202, own.text
        admin = await acc.call("admin", "POST", f"/batches/{mine}/retry")
        assert admin.status_code == 202 and admin.json()["owner"] == "admin"


async def _upload_as(acc: Accounts, who: str, body: str) -> str:
    response = await acc.call(
        who, "POST", "/batches", params={"dataset": "items"}, content=body.encode()
    )
    assert response.status_code == 202, response.text
    return str(response.json()["batch"])


async def test_retry_of_a_json_lines_batch_sends_its_lines(
    client: httpx.AsyncClient, items: None
) -> None:
    async def jsonl(body: str) -> dict[str, object]:
        response = await client.post(
            "/batches", params={"dataset": "items", "format": "jsonl"}, content=body.encode()
        )
        return await wait_for_status(client, response.json()["batch"])

    await jsonl('{"id": 2, "qty": 1}\n')
    original = await jsonl('{"id": 1, "qty": 1}\n{"id": 2, "note": "caf\\u00e9", "qty": 2}\n')
    assert original["failed_operations"] == 1
    await wait_for_status(
        client,
        (
            await client.post(
                "/batches", params={"dataset": "items", "operation": "delete"}, content=b"id\n2\n"
            )
        ).json()["batch"],
    )
    retry = await client.post(f"/batches/{original['batch']}/retry")
    assert retry.status_code == 202 and retry.json()["format"] == "jsonl", retry.text
    done = await wait_for_status(client, retry.json()["batch"])
    assert (done["status"], done["successful_operations"]) == ("completed", 1)
    stored = await client.get(f"/batches/{done['batch']}/results")
    assert stored.text.splitlines()[1].startswith("1,")
    assert await row_count(client) == 2
