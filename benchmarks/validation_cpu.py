"""CPU time of reading and validating a clean orders file and one with 1 in N records invalid.

In process, without a server: the stages a file with invalid records makes slower (the CSV reader
and validation with its per-record errors), timed in CPU seconds of all threads (best of
``--repeat``), so that a busy machine skews the ratio less than wall time would. The clean file
is the same-run baseline.

    uv run --group dev python -m benchmarks.validation_cpu --rows 1000000 --invalid-every 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.reading import Reading
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import split_records
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.validate import validate_chunk
from batchyard.settings import Settings
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

#: The default BATCHYARD_CHUNK_BYTES and BATCHYARD_CHUNK_RECORDS.
CHUNK_BYTES = Settings.model_fields["chunk_bytes"].default
CHUNK_RECORDS = Settings.model_fields["chunk_records"].default


def validation_memory() -> tuple[object, ...]:
    """What a validation carries from chunk to chunk, as validate_chunk's arguments after the
    reading: none for earlier code (run with its ``src`` on PYTHONPATH to compare)."""
    try:
        from batchyard.pipeline.validate_text import FailedCasts
    except ImportError:
        return ()
    return (FailedCasts(),)


def read_and_validate(
    path: Path, dataset: Dataset, chunk_bytes: int = CHUNK_BYTES
) -> tuple[float, float, int]:
    """(CPU seconds reading, CPU seconds validating, invalid records) of one pass."""
    reading = Reading.of(dataset)
    memory = validation_memory()
    read_seconds = validate_seconds = 0.0
    invalid = 0
    with path.open("rb") as stream:
        chunks = iter(
            read_chunks(
                stream,
                InputFormat.CSV,
                gzip=False,
                dataset=dataset,
                options=BatchOptions(),
                chunk_bytes=chunk_bytes,
            )
        )
        while True:
            started = time.process_time()
            raw = next(chunks, None)
            read_seconds += time.process_time() - started
            if raw is None:
                return read_seconds, validate_seconds, invalid
            started = time.process_time()
            for piece in split_records(raw, CHUNK_RECORDS):
                invalid += validate_chunk(piece, dataset, reading, *memory).errors.num_rows
            validate_seconds += time.process_time() - started


def best_of(
    path: Path, dataset: Dataset, repeat: int, chunk_bytes: int
) -> tuple[float, float, int]:
    runs = [read_and_validate(path, dataset, chunk_bytes) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--invalid-every", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-bytes", type=int, default=CHUNK_BYTES)
    args = parser.parse_args()
    dataset = Dataset.from_dict(ORDERS_SCHEMA)
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        clean, invalid = Path(tmp) / "orders.csv", Path(tmp) / "orders-invalid.csv"
        print(f"generating {args.rows:,} records, clean and one in {args.invalid_every} invalid …")
        write_orders_csv(clean, args.rows, bad_every=0)
        write_orders_csv(invalid, args.rows, bad_every=args.invalid_every)
        measured = [
            ("clean", *best_of(clean, dataset, args.repeat, args.chunk_bytes)),
            (
                f"1 in {args.invalid_every} invalid",
                *best_of(invalid, dataset, args.repeat, args.chunk_bytes),
            ),
        ]
    base = measured[0][1] + measured[0][2]
    print(f"\n{'':<20} {'read CPU s':>10} {'validate CPU s':>15} {'invalid':>8} {'x clean':>8}")
    for name, read_s, validate_s, bad in measured:
        total = read_s + validate_s
        print(f"{name:<20} {read_s:10.2f} {validate_s:15.2f} {bad:8,} {total / base:7.2f}x")


if __name__ == "__main__":
    main()
