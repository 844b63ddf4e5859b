"""A retry's input for a Parquet batch: the records it did not apply, as Parquet again.

For a Parquet input the failed-records file is CSV, text a person can fix; but text is not what
was sent: a string "NA" becomes a null marker, a NaN an empty field, a decimal a float's digits.
A retry sends the records again unchanged, so for a Parquet input it is built from the stored
input itself: the records results.csv does not list as succeeded, read again as validation read
them, written with the input's own schema. CSV and JSON Lines need none of this: their
failed-records file already holds each record as sent.

One pass in input order over both results.csv and the input, so memory holds one chunk of the
input and one block of results.csv, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.pipeline.originals import InputReader

#: results.csv is read in blocks this big: pyarrow's streaming CSV reader runs some 30 blocks
#: ahead of the one handed out, so memory follows this size (256 KiB: ~10 MiB, 1 MiB: ~40),
#: at the same speed.
_BLOCK_BYTES = 256 << 10
_NUMBERS = pa.int64()


class NotOneParquetSchema(Exception):
    """The batch's sources do not read back as one Parquet schema (sources of other formats or
    other column types, or an input damaged past a record to retry)."""


def write_unapplied_parquet(inputs: InputReader, results: Any, path: Path) -> int:
    """Write to ``path`` the batch's records that results.csv (``results``, a binary reader)
    does not list as succeeded, with the input's schema; how many (call from a worker thread).

    Raises NotOneParquetSchema when they cannot all be written as one Parquet file.
    """
    wanted = _Unapplied(_numbers_not_succeeded(results))
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    written = 0
    try:
        for raw, offset in inputs.chunks():
            if raw.lines is not None or raw.errors.num_rows:
                raise NotOneParquetSchema("a source was not read as Parquet")
            numbers = pc.add(raw.table[RECORD_NUMBER], offset)
            taken = wanted.below(raw.first_record + offset + raw.record_count)
            if not len(taken):
                continue
            rows = raw.table.filter(pc.is_in(numbers, value_set=taken))
            rows = rows.drop_columns([RECORD_NUMBER])
            if writer is None or schema is None:
                schema = rows.schema
                writer = pq.ParquetWriter(path, schema)
            elif not rows.schema.equals(schema):
                raise NotOneParquetSchema("the sources' schemas differ")
            writer.write_table(rows)
            written += rows.num_rows
    finally:
        if writer is not None:
            writer.close()
    if wanted.left() or not written:
        raise NotOneParquetSchema("the input no longer holds every record to retry")
    return written


def _numbers_not_succeeded(results: Any) -> Iterator[pa.Array[Any]]:
    """Record numbers, ascending, of the records results.csv does not list as succeeded."""
    reader = pacsv.open_csv(
        results,
        read_options=pacsv.ReadOptions(block_size=_BLOCK_BYTES),
        convert_options=pacsv.ConvertOptions(
            include_columns=["record_number", "outcome"],
            column_types={"record_number": _NUMBERS, "outcome": pa.string()},
        ),
    )
    for block in reader:
        kept = pc.not_equal(block.column("outcome"), pa.scalar("succeeded"))
        yield block.column("record_number").filter(kept)


class _Unapplied:
    """The record numbers to retry, handed out in input order a chunk's range at a time."""

    def __init__(self, blocks: Iterator[pa.Array[Any]]) -> None:
        self._blocks: Iterator[pa.Array[Any]] | None = blocks
        self._held: pa.Array[Any] = pa.array([], _NUMBERS)

    def below(self, stop: int) -> pa.Array[Any]:
        """The numbers under ``stop`` not handed out yet."""
        while self._blocks is not None and (not len(self._held) or self._held[-1].as_py() < stop):
            block = next(self._blocks, None)
            if block is None:
                self._blocks = None
            else:
                self._held = pa.concat_arrays([self._held, block])
        under = pc.less(self._held, pa.scalar(stop, _NUMBERS))
        taken = self._held.filter(under)
        self._held = self._held.filter(pc.invert(under))
        return taken

    def left(self) -> int:
        """How many numbers were never handed out (records the input did not hold)."""
        rest = len(self._held)
        for block in self._blocks or ():
            rest += len(block)
        return rest
