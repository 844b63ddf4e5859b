"""A Parquet batch's retry reads its stored input again a chunk at a time: however big the
input, the process building the retry holds about a chunk of it, and the retry holds exactly
the records results.csv does not list as succeeded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from batchyard.pipeline import keys
from support.fresh_process import run_script

ROWS = 1_200_000
ROWS_PER_GROUP = 300_000
LABEL_BYTES = 100  # random text Parquet cannot compress: the file is ~120 MB, 60x a chunk

#: Builds Parquet batches' retry inputs as `POST /batches/{id}/retry` does, in a fresh process
#: set up as the server is: a small one first, so that code and thread pools are warm, then a
#: large one, reporting how far the peak RSS rose during it.
_RETRY = """
    import json, sys
    from pathlib import Path
    from batchyard.pipeline.arrow_runtime import prepare_arrow
    prepare_arrow()
    from batchyard.domain.batches import BatchStatus
    from batchyard.domain.schema import Column, ColumnType, Dataset
    from batchyard.pipeline import keys
    from batchyard.pipeline.originals import InputReader
    from batchyard.pipeline.retry_input import write_unapplied_parquet
    from batchyard.storage.blobs import BlobStore
    from support.fresh_process import peak_rss, reset_peak_rss
    from support.parquet_batches import parquet_batch

    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    columns = (
        Column(name="id", type=ColumnType.INTEGER), Column(name="label", type=ColumnType.STRING)
    )
    dataset = Dataset(name="items", columns=columns)
    blobs = BlobStore.from_url(root.as_uri())

    def retry(batch_id):
        batch = parquet_batch(batch_id, BatchStatus.COMPLETED)
        inputs = InputReader(blobs, batch, dataset, 2 << 20, None)
        with blobs.open_reader(keys.results_key(batch_id)) as results:
            return write_unapplied_parquet(inputs, results, out)

    retry("small")
    reset_peak_rss()
    base = peak_rss()
    written = retry("large")
    print(json.dumps({"written": written, "growth": peak_rss() - base}))
"""


def write_batch(root: Path, batch_id: str, rows: int, per_group: int) -> Path:
    """A stored input of ``rows`` records (row groups of ``per_group``, written a group at a
    time) and its results.csv; the input's path."""
    path = root / keys.input_key(batch_id, 0)
    path.parent.mkdir(parents=True)
    offsets = pa.array(range(0, (per_group + 1) * LABEL_BYTES, LABEL_BYTES), pa.int32())
    schema = pa.schema([("id", pa.int64()), ("label", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(1, rows + 1, per_group):
            text = os.urandom(per_group * LABEL_BYTES // 2).hex().encode()
            labels = pa.StringArray.from_buffers(
                per_group, offsets.buffers()[1], pa.py_buffer(text)
            )
            ids = pa.array(range(first, first + per_group), pa.int64())
            writer.write_table(pa.table([ids, labels], schema=schema))
    lines = ["record_number,outcome,error_code,error_column,error_message,key"]
    for n in range(1, rows + 1):
        outcome = "failed" if is_unapplied(n, rows) else "succeeded"
        lines.append(f"{n},{outcome},,,,{n}")
    (root / keys.results_key(batch_id)).write_text("\n".join(lines) + "\n")
    return path


def is_unapplied(number: int, rows: int) -> bool:
    """Scattered failures, and a run of records never processed at the end."""
    return number % 7 == 3 or number > rows - rows // 200


def test_a_retry_of_a_large_parquet_input_holds_a_chunk_of_it(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    write_batch(root, "small", 10_000, 10_000)
    source = write_batch(root, "large", ROWS, ROWS_PER_GROUP)
    out = tmp_path / "retry.parquet"

    report = json.loads(run_script(_RETRY, str(root), str(out), timeout=300))

    sent = pq.read_table(source)
    expected = sent.filter(pa.array([is_unapplied(n, ROWS) for n in range(1, ROWS + 1)]))
    got = pq.read_table(out)
    assert report["written"] == got.num_rows == expected.num_rows
    assert got.equals(expected)
    # 53 MiB here: chunks of the input read and written (~30), blocks of results.csv read ahead
    # (~10), Parquet pages. It was 181 MiB, rising with the input, while pyarrow pre-buffered
    # every column chunk it would read and read results.csv 1 MiB blocks ahead of need.
    assert report["growth"] < 80 * 2**20, report
    assert source.stat().st_size > 100 * 2**20
