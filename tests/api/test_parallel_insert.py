"""Inserts load several chunks at once (options.parallel_streams), still each exactly once."""

from __future__ import annotations

import csv
import io
import json
import re

import httpx

from support.waiting import wait_for_status


async def _upload(client: httpx.AsyncClient, body: bytes, options: dict[str, object]) -> str:
    response = await client.post(
        "/batches",
        params={"dataset": "orders", "options": json.dumps(options)},
        content=body,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["batch"])


async def _results(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, str]]:
    text = (await client.get(f"/batches/{batch_id}/results")).text
    return list(csv.DictReader(io.StringIO(text)))


async def test_many_chunks_in_parallel_streams_are_each_applied_once(client, orders):
    # ~600 KB of input against 64 KiB chunks (tests/api settings): about ten chunks, four at once
    rows = "".join(f"{i},user{i}@example.com,{i % 1000}.25,paid,,\n" for i in range(1, 15_001))
    body = ("id,email,amount,status,ts,user_id\n" + rows).encode()
    batch_id = await _upload(client, body, {"parallel_streams": 4})
    batch = await wait_for_status(client, batch_id, within=120)

    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == batch["total_operations"] == 15_000
    assert (await client.get("/datasets/orders")).json()["row_count"] == 15_000
    log = (await client.get(f"/batches/{batch_id}/log")).text
    # Applied chunk by chunk (many chunks), while validating or after it, or both.
    after = re.search(r"Applying (\d+) chunk\(s\) chunk by chunk(?: \((\d+) applied)?", log)
    during = re.search(r"All (\d+) chunk\(s\) applied while validating", log)
    if after:
        chunks = int(after.group(1)) + int(after.group(2) or 0)
    else:
        assert during, log
        chunks = int(during.group(1))
    assert chunks > 1, log


async def test_a_key_repeated_in_chunks_loading_at_once_is_inserted_exactly_once(client, orders):
    rows = [f"{i},user{i}@example.com,1.00,new,,\n" for i in range(1, 12_001)]
    repeated = 7
    rows[-1] = f"{repeated},late@example.com,2.00,paid,,\n"  # last chunk repeats a first-chunk key
    body = ("id,email,amount,status,ts,user_id\n" + "".join(rows)).encode()
    batch_id = await _upload(client, body, {"parallel_streams": 3})
    batch = await wait_for_status(client, batch_id, within=120)

    assert batch["status"] == "completed", batch
    assert (batch["successful_operations"], batch["failed_operations"]) == (11_999, 1)
    assert (await client.get("/datasets/orders")).json()["row_count"] == 11_999
    failed = [r for r in await _results(client, batch_id) if r["outcome"] == "failed"]
    assert [(r["error_code"], r["key"]) for r in failed] == [("duplicate_key", str(repeated))]
