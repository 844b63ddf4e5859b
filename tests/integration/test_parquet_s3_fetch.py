"""A Parquet input stored in S3 is fetched about once: reading it for validation costs about
its size on the wire, however its row groups and columns are laid out, and gives pyarrow's
records. (Read column by column through an 8 MiB buffered reader, a one-row-group file cost
8x its size: each jump between columns refetched the buffer.)"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.domain.batches import BatchStatus
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.pipeline.originals import InputReader
from batchyard.storage.blobs import BlobStore
from batchyard.storage.s3 import S3Connection
from support.counting_proxy import CountingProxy
from support.fresh_process import run_script
from support.parquet_batches import parquet_batch
from support.s3server import STORAGE_BUCKET, S3Server


def write(path: Path, columns: int, rows: int, group_rows: int, text_bytes: int) -> Path:
    """An id and ``columns - 1`` columns of random text Parquet cannot compress."""
    names = [f"c{i}" for i in range(1, columns)]
    schema = pa.schema([("id", pa.int64()), *((name, pa.string()) for name in names)])
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, rows, group_rows):
            count = min(group_rows, rows - first)
            offsets = pa.array(range(0, (count + 1) * text_bytes, text_bytes), pa.int32())
            texts = [
                pa.StringArray.from_buffers(
                    count,
                    offsets.buffers()[1],
                    pa.py_buffer(os.urandom(count * text_bytes // 2).hex().encode()),
                )
                for _ in names
            ]
            ids = pa.array(range(first, first + count), pa.int64())
            writer.write_table(pa.table([ids, *texts], schema=schema), row_group_size=count)
    return path


@pytest.fixture
def proxy(s3_env: S3Server) -> Iterator[CountingProxy]:
    with CountingProxy(int(s3_env.endpoint.rsplit(":", 1)[1])) as counting:
        yield counting


LAYOUTS = {
    "6 columns, one 40 MB row group": (6, 80_000, 80_000, 100),
    "6 columns, 40 row groups": (6, 80_000, 2_000, 100),
    "30 columns, one 40 MB row group": (30, 68_000, 68_000, 20),
    "6 columns, 1 MB in all": (6, 2_000, 500, 100),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_parquet_input_in_s3_is_fetched_about_once(
    layout: str, tmp_path: Path, s3_env: S3Server, s3_prefix: str, proxy: CountingProxy
) -> None:
    columns, rows, group_rows, text_bytes = LAYOUTS[layout]
    path = write(tmp_path / "in.parquet", columns, rows, group_rows, text_bytes)
    key = f"{s3_prefix}/{keys.input_key('b1', 0)}"
    s3_env.client().upload_file(str(path), STORAGE_BUCKET, key)
    blobs = BlobStore.from_url(
        f"s3://{STORAGE_BUCKET}/{s3_prefix}", s3=S3Connection(proxy.endpoint)
    )
    fields = pq.read_schema(path).names
    dataset = Dataset(
        name="items",
        columns=(
            Column(name="id", type=ColumnType.INTEGER),
            *(Column(name=name, type=ColumnType.STRING) for name in fields[1:]),
        ),
    )
    batch = parquet_batch("b1", BatchStatus.VALIDATING)
    proxy.reset()

    tables = [raw.table for raw, _ in InputReader(blobs, batch, dataset, 2 << 20, None).chunks()]

    fetched, size = proxy.received, path.stat().st_size
    # ~1.0x: the format detection's first buffer (8 MiB, or the whole smaller file) is where
    # the Parquet reader reads the file's head from, not fetched again; plus a few hundred
    # bytes of headers per request.
    assert size <= fetched <= 1.05 * size, (fetched, size)
    got = pa.concat_tables(tables)
    assert got[RECORD_NUMBER].to_pylist() == list(range(1, rows + 1))
    assert got.drop_columns([RECORD_NUMBER]).equals(pq.read_table(path))


#: Reads a stored Parquet input as validation does, in a fresh process, after a small one (so
#: that code and pools are warm), reporting how far the peak RSS rose during the large one.
_READ = """
    import json, sys
    from batchyard.pipeline.arrow_runtime import prepare_arrow
    prepare_arrow()
    from batchyard.domain.batches import BatchStatus
    from batchyard.domain.schema import Column, ColumnType, Dataset
    from batchyard.pipeline.originals import InputReader
    from batchyard.storage.blobs import BlobStore
    from batchyard.storage.s3 import S3Connection
    from support.fresh_process import peak_rss, reset_peak_rss
    from support.parquet_batches import parquet_batch

    url, endpoint, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    columns = (Column(name=names[0], type=ColumnType.INTEGER),) + tuple(
        Column(name=name, type=ColumnType.STRING) for name in names[1:]
    )
    dataset = Dataset(name="items", columns=columns)
    blobs = BlobStore.from_url(url, s3=S3Connection(endpoint))

    def read(batch_id):
        batch = parquet_batch(batch_id, BatchStatus.VALIDATING)
        reader = InputReader(blobs, batch, dataset, 2 << 20, None)
        return sum(raw.record_count for raw, _ in reader.chunks())

    read("small")
    reset_peak_rss()
    base = peak_rss()
    rows = read("large")
    print(json.dumps({"rows": rows, "growth": peak_rss() - base}))
"""


def test_reading_a_large_parquet_input_from_s3_holds_a_run_of_row_groups(
    tmp_path: Path, s3_env: S3Server, s3_prefix: str
) -> None:
    """Six 25 MB row groups, each pre-buffered alone (two do not fit 32 MiB): the process holds
    about one of them, never the 150 MB file."""
    client = s3_env.client()
    for batch_id, rows, group_rows in (("small", 1_000, 1_000), ("large", 300_000, 50_000)):
        path = write(tmp_path / f"{batch_id}.parquet", 6, rows, group_rows, 100)
        client.upload_file(str(path), STORAGE_BUCKET, f"{s3_prefix}/{keys.input_key(batch_id, 0)}")
    names = ",".join(pq.read_schema(path).names)
    url = f"s3://{STORAGE_BUCKET}/{s3_prefix}"

    report = json.loads(run_script(_READ, url, s3_env.endpoint, names, env=s3_env.env, timeout=300))

    assert report["rows"] == 300_000
    assert path.stat().st_size > 145 * 2**20
    # 79 MiB here: the pre-buffered row group, obstore's HTTP buffers, the chunks being read
    # (111 MiB reading in place through 8 MiB buffers, as before); pre-buffered whole, the file
    # would add its 150 MB.
    assert report["growth"] < 120 * 2**20, report
