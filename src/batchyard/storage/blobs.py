"""One blob interface over obstore, so local disk and S3 behave the same to the pipeline."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import obstore
from obstore.store import LocalStore, S3Store

from batchyard.domain.errors import InvalidRequest
from batchyard.storage.s3 import S3Connection, S3Location, parse_s3_url
from batchyard.storage.streams import Digest, hashed_parts, write_file

if TYPE_CHECKING:
    from obstore import Attributes, Bytes
    from obstore.store import ObjectStore

    from batchyard.settings import Settings

#: Multipart part size: S3's minimum, and what a write holds in memory per part in flight.
PART_BYTES = 5 * 2**20
#: Parts uploaded at once per write: bounds a write's memory to about PART_BYTES * (this + 1).
PART_CONCURRENCY = 4
#: Read-ahead of open_reader and the chunk size of read_stream.
READ_BUFFER_BYTES = 2**20
#: Read-ahead of open_reader on a remote store: each refill is one ranged GET.
REMOTE_READ_BUFFER_BYTES = 8 * 2**20
#: Where a local store keeps scratch_directory's directories (beside, never under, batches/).
SCRATCH = ".scratch"
#: Keys deleted per request by delete_prefix (S3's DeleteObjects takes up to 1000).
DELETE_BATCH = 1000
_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class WriteResult:
    """What a finished write stored: computed on the way in, so nothing is read twice."""

    key: str
    size: int
    sha256: str


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root, or that a store would encode differently.

    Plain segment characters also keep ``local_path`` identical to where obstore puts the file.
    """
    if key.startswith("/") or not _KEY.fullmatch(key):
        raise ValueError(f"invalid blob key {key!r}: relative, '/'-separated, [A-Za-z0-9._-]")
    if any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid blob key {key!r}: '.' and '..' segments are not allowed")
    return key


