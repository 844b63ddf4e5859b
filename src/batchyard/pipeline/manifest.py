"""The plan validation leaves for processing: which chunks exist and what each holds."""

from __future__ import annotations

import msgspec

from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import put_bytes, read_bytes
from batchyard.storage.blobs import BlobStore


class ChunkEntry(msgspec.Struct, frozen=True):
    """One validated chunk: a contiguous range of input records."""

    index: int
    first_record: int
    record_count: int
    valid_count: int
    invalid_count: int


class Manifest(msgspec.Struct):
    """Written once validation has finished; processing and results read only this."""

    chunks: list[ChunkEntry] = msgspec.field(default_factory=list)
    #: Input field names in input order (first source's), for the failed-records file.
    input_columns: list[str] = msgspec.field(default_factory=list)
    #: The first source's format ("csv", "jsonl", "parquet"): the failed-records file's format.
    input_format: str | None = None
    #: Chunks were applied from memory as they were validated, and only their record numbers
    #: and keys staged (for the results): processing cannot apply one of them from storage.
    applied_in_stream: bool = False
    #: Every record of every source was read (False: validation stopped part way, and the
    #: records after the last chunk were never read).
    complete: bool = False

    @property
    def total(self) -> int:
        return sum(c.record_count for c in self.chunks)

    @property
    def invalid(self) -> int:
        return sum(c.invalid_count for c in self.chunks)

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        return msgspec.json.decode(data, type=cls)


async def read_manifest(blobs: BlobStore, batch_id: str) -> Manifest:
    return Manifest.decode(await read_bytes(blobs, keys.manifest_key(batch_id)))


async def read_ended_manifest(blobs: BlobStore, batch_id: str) -> Manifest | None:
    """The chunks a batch that has ended got as far as staging: the manifest, or the one
    validation left when it stopped part way; None when no record was ever read."""
    for key in (keys.manifest_key(batch_id), keys.partial_manifest_key(batch_id)):
        if await blobs.exists(key):
            return Manifest.decode(await read_bytes(blobs, key))
    return None


async def write_manifest(blobs: BlobStore, batch_id: str, manifest: Manifest) -> None:
    await put_bytes(blobs, keys.manifest_key(batch_id), manifest.encode())
