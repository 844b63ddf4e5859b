"""CPU throughput of the CSV block cutter and of the whole CSV reader, on 1M-row orders files.

Two files: the orders file as ``datagen`` writes it, and the same records with every field
quoted and CRLF line endings (as Python's csv module and spreadsheet exports write them).
MB/s of CPU time (all threads), so a busy machine skews the figures less than wall time would.

    uv run python -m benchmarks.csv_reader [--rows 1000000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable
from pathlib import Path

from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.schema import Dataset
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.formats_blocks import record_blocks
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

CHUNK = 32 << 20
RECORD = 16 << 20


def make_files(directory: Path, rows: int) -> list[Path]:
    plain = directory / f"orders-{rows}.csv"
    if not plain.exists():
        write_orders_csv(plain, rows, bad_every=100)
    quoted = directory / f"orders-{rows}-quoted-crlf.csv"
    if not quoted.exists():
        with plain.open(newline="") as source, quoted.open("w", newline="") as target:
            csv.writer(target, quoting=csv.QUOTE_ALL).writerows(csv.reader(source))
    return [plain, quoted]


def cut(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in record_blocks(stream, CHUNK, RECORD, quoted=True))


def parse(path: Path) -> int:
    dataset = Dataset.from_dict(ORDERS_SCHEMA)
    with path.open("rb") as stream:
        chunks = read_chunks(
            stream, InputFormat.CSV, gzip=False, dataset=dataset, options=BatchOptions()
        )
        return sum(chunk.record_count for chunk in chunks)


def cpu_seconds(work: Callable[[Path], int], path: Path, repeat: int = 3) -> float:
    """The best of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work(path)
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    args = parser.parse_args()
    for path in make_files(args.dir, args.rows):
        megabytes = path.stat().st_size / 1e6
        for name, work in (("cutter", cut), ("reader", parse)):
            seconds = cpu_seconds(work, path)
            print(f"{path.name:32s} {name:6s} {megabytes / seconds:6.0f} MB/s of CPU")


if __name__ == "__main__":
    main()
