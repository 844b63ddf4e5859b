"""A small dataset and helpers for tests of results, retries and resubmissions over HTTP."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection
from typing import Any

import httpx

ITEMS = {
    "name": "items",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "qty", "type": "integer"},
        {"name": "note", "type": "string"},
    ],
}


def items_csv(count: int, bad: Collection[int] = (), start: int = 1) -> str:
    """``count`` records numbered from ``start``; records (1-based) in ``bad`` have qty 'x'."""
    lines = ["id,qty,note"]
    for n in range(1, count + 1):
        qty = "x" if n in bad else str(n)
        lines.append(f"{start + n - 1},{qty},record {n} padded to make chunks")
    return "\n".join(lines) + "\n"


async def upload(client: httpx.AsyncClient, body: str, **options: Any) -> dict[str, Any]:
    params: dict[str, str] = {"dataset": "items", "format": "csv"}
    if options:
        params["options"] = json.dumps(options)
    response = await client.post("/batches", params=params, content=body.encode())
    assert response.status_code == 202, response.text
    return dict(response.json())


async def results_of(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, str]]:
    response = await client.get(f"/batches/{batch_id}/results")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def failed_records_of(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, str]]:
    response = await client.get(f"/batches/{batch_id}/failed-records")
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def row_count(client: httpx.AsyncClient) -> int:
    return int((await client.get("/datasets/items")).json()["row_count"])
