"""Thread CPU per chunk of validating and making the results part, clean against 1 in N invalid.

In process, one thread, the chunks read beforehand: what a validation worker thread spends per
chunk (``validate_chunk``, then ``applied_part`` with no record refused by the target; and
validation alone), the best of ``--passes`` whole passes over the first ``--chunks`` chunks of
each file. With ``--trim-every K`` the C heaps' free pages are handed back after every K-th
chunk, as validation does (``stage_validate.TRIM_EVERY``); 0 never does, to see what the trim costs.

    uv run --group dev python -m benchmarks.chunk_cpu --invalid-every 100 --trim-every 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.outcomes import ChunkOutcome
from batchyard.domain.reading import Reading
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk, split_records
from batchyard.pipeline.failed_records import FailedRecordsFormat
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.process_memory import hand_back_free_pages, return_large_blocks
from batchyard.pipeline.results_chunk import applied_part
from batchyard.pipeline.validate import validate_chunk
from benchmarks.datagen import COLUMNS, ORDERS_SCHEMA, write_orders_csv
from benchmarks.validation_cpu import CHUNK_BYTES, CHUNK_RECORDS, validation_memory

DATASET = Dataset.from_dict(ORDERS_SCHEMA)


def first_chunks(path: Path, count: int) -> list[RawChunk]:
    """The first ``count`` chunks of ``path`` as validation cuts them."""
    chunks: list[RawChunk] = []
    with path.open("rb") as stream:
        for raw in read_chunks(
            stream,
            InputFormat.CSV,
            gzip=False,
            dataset=DATASET,
            options=BatchOptions(),
            chunk_bytes=CHUNK_BYTES,
        ):
            chunks.extend(split_records(raw, CHUNK_RECORDS))
            if len(chunks) >= count:
                break
    return chunks[:count]


def one_pass(chunks: list[RawChunk], trim_every: int) -> tuple[float, float]:
    """Milliseconds of this thread's CPU per chunk: validated and made into its part, and of
    that, validated."""
    reading, memory = Reading.of(DATASET), validation_memory()
    failed_format = FailedRecordsFormat("csv", COLUMNS)
    validating = 0.0
    started = time.thread_time()
    for index, raw in enumerate(chunks):
        before = time.thread_time()
        chunk = validate_chunk(raw, DATASET, reading, *memory)
        validating += time.thread_time() - before
        outcome = ChunkOutcome(index, chunk.valid.num_rows, ERRORS_SCHEMA.empty_table())
        staged = chunk.valid.select([*DATASET.primary_key, RECORD_NUMBER])
        applied_part(staged, chunk.errors, outcome, DATASET, failed_format)
        if trim_every and index % trim_every == 0:
            hand_back_free_pages()
    whole = time.thread_time() - started
    return whole * 1000 / len(chunks), validating * 1000 / len(chunks)


def best(chunks: list[RawChunk], trim_every: int, passes: int) -> tuple[float, float]:
    """The best of ``passes`` passes, for the whole and for validation alone."""
    runs = [one_pass(chunks, trim_every) for _ in range(passes)]
    return min(run[0] for run in runs), min(run[1] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--invalid-every", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--trim-every", type=int, default=0, help="0: never hand pages back")
    args = parser.parse_args()
    return_large_blocks()  # as serve and worker do
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        clean_path, invalid_path = Path(tmp) / "clean.csv", Path(tmp) / "invalid.csv"
        write_orders_csv(clean_path, args.rows, bad_every=0)
        write_orders_csv(invalid_path, args.rows, bad_every=args.invalid_every)
        clean = first_chunks(clean_path, args.chunks)
        invalid = first_chunks(invalid_path, args.chunks)
    best_clean, validate_clean = best(clean, args.trim_every, args.passes)
    best_invalid, validate_invalid = best(invalid, args.trim_every, args.passes)
    trim = f"every {args.trim_every} chunks" if args.trim_every else "never"
    print(
        f"trim {trim}: ms of CPU per chunk, clean {best_clean:.2f}, "
        f"1 in {args.invalid_every} invalid {best_invalid:.2f} "
        f"({best_invalid / best_clean:.2f}x, {len(clean)} chunks, best of {args.passes}); "
        f"validation alone {validate_clean:.2f} and {validate_invalid:.2f}"
    )


if __name__ == "__main__":
    main()
