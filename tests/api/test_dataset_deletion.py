"""DELETE /datasets/{name}: the definition and (unless keep_table) the table with its rows."""

from __future__ import annotations

import asyncio

from benchmarks.datagen import ORDERS_SCHEMA

from support.waiting import wait_for_status

TWO_ROWS = b"id,email\n1,a@x.io\n2,b@x.io\n"


async def _import(client, body: bytes = TWO_ROWS) -> dict[str, object]:
    response = await client.post("/batches", params={"dataset": "orders"}, content=body)
    assert response.status_code == 202, response.text
    return await wait_for_status(client, response.json()["batch"])


async def test_deleting_drops_the_table_and_the_name_can_be_declared_anew(client, orders):
    ended = await _import(client)
    assert ended["status"] == "completed"

    deleted = await client.delete("/datasets/orders")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["name"] == "orders" and deleted.json()["row_count"] == 2
    missing = await client.get("/datasets/orders")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "dataset_not_found"
    assert (await client.delete("/datasets/orders")).status_code == 404
    # the ended batch keeps its history and results
    assert (await client.get(f"/batches/{ended['batch']}")).json()["status"] == "completed"
    assert (await client.get(f"/batches/{ended['batch']}/results")).status_code == 200

    # declared again with other columns: a new, empty table of its own
    narrower = {**ORDERS_SCHEMA, "columns": ORDERS_SCHEMA["columns"][:2]}
    assert (await client.post("/datasets", json=narrower)).status_code == 201
    assert (await client.get("/datasets/orders")).json()["row_count"] == 0
    again = await _import(client, b"id,email\n7,z@x.io\n")
    assert again["status"] == "completed" and again["successful_operations"] == 1


async def test_keep_table_forgets_the_definition_and_leaves_the_rows(client, orders):
    await _import(client)
    deleted = await client.delete("/datasets/orders", params={"keep_table": "true"})
    assert deleted.status_code == 200, deleted.text
    assert (await client.get("/datasets/orders")).status_code == 404

    # the same columns again: the dataset takes the rows over
    assert (await client.post("/datasets", json=ORDERS_SCHEMA)).status_code == 201
    assert (await client.get("/datasets/orders")).json()["row_count"] == 2


async def test_a_dataset_with_an_unfinished_batch_is_not_deleted(client, orders):
    rows = "".join(f"{i},u{i}@x.io\n" for i in range(1, 60_001))
    response = await client.post(
        "/batches", params={"dataset": "orders"}, content=("id,email\n" + rows).encode()
    )
    batch_id = response.json()["batch"]
    refused = await client.delete("/datasets/orders")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "dataset_in_use"
    assert error["details"] == {"dataset": "orders", "unfinished_batches": 1}

    assert (await wait_for_status(client, batch_id))["status"] == "completed"
    for _ in range(50):  # ended: now it may go
        response = await client.delete("/datasets/orders")
        if response.status_code != 409:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 200 and response.json()["row_count"] == 60_000
