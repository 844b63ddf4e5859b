"""results.csv as JSON Lines (``GET /batches/{id}/results?format=jsonl``), streamed.

One JSON object per record with ``record_number``, ``outcome``, ``code``, ``column``,
``message``, ``key`` and ``output``; an output is parsed back from its JSON text, so nested
answers arrive nested. The CSV is read block by block (pyarrow's streaming reader in a worker
thread), never whole.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from batchyard.storage.blobs import BlobStore

JSONL_CONTENT_TYPE = "application/x-ndjson"
_BLOCK_BYTES = 1 << 20
#: results.csv column → JSON member.
_MEMBERS = {
    "record_number": "record_number",
    "outcome": "outcome",
    "error_code": "code",
    "error_column": "column",
    "error_message": "message",
    "key": "key",
    "output": "output",
}


def _open(blobs: BlobStore, key: str) -> pacsv.CSVStreamingReader:
    types: dict[str, pa.DataType] = {name: pa.string() for name in _MEMBERS}
    types["record_number"] = pa.int64()
    return pacsv.open_csv(
        blobs.open_reader(key),
        read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def _next_lines(reader: pacsv.CSVStreamingReader) -> bytes | None:
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return None
    lines = [json.dumps(_member_names(row), ensure_ascii=False) for row in batch.to_pylist()]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _member_names(row: dict[str, Any]) -> dict[str, Any]:
    out = {_MEMBERS[name]: value for name, value in row.items() if name in _MEMBERS}
    text = out.get("output")
    out["output"] = json.loads(text) if text is not None else None
    return out


async def results_as_jsonl(blobs: BlobStore, key: str) -> AsyncIterator[bytes]:
    """The results file at ``key`` as JSON Lines, block by block."""
    reader = await asyncio.to_thread(_open, blobs, key)
    try:
        while (lines := await asyncio.to_thread(_next_lines, reader)) is not None:
            if lines:
                yield lines
    finally:
        reader.close()
