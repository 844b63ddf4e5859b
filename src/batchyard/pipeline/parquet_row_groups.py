"""A Parquet file's record batches, read a row group at a time so that memory and the bytes
fetched both stay close to what the batches need.

pyarrow reads Parquet by seeking: each column chunk from its own offset, the columns of a row
group in turn. Two ways of reading it went wrong:

- pre-buffering the whole file (pyarrow's default) keeps every row group read so far in memory;
- reading column by column through a buffered stream refetches that stream's buffer at every
  jump between columns: 8x the file's bytes through the 8 MiB buffer of a remote object.

So pyarrow is given the raw file beneath any Python buffer (each of its reads fetches what it
asks for, storage/blobs.py), and row groups are read one of two ways. In a remote file,
consecutive row groups whose column chunks together fit ``PREFETCH_BYTES`` are pre-buffered as
one run: their column chunks arrive in a few large coalesced reads, and pyarrow frees them when
the next run is pre-buffered (parquet/file_reader.h: data stays buffered "until either
PreBuffer() is called again, or the reader itself is destructed"). A larger row group, or a
local file (where a read is a system call, not a request), is read in place, a buffer per
column at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batchyard.storage.blobs import is_remote

#: Remote row groups whose column chunks (those read) add up to at most this are fetched whole
#: before they are decoded: the cap on what pre-buffering holds at a time.
PREFETCH_BYTES = 32 << 20
#: Read buffer per column of a row group read in place, on local disk: pages are decoded from it.
LOCAL_BUFFER = 1 << 20
#: The column buffers of a remote row group read in place share about this much (within
#: REMOTE_BUFFER_RANGE each): fewer, larger requests for narrow files.
REMOTE_BUFFERS = 16 << 20
#: Bounds of one column's buffer on a remote row group read in place.
REMOTE_BUFFER_RANGE = (1 << 20, 4 << 20)


def random_access(stream: Any) -> tuple[Any, bool]:
    """What pyarrow should read for ``stream``, and whether its reads are requests to a remote
    store (pre-buffering saves requests there; elsewhere it only holds memory).

    A BufferedReader's raw stream: pyarrow seeks before each read and buffers each column
    itself, so a buffer beneath it only refetches what pyarrow did not ask for. What that
    buffer already holds (the file's head, read to detect the format) is not fetched again:
    the whole file is read from it where it fits, else reads of the head are served from it.
    """
    if not isinstance(stream, io.BufferedReader):
        return stream, False
    raw = stream.raw
    held = stream.peek(1) if stream.tell() == 0 else b""
    if held and len(held) >= raw.seek(0, io.SEEK_END):
        return pa.BufferReader(held), False
    remote = is_remote(raw)
    if held and remote:
        return HeldHead(raw, bytes(held)), True
    return raw, remote


class HeldHead(io.RawIOBase):
    """A seekable raw file whose first bytes are already in memory: reads within them are
    served from there, the rest from ``raw`` (each read a request where ``raw`` is remote)."""

    def __init__(self, raw: Any, head: bytes) -> None:
        self._raw = raw
        self._head = head
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = int(self._raw.seek(offset, whence))
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start = self._position
        held = self._head[start : start + len(view)]
        view[: len(held)] = held
        got = len(held)
        if got < len(view):
            self._raw.seek(start + got)
            got += self._raw.readinto(view[got:])
        self._position = int(self._raw.seek(start + got))
        return got

    def read_buffer(self, size: int) -> Any:
        """What pyarrow's PythonFile reads where a file has it: past the head, the raw file's
        own buffer, not copied."""
        if self._position < len(self._head) or not hasattr(self._raw, "read_buffer"):
            return self.read(size)
        self._raw.seek(self._position)
        data = self._raw.read_buffer(size)
        self._position += len(data)
        return data


class RowGroupReader:
    """Record batches of ``batch_rows`` rows (the last may be shorter) from ``parquet``, exactly
    as ``parquet.iter_batches`` cuts them: a batch may span row groups."""

    def __init__(
        self, source: Any, parquet: pq.ParquetFile, *, remote: bool, columns: Sequence[str]
    ) -> None:
        self._source = source
        self._parquet = parquet
        self._remote = remote
        self._columns = list(columns)
        self._leaves = _leaf_indices(parquet, self._columns)
        self._streamed: pq.ParquetFile | None = None
        self._prefetched: pq.ParquetFile | None = None

    def batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        return _rebatch(self._row_group_batches(batch_rows), batch_rows)

    def _row_group_batches(self, batch_rows: int) -> Iterator[pa.RecordBatch]:
        for row_groups, prefetch in self._runs():
            reader = self._prefetching() if prefetch else self._in_place()
            yield from reader.iter_batches(
                batch_size=batch_rows, row_groups=row_groups, columns=self._columns
            )

    def _runs(self) -> Iterator[tuple[list[int], bool]]:
        """Consecutive row groups read in one go, and whether they are pre-buffered: a local
        file in place at once; a remote one in runs of small row groups that together fit
        PREFETCH_BYTES (a request each, not one per column chunk), a big one alone in place."""
        meta = self._parquet.metadata
        if not self._remote:
            yield list(range(meta.num_row_groups)), False
            return
        run: list[int] = []
        held = 0
        for index in range(meta.num_row_groups):
            group = meta.row_group(index)
            size = sum(group.column(leaf).total_compressed_size for leaf in self._leaves)
            if run and held + size > PREFETCH_BYTES:  # a row group over the cap is over it too
                yield run, True
                run, held = [], 0
            if size > PREFETCH_BYTES:
                yield [index], False
                continue
            run.append(index)
            held += size
        if run:
            yield run, True

    def _prefetching(self) -> pq.ParquetFile:
        """The file opened to pre-buffer what it reads (once, sharing the footer already read)."""
        if self._prefetched is None:
            self._prefetched = self._open(pre_buffer=True, buffer_size=0)
        return self._prefetched

    def _in_place(self) -> pq.ParquetFile:
        """The file opened to read column chunks a buffer at a time (once, likewise)."""
        if self._streamed is None:
            self._streamed = self._open(pre_buffer=False, buffer_size=self._buffer_size())
        return self._streamed

    def _buffer_size(self) -> int:
        if not self._remote:
            return LOCAL_BUFFER
        low, high = REMOTE_BUFFER_RANGE
        return min(high, max(low, REMOTE_BUFFERS // max(1, len(self._leaves))))

    def _open(self, *, pre_buffer: bool, buffer_size: int) -> pq.ParquetFile:
        return pq.ParquetFile(
            self._source,
            metadata=self._parquet.metadata,
            pre_buffer=pre_buffer,
            buffer_size=buffer_size,
        )


def _leaf_indices(parquet: pq.ParquetFile, columns: Sequence[str]) -> list[int]:
    """The Parquet leaf columns (column chunks) that reading ``columns`` reads."""
    wanted = set(columns)
    paths: Any = parquet.reader.column_paths  # a list of names per leaf (the stubs say str)
    return [index for index, path in enumerate(paths) if path[0] in wanted]


def _rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` cut again into batches of ``rows`` rows, the last one possibly shorter.

    Read a row group at a time, a row group's last batch is short; joined to the next row
    group's first rows, the batches are those pyarrow cuts reading the file in one go.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        start = 0
        while batch.num_rows - start >= rows - count:
            take = rows - count
            held.append(batch.slice(start, take))
            yield _joined(held)
            held, count, start = [], 0, start + take
        if start < batch.num_rows:
            held.append(batch.slice(start))
            count += batch.num_rows - start
    if count:
        yield _joined(held)


def _joined(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(parts) == 1:
        return parts[0]
    # One contiguous batch, as pyarrow's own (the stubs do not know concat_batches yet).
    concat_batches: Any = getattr(pa, "concat_batches")  # noqa: B009
    joined: pa.RecordBatch = concat_batches(parts)
    return joined
