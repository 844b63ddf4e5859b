"""Polling helpers: wait for a batch to reach a status, with a deadline instead of sleeps."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

TERMINAL = {"completed", "failed", "cancelled", "hash_mismatch", "validation_failed"}


async def wait_for_status(
    client: httpx.AsyncClient, batch_id: str, statuses: set[str] = TERMINAL, within: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(f"/batches/{batch_id}")
        response.raise_for_status()
        batch: dict[str, Any] = response.json()
        if batch["status"] in statuses:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch still {batch['status']} after {within}s: {batch}")
        await asyncio.sleep(0.05)


def wait_for_status_sync(
    client: httpx.Client, batch_id: str, statuses: set[str] = TERMINAL, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/batches/{batch_id}")
        response.raise_for_status()
        batch: dict[str, Any] = response.json()
        if batch["status"] in statuses:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch still {batch['status']} after {timeout}s: {batch}")
        time.sleep(0.1)