class _ObjectRaw(io.RawIOBase):
    """A remote object as Python's seekable raw IO: each read is one ranged GET of exactly the
    bytes asked for (fewer only at the object's end).

    It reads nothing ahead: a sequential reader wraps it in a BufferedReader (open_reader does),
    and pyarrow reading Parquet, which jumps between column chunks and buffers each one itself,
    reads it directly. A reader that buffered beneath pyarrow refetched its whole buffer after
    every jump (obstore's, 8 MiB: 8x the bytes of a Parquet file read column by column).
    """

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        self._store = store
        self._key = key
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), self._size - self._position)
        if size <= 0:  # S3 refuses an empty range, or one past the end
            return 0
        data = obstore.get_range(self._store, self._key, start=self._position, length=size)
        got = len(data)
        buffer[:got] = memoryview(data)
        self._position += got
        return got

    def read_buffer(self, size: int) -> Bytes:
        """Up to ``size`` bytes as obstore's buffer, not copied: pyarrow's PythonFile calls this
        where a file has it, instead of ``read``."""
        size = min(size, self._size - self._position)
        if size <= 0:
            return obstore.Bytes(b"")
        data = obstore.get_range(self._store, self._key, start=self._position, length=size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        if whence not in bases:
            raise ValueError(f"invalid whence {whence}")
        base = bases[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position


def is_remote(raw: object) -> bool:
    """Whether ``raw`` (an open_reader's raw stream) reads a remote object: a request a read."""
    return isinstance(raw, _ObjectRaw)


class BlobStore:
    """Objects under keys like ``batches/<id>/input/0``, written atomically and streamed."""

    def __init__(
        self, store: ObjectStore, root: Path | None = None, location: S3Location | None = None
    ) -> None:
        self._store = store
        self._root = root
        #: Where the keys live when the store is S3: bucket and prefix (the storage URL).
        self.location = location

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        """The store BATCHYARD_STORAGE_URL names (S3 endpoint from BATCHYARD_S3_ENDPOINT)."""
        return cls.from_url(
            settings.resolved_storage_url(), s3=S3Connection.from_settings(settings)
        )

    @classmethod
    def from_url(cls, url: str, *, s3: S3Connection | None = None) -> BlobStore:
        """A store for ``s3://bucket/prefix``, ``file:///abs/dir`` or a directory path.

        A directory is created if missing; ``s3`` says how to reach the S3 server.
        """
        parts = urlsplit(url)
        if parts.scheme == "s3":
            try:
                location = parse_s3_url(url)
            except ValueError as error:
                raise InvalidRequest(f"storage URL: {error}") from None
            store = (s3 or S3Connection()).store(location.bucket, location.key)
            return cls(store, location=location)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InvalidRequest(f"storage URL {url!r} names a remote host; use file:///path")
            root = Path(url2pathname(unquote(parts.path)))
        elif parts.scheme == "" or (len(parts.scheme) == 1 and url[1:2] == ":"):
            root = Path(url)  # a plain path (a one-letter "scheme" is a Windows drive)
        else:
            raise InvalidRequest(
                f"storage URL scheme {parts.scheme!r} is not supported; "
                "use s3://bucket/prefix, file:///path/to/dir or a directory path"
            )
        root = root.expanduser().resolve()
        return cls(LocalStore(prefix=root, mkdir=True, automatic_cleanup=True), root)

    async def write_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        expected_sha256: str | None = None,
    ) -> WriteResult:
        """Stream ``chunks`` into ``key``, hashing and counting on the way.

        The object appears only once every byte is in: over ``max_bytes`` (PayloadTooLarge),
        a different ``expected_sha256`` (HashMismatch) or any other failure leaves no object.
        """
        check_key(key)
        digest = Digest(max_bytes, expected_sha256)
        try:
            if self._root is not None:  # the disk directly: no part buffers, no hand-off a piece
                await write_file(self._root / key, self._root / SCRATCH, chunks, digest)
            else:
                await obstore.put_async(
                    self._store,
                    key,
                    hashed_parts(chunks, digest, PART_BYTES),
                    chunk_size=PART_BYTES,
                    max_concurrency=PART_CONCURRENCY,
                )
        except Exception:
            await self._discard(key)
            raise
        return WriteResult(key=key, size=digest.size, sha256=digest.sha256)

    async def write_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` whole under ``key``, replacing any object there; atomic like
        ``write_stream``. For the pipeline's own small objects (staged chunks, results parts,
        manifests), a few a chunk: one call into obstore instead of a stream it pulls item by
        item from the event loop, and no SHA-256 nobody reads."""
        check_key(key)
        await obstore.put_async(self._store, key, data)

    def scratch_directory(self) -> tempfile.TemporaryDirectory[str]:
        """A temporary directory for files to store with ``write_file(..., move=True)``: on
        the store's own disk when it is local, so that they are moved into place, not copied."""
        parent = None
        if self._root is not None:
            parent = self._root / SCRATCH
            parent.mkdir(exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="batchyard-", dir=parent)

    async def write_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        move: bool = False,
    ) -> None:
        """Upload a finished local file (results are built on local disk, then stored).

        ``content_type`` and ``filename`` are stored with remote objects, so that a presigned
        download is served as that type and saved under that name. With ``move``, a local
        store takes the file itself where it can (a rename, atomic, no copy): it is gone after.
        """
        check_key(key)
        if move and self._root is not None:
            destination = self._root / key
            destination.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # another disk: copied below
                os.replace(path, destination)
                return
        attributes: Attributes = {}
        if self._root is None:  # obstore's LocalStore keeps no attributes
            if content_type:
                attributes["Content-Type"] = content_type
            if filename:
                attributes["Content-Disposition"] = f'attachment; filename="{filename}"'
        await obstore.put_async(
            self._store,
            key,
            path,
            attributes=attributes or None,
            chunk_size=PART_BYTES,
            max_concurrency=PART_CONCURRENCY,
        )

    def open_reader(self, key: str) -> io.BufferedReader:
        """A sync, seekable, buffered reader for worker threads (pyarrow readers, ``read()``).

        A BufferedReader (so a BinaryIO and an IOBase, as ``pa.PythonFile`` wants); raises
        FileNotFoundError when the object does not exist.
        """
        path = self.local_path(key)
        if path is not None:  # the disk directly: pyarrow reads it ~1.4x faster than via obstore
            return io.BufferedReader(io.FileIO(path, "r"), buffer_size=READ_BUFFER_BYTES)
        size = int(obstore.head(self._store, key)["size"])
        raw = _ObjectRaw(self._store, key, size)
        return io.BufferedReader(raw, buffer_size=REMOTE_READ_BUFFER_BYTES)

    def read_whole(self, key: str) -> memoryview:
        """The whole object in one request, for objects loaded whole anyway (staged chunks).

        A remote store answers one GET instead of the many ranged reads a seekable reader makes;
        the view shares obstore's buffer (no copy). Call from a worker thread.
        """
        path = self.local_path(key)
        if path is not None:
            return memoryview(path.read_bytes())
        return memoryview(obstore.get(self._store, key).bytes())

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in order, for streaming HTTP responses."""
        check_key(key)
        result = await obstore.get_async(self._store, key)
        async for chunk in result.stream(min_chunk_size=READ_BUFFER_BYTES):
            yield bytes(chunk)

    async def size(self, key: str) -> int:
        check_key(key)
        meta = await obstore.head_async(self._store, key)
        return int(meta["size"])

    async def exists(self, key: str) -> bool:
        check_key(key)
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        return True

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (whole path segments: "a/b" spares "a/bc")."""
        check_key(prefix)
        deleted = 0
        async for listed in obstore.list(self._store, prefix=prefix, chunk_size=DELETE_BATCH):
            paths = [meta["path"] for meta in listed]
            await obstore.delete_async(self._store, paths)
            deleted += len(paths)
        return deleted

    async def presigned_url(self, key: str, ttl: timedelta) -> str | None:
        """A GET URL that the S3 server itself honours, without a token, for ``ttl``.

        None when the store cannot sign (local disk): the service signs its own links there.
        """
        check_key(key)
        if not isinstance(self._store, S3Store):
            return None
        return await obstore.sign_async(self._store, "GET", key, ttl)

    def local_path(self, key: str) -> Path | None:
        """Where ``key`` lives on disk in local mode; None for remote stores."""
        check_key(key)
        return None if self._root is None else self._root / key

    async def _discard(self, key: str) -> None:
        """Remove whatever an earlier write left at ``key``: a failed write must leave nothing."""
        with contextlib.suppress(Exception):  # the write's own error is the one to report
            await obstore.delete_async(self._store, key)
