"""BlobStore against a real obstore LocalStore in a temporary directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from obstore.store import LocalStore

from batchyard.domain.errors import HashMismatch, InvalidRequest, PayloadTooLarge
from batchyard.storage.blobs import PART_BYTES, BlobStore
from batchyard.storage.streams import BLOCK_BYTES

KEY = "batches/0b6f4c1e/input/0"
CSV = b"id,name\n1,alpha\n2,beta\n3,gamma\n"


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class Interrupted(Exception):
    pass


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in chunked(data):
        yield chunk
    raise Interrupted


def files_under(root: Path) -> list[str]:
    """Every file on disk, staging files of unfinished uploads included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def blobs(root: Path) -> BlobStore:
    return BlobStore.from_url(root.as_uri())


@pytest.fixture
def remote_blobs(root: Path) -> BlobStore:
    """The store as a remote one is used (no local paths): reads go through obstore."""
    return BlobStore(LocalStore(prefix=root, mkdir=True))


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
async def test_write_stream_hashes_and_counts_on_the_way(
    store: str, root: Path, request: pytest.FixtureRequest
) -> None:
    """On the disk directly (written in blocks) and as a remote store (multipart parts)."""
    blobs: BlobStore = request.getfixturevalue(store)
    data = os.urandom(2 * max(PART_BYTES, BLOCK_BYTES) + 12345)  # several parts and blocks

    written = await blobs.write_stream(KEY, chunked(data))

    assert written.key == KEY
    assert written.size == len(data)
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert (root / KEY).read_bytes() == data
    assert files_under(root) == [KEY]


