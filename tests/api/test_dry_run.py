"""options.dry_run on each backend through the HTTP API: the results a real run would have,
record by record, and a table left exactly as it was."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest

from support.items import ITEMS, items_csv, results_of, row_count, upload
from support.waiting import wait_for_status

#: Records 1-20 meet rows already in the table (duplicate_key); these have an invalid qty.
BAD_QTY = {30, 2500, 3700}
#: Record 4500 repeats the key of record 40, a chunk earlier (duplicate_key within the input).
REPEATED = {4500: 40}
RECORDS = 5000


def mixed_csv() -> str:
    """5,000 records over several chunks (64 KiB each in these tests) with every kind of
    failure: duplicates of existing rows, invalid values, a key repeated across chunks."""
    lines = ["id,qty,note"]
    for n in range(1, RECORDS + 1):
        qty = "x" if n in BAD_QTY else str(n)
        lines.append(f"{REPEATED.get(n, n)},{qty},record {n} padded to make chunks")
    return "\n".join(lines) + "\n"


@pytest.fixture
async def items(client: httpx.AsyncClient) -> None:
    response = await client.post("/datasets", json=ITEMS)
    assert response.status_code == 201, response.text
    existing = "id,qty,note\n" + "".join(f"{n},0,existing\n" for n in range(1, 21))
    assert (await ended(client, existing))["status"] == "completed"


async def ended(
    client: httpx.AsyncClient, body: str, operation: str = "insert", **options: Any
) -> dict[str, Any]:
    if operation == "insert":
        batch = await upload(client, body, **options)
    else:
        params: dict[str, str] = {"dataset": "items", "operation": operation}
        if options:
            params["options"] = json.dumps(options)
        response = await client.post("/batches", params=params, content=body.encode())
        assert response.status_code == 202, response.text
        batch = response.json()
    return await wait_for_status(client, str(batch["batch"]))


def outcomes(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(r["record_number"], r["outcome"], r["error_code"], r["key"]) for r in rows]


async def test_a_dry_run_and_a_real_run_agree_record_by_record_and_the_dry_run_writes_nothing(
    client: httpx.AsyncClient, items: None
) -> None:
    body = mixed_csv()
    dry = await ended(client, body, dry_run=True)
    assert dry["status"] == "completed", dry
    assert dry["dry_run"] is True and dry["options"]["dry_run"] is True
    assert await row_count(client) == 20
    failed = 20 + len(BAD_QTY) + len(REPEATED)
    assert (dry["total_operations"], dry["successful_operations"]) == (RECORDS, RECORDS - failed)
    assert dry["failed_operations"] == failed
    log = (await client.get(f"/batches/{dry['batch']}/log")).text
    assert "nothing was written" in log
    chunks = re.search(r"Dry run: applying (\d+) chunk", log)
    assert chunks is not None and int(chunks[1]) >= 3  # record 4500 is chunks after record 40

    real = await ended(client, body)
    assert real["status"] == "completed" and real["dry_run"] is False
    # Had the dry run written anything, the real run would meet it as duplicates.
    assert real["successful_operations"] == dry["successful_operations"]
    assert await row_count(client) == 20 + RECORDS - failed

    dry_rows = await results_of(client, dry["batch"])
    real_rows = await results_of(client, real["batch"])
    assert len(dry_rows) == RECORDS
    assert outcomes(dry_rows) == outcomes(real_rows)
    assert dry_rows == real_rows  # every column: key, error column and message too
    codes = {int(r["record_number"]): r["error_code"] for r in dry_rows if r["outcome"] == "failed"}
    assert codes == {
        **{n: "duplicate_key" for n in range(1, 21)},
        **{n: "invalid_integer" for n in BAD_QTY},
        4500: "duplicate_key",
    }
    failed_file = await client.get(f"/batches/{dry['batch']}/failed-records")
    assert failed_file.status_code == 200 and failed_file.text.count("\n") == failed + 1


async def test_a_dry_run_delete_reports_missing_keys_and_deletes_nothing(
    client: httpx.AsyncClient, items: None
) -> None:
    body = "id\n5\n25\n5\n6\n"
    dry = await ended(client, body, "delete", dry_run=True)
    assert dry["status"] == "completed" and dry["dry_run"] is True, dry
    assert (dry["successful_operations"], dry["failed_operations"]) == (2, 2)
    assert await row_count(client) == 20
    real = await ended(client, body, "delete")
    assert await row_count(client) == 18
    dry_rows = await results_of(client, dry["batch"])
    assert outcomes(dry_rows) == outcomes(await results_of(client, real["batch"]))
    assert [r["error_code"] for r in dry_rows] == ["", "key_not_found", "key_not_found", ""]


async def test_a_dry_run_upsert_changes_no_row_and_agrees_with_the_real_one(
    client: httpx.AsyncClient, items: None
) -> None:
    body = "id,qty,note\n15,1,new\n21,x,bad\n22,2,new\n15,3,again\n"
    dry = await ended(client, body, "upsert", dry_run=True)
    assert dry["status"] == "completed" and dry["dry_run"] is True, dry
    assert (dry["successful_operations"], dry["failed_operations"]) == (3, 1)
    assert await row_count(client) == 20
    # A dry run of deleting the key the upsert would add finds nothing to delete.
    probe = await ended(client, "id\n22\n", "delete", dry_run=True)
    assert (probe["successful_operations"], probe["failed_operations"]) == (0, 1)
    real = await ended(client, body, "upsert")
    assert await row_count(client) == 21
    dry_rows = await results_of(client, dry["batch"])
    assert outcomes(dry_rows) == outcomes(await results_of(client, real["batch"]))


async def test_a_dry_run_retried_is_a_dry_run_of_its_failed_records(
    client: httpx.AsyncClient, items: None
) -> None:
    dry = await ended(client, "id,qty,note\n5,1,a\n30,2,b\n31,x,c\n", dry_run=True)
    assert (dry["successful_operations"], dry["failed_operations"]) == (1, 2)
    retry = await client.post(f"/batches/{dry['batch']}/retry")
    assert retry.status_code == 202, retry.text
    again = await wait_for_status(client, retry.json()["batch"])
    assert again["status"] == "completed" and again["dry_run"] is True, again
    assert again["retry_of"] == dry["batch"]
    assert (again["total_operations"], again["failed_operations"]) == (2, 2)
    assert await row_count(client) == 20


async def test_a_cancelled_dry_run_reports_the_chunks_it_reached_and_wrote_nothing(
    client: httpx.AsyncClient, items: None
) -> None:
    total = 120_000
    batch = await upload(client, items_csv(total, start=1000), dry_run=True)
    deadline = time.monotonic() + 120
    while True:  # cancel once the dry run has rehearsed some chunks, long before the last
        seen = (await client.get(f"/batches/{batch['batch']}")).json()
        if seen["successful_operations"] > 0:
            break
        assert seen["status"] not in ("completed", "failed"), seen
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert (await client.post(f"/batches/{batch['batch']}/cancel")).status_code == 202
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "cancelled" and ended["dry_run"] is True, ended
    assert await row_count(client) == 20

    rows = await results_of(client, batch["batch"])
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("succeeded") == ended["successful_operations"] > 0
    assert outcomes.count("not_processed") > 0, "cancelled before the end"
    assert len(rows) == total
    log = (await client.get(f"/batches/{batch['batch']}/log")).text
    assert "Cancelled dry run: nothing was written" in log
