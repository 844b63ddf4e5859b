"""Arrow tables to and from blob storage (Arrow IPC files: no parsing on the way back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from typing import TypeVar

import pyarrow as pa

from batchyard.storage.blobs import BlobStore

T = TypeVar("T")
_DONE = object()


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


async def put_bytes(blobs: BlobStore, key: str, data: bytes) -> None:
    await blobs.write_bytes(key, data)


async def put_table(blobs: BlobStore, key: str, table: pa.Table) -> None:
    """Store ``table`` under ``key``; serialised in a worker thread to keep the loop free."""
    data = await asyncio.to_thread(table_to_ipc, table)
    await put_bytes(blobs, key, data)


def read_table(blobs: BlobStore, key: str) -> pa.Table:
    """Read a table written by put_table (call from a worker thread).

    The table is loaded whole either way, so the object is fetched in one request and the
    table's columns point into that buffer rather than being copied out of it.
    """
    return pa.ipc.open_file(pa.py_buffer(blobs.read_whole(key))).read_all()


async def read_bytes(blobs: BlobStore, key: str) -> bytes:
    parts = [part async for part in blobs.read_stream(key)]
    return b"".join(parts)


async def read_ahead(items: Iterator[T]) -> AsyncGenerator[T, None]:
    """Drive a blocking iterator (a streaming reader) from async code, one item ahead.

    The next item is read in a worker thread while the caller works on this one, so reading
    (parsing a block of input) and what the caller does with each item (validating it) use
    two cores instead of taking turns; memory grows by that one item. Only one thread reads at
    a time, in order. Use it under ``contextlib.aclosing``: leaving early then waits for the
    read in flight, which cannot be interrupted, before the caller closes what it reads from.
    """
    pending = asyncio.ensure_future(asyncio.to_thread(next, items, _DONE))
    try:
        while True:
            item = await asyncio.shield(pending)
            if item is _DONE:
                return
            pending = asyncio.ensure_future(asyncio.to_thread(next, items, _DONE))
            yield item  # type: ignore[misc]
    finally:
        await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # the caller is leaving on an error of its own: that one wins