async def test_write_stream_over_max_bytes_leaves_no_object(blobs: BlobStore, root: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        await blobs.write_stream(KEY, chunked(b"x" * 1000, 100), max_bytes=999)

    assert not await blobs.exists(KEY)
    assert files_under(root) == []


async def test_write_stream_at_exactly_max_bytes_succeeds(blobs: BlobStore) -> None:
    written = await blobs.write_stream(KEY, chunked(b"x" * 1000, 100), max_bytes=1000)
    assert written.size == 1000


async def test_failed_write_leaves_no_object_not_even_an_older_one(
    blobs: BlobStore, root: Path
) -> None:
    await blobs.write_stream(KEY, chunked(b"old"))

    with pytest.raises(Interrupted):
        await blobs.write_stream(KEY, failing_after(os.urandom(PART_BYTES + 1)))

    assert not await blobs.exists(KEY)
    assert files_under(root) == []


async def test_expected_sha256_is_checked_before_the_object_appears(blobs: BlobStore) -> None:
    good = hashlib.sha256(CSV).hexdigest()
    with pytest.raises(HashMismatch) as raised:
        await blobs.write_stream(KEY, chunked(CSV), expected_sha256="0" * 64)
    assert raised.value.details == {"expected": "0" * 64, "actual": good}
    assert not await blobs.exists(KEY)

    written = await blobs.write_stream(KEY, chunked(CSV), expected_sha256=good.upper())
    assert written.sha256 == good


async def test_empty_stream_makes_an_empty_object(blobs: BlobStore) -> None:
    written = await blobs.write_stream(KEY, chunked(b""))
    assert (written.size, written.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await blobs.size(KEY) == 0


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
async def test_open_reader_feeds_pyarrow_csv(store: str, request: pytest.FixtureRequest) -> None:
    blobs: BlobStore = request.getfixturevalue(store)
    await blobs.write_stream(KEY, chunked(CSV))

    with blobs.open_reader(KEY) as reader:
        table = pacsv.open_csv(reader).read_all()

    assert table.column("name").to_pylist() == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
async def test_open_reader_seeks_for_parquet_through_python_file(
    store: str, request: pytest.FixtureRequest
) -> None:
    blobs: BlobStore = request.getfixturevalue(store)
    table = pa.table({"id": list(range(10_000)), "name": [f"n{i}" for i in range(10_000)]})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=1000)
    await blobs.write_stream(KEY, chunked(sink.getvalue().to_pybytes()))

    with blobs.open_reader(KEY) as reader:
        parquet = pq.ParquetFile(pa.PythonFile(reader, mode="r"))  # footer first: seeks
        assert parquet.metadata.num_row_groups == 10
        assert parquet.read_row_group(7).column("id")[0].as_py() == 7000
        assert parquet.read().equals(table)


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
async def test_open_reader_reads_and_seeks(store: str, request: pytest.FixtureRequest) -> None:
    blobs: BlobStore = request.getfixturevalue(store)
    data = os.urandom(3 * 2**20 + 7)
    await blobs.write_stream(KEY, chunked(data))

    with blobs.open_reader(KEY) as reader:
        assert reader.read(10) == data[:10]
        assert reader.seek(0) == 0
        assert reader.read() == data
        reader.seek(-7, os.SEEK_END)
        assert reader.tell() == len(data) - 7
        assert reader.read(100) == data[-7:]
        assert reader.read(1) == b""


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
def test_open_reader_of_a_missing_object(store: str, request: pytest.FixtureRequest) -> None:
    blobs: BlobStore = request.getfixturevalue(store)
    with pytest.raises(FileNotFoundError):
        blobs.open_reader("batches/none/input/0")


@pytest.mark.parametrize("store", ["blobs", "remote_blobs"])
async def test_write_bytes_stores_the_object_whole_and_replaces_it(
    store: str, request: pytest.FixtureRequest, root: Path
) -> None:
    target: BlobStore = request.getfixturevalue(store)
    await target.write_bytes(KEY, b"first version, longer than the second")
    data = os.urandom(3 * 2**20)

    await target.write_bytes(KEY, data)

    assert (root / KEY).read_bytes() == data
    assert files_under(root) == [KEY]  # no temporary file left beside it
    with pytest.raises(ValueError, match="invalid blob key"):
        await target.write_bytes("../escape", data)


async def test_read_stream_size_and_exists(blobs: BlobStore) -> None:
    data = os.urandom(3 * 2**20)
    await blobs.write_stream(KEY, chunked(data))

    parts = [part async for part in blobs.read_stream(KEY)]

    assert all(isinstance(part, bytes) for part in parts)
    assert b"".join(parts) == data
    assert await blobs.size(KEY) == len(data)
    assert await blobs.exists(KEY)
    assert not await blobs.exists("batches/0b6f4c1e/input/1")


async def test_write_file_uploads_a_local_file(blobs: BlobStore, tmp_path: Path) -> None:
    local = tmp_path / "results.csv"
    local.write_bytes(CSV)

    await blobs.write_file("batches/0b6f4c1e/results.csv", local)

    assert b"".join([p async for p in blobs.read_stream("batches/0b6f4c1e/results.csv")]) == CSV


async def test_a_scratch_file_is_moved_into_a_local_store_not_copied(
    blobs: BlobStore, root: Path
) -> None:
    """Results are built in scratch_directory and stored with move: on the store's own disk,
    the very file (same inode) becomes the object, and the scratch space is left empty."""
    with blobs.scratch_directory() as scratch:
        local = Path(scratch) / "results.csv"
        local.write_bytes(CSV)
        inode = local.stat().st_ino
        await blobs.write_file("batches/0b6f4c1e/results.csv", local, move=True)
        assert not local.exists()

    stored = root / "batches" / "0b6f4c1e" / "results.csv"
    assert stored.read_bytes() == CSV
    assert stored.stat().st_ino == inode
    assert files_under(root) == ["batches/0b6f4c1e/results.csv"]


async def test_delete_prefix_removes_whole_segments_only(blobs: BlobStore, root: Path) -> None:
    for key in ["batches/ab/input/0", "batches/ab/chunks/0.arrow", "batches/ab/results.csv"]:
        await blobs.write_stream(key, chunked(b"x"))
    await blobs.write_stream("batches/abc/input/0", chunked(b"y"))

    assert await blobs.delete_prefix("batches/ab") == 3

    assert files_under(root) == ["batches/abc/input/0"]
    assert not (root / "batches" / "ab").exists()  # no empty directories left behind
    assert await blobs.delete_prefix("batches/ab") == 0


@pytest.mark.parametrize(
    "key", ["", "/batches/x", "batches/../secret", "batches/./x", "batches//x", "a\\b", "a b"]
)
async def test_unsafe_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.write_stream(key, chunked(b"x"))
    with pytest.raises(ValueError, match="invalid blob key"):
        blobs.local_path(key)


def test_from_url_accepts_file_urls_and_plain_paths(tmp_path: Path) -> None:
    spaced = tmp_path / "with space"
    assert BlobStore.from_url(spaced.as_uri()).local_path("a/b") == spaced / "a" / "b"
    assert spaced.is_dir()
    plain = tmp_path / "plain"
    assert BlobStore.from_url(str(plain)).local_path("k") == plain / "k"


@pytest.mark.parametrize(
    "url", ["s3://No_Such_Bucket/prefix", "gs://bucket", "file://otherhost/dir"]
)
def test_from_url_refuses_unsupported_or_malformed_urls(url: str) -> None:
    with pytest.raises(InvalidRequest):
        BlobStore.from_url(url)


def test_remote_store_has_no_local_path(remote_blobs: BlobStore) -> None:
    assert remote_blobs.local_path(KEY) is None
