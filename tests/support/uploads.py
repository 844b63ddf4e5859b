"""Uploading a file to a running server the way a client should: streamed, never read whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(size):
            yield block


def upload(http: httpx.Client, path: Path, **params: str) -> dict[str, object]:
    """POST the file as the raw body to the ``orders`` dataset; the 202 answer's batch."""
    response = http.post(
        "/batches", params={"dataset": "orders", **params}, content=file_chunks(path)
    )
    assert response.status_code == 202, response.text
    return dict(response.json())
