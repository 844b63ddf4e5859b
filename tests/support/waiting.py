"""Polling helpers: wait for a batch to reach a status, with a deadline instead of sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

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


#: The way a batch goes when nothing stops it.
_FORWARD = ("new", "copying", "copied", "validating", "processing", "processed")


def wait_until_applying_sync(
    client: httpx.Client, batch_id: str, status: str, timeout: float = 120
) -> dict[str, Any]:
    """The batch as soon as it is in ``status`` with records already applied.

    Chunks are applied from ``validating`` on; a batch that got past ``status`` (or ended)
    before that fails the calling test, which needs it caught in the act.
    """
    deadline = time.monotonic() + timeout
    while True:
        batch: dict[str, Any] = client.get(f"/batches/{batch_id}").json()
        if batch["status"] == status and batch["processed_operations"]:
            return batch
        position = _FORWARD.index(batch["status"]) if batch["status"] in _FORWARD else 99
        assert position <= _FORWARD.index(status), f"batch got past {status} first: {batch}"
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch still {batch['status']} after {timeout}s: {batch}")
        time.sleep(0.02)


def wait_until_sync(probe: Callable[[], T | None], within: float, what: str) -> T:
    """``probe()``'s first answer that is not None, polled until ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not so after {within}s")
        time.sleep(0.05)
