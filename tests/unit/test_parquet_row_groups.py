"""Reading Parquet a row group at a time hands out the batches pyarrow does reading the file in
one go: the same records, cut at the same places, whichever way each row group is read."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.pipeline import parquet_row_groups
from batchyard.pipeline.parquet_row_groups import RowGroupReader, random_access


def write(path: Path, rows: int, group_rows: list[int]) -> Path:
    """Rows 0..rows-1 in row groups of the sizes given, in turn (the last as long as needed)."""
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("tags", pa.list_(pa.string()))])
    with pq.ParquetWriter(path, schema) as writer:
        first, turn = 0, 0
        while first < rows:
            count = min(group_rows[turn % len(group_rows)], rows - first)
            ids = list(range(first, first + count))
            table = pa.table(
                [ids, [f"n{i}" * (i % 5) for i in ids], [[str(i)] * (i % 3) for i in ids]],
                schema=schema,
            )
            writer.write_table(table, row_group_size=count)
            first, turn = first + count, turn + 1
    return path


def pyarrow_batches(path: Path, rows: int, columns: list[str]) -> list[pa.RecordBatch]:
    return list(pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns))


def ours(path: Path, rows: int, columns: list[str], *, remote: bool) -> list[pa.RecordBatch]:
    source = pa.OSFile(str(path))
    reader = RowGroupReader(source, pq.ParquetFile(source), remote=remote, columns=columns)
    return list(reader.batches(rows))


LAYOUTS = [
    (1000, [1000], 250),  # one row group, batches within it
    (1000, [300], 250),  # batches spanning row groups
    (1000, [300], 300),  # batches exactly one row group each
    (1000, [7, 500, 1, 90], 64),  # uneven row groups, one of a single row
    (1000, [100], 1000),  # a batch of every row group
    (10, [3], 1),  # a batch per row
]


@pytest.mark.parametrize(("rows", "groups", "batch_rows"), LAYOUTS)
@pytest.mark.parametrize("remote", [False, True])
def test_batches_are_pyarrows_whichever_way_row_groups_are_read(
    tmp_path: Path, rows: int, groups: list[int], batch_rows: int, remote: bool
) -> None:
    path = write(tmp_path / "in.parquet", rows, groups)
    columns = ["id", "name", "tags"]
    expected = pyarrow_batches(path, batch_rows, columns)

    got = ours(path, batch_rows, columns, remote=remote)

    assert [b.num_rows for b in got] == [b.num_rows for b in expected]
    assert all(g.equals(e) for g, e in zip(got, expected, strict=True))


def test_remote_row_groups_too_big_to_prefetch_are_read_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefetched runs and row groups read in place, mixed in one file: still pyarrow's batches."""
    path = write(tmp_path / "in.parquet", 2050, [50, 50, 900, 10, 40, 1000])
    meta = pq.ParquetFile(path).metadata
    read = [
        sum(meta.row_group(i).column(leaf).total_compressed_size for leaf in (0, 2))
        for i in range(6)
    ]  # id, tags
    monkeypatch.setattr(parquet_row_groups, "PREFETCH_BYTES", read[2] - 1)
    source = pa.OSFile(str(path))
    reader = RowGroupReader(source, pq.ParquetFile(source), remote=True, columns=["id", "tags"])
    runs = list(reader._runs())

    # Small row groups pre-buffered together, the 900 and the 1000 rows each alone in place.
    assert runs == [([0, 1], True), ([2], False), ([3, 4], True), ([5], False)]
    got = list(reader.batches(128))
    expected = pyarrow_batches(path, 128, ["id", "tags"])
    assert pa.Table.from_batches(got).equals(pa.Table.from_batches(expected))
    assert [b.num_rows for b in got] == [b.num_rows for b in expected]


def test_a_buffered_file_is_read_beneath_its_buffer(tmp_path: Path) -> None:
    path = write(tmp_path / "in.parquet", 50_000, [50_000])
    with io.BufferedReader(io.FileIO(path), buffer_size=4096) as stream:
        stream.read(100)
        stream.seek(0)
        source, remote = random_access(stream)
        assert source is stream.raw
        assert not remote


def test_a_file_its_buffer_holds_whole_is_read_from_the_buffer(tmp_path: Path) -> None:
    path = write(tmp_path / "in.parquet", 10, [10])
    with io.BufferedReader(io.FileIO(path), buffer_size=1 << 20) as stream:
        stream.read(4)
        stream.seek(0)
        source, remote = random_access(stream)
        assert isinstance(source, pa.BufferReader)
        assert not remote
        assert pq.read_table(source).equals(pq.read_table(path))
