"""What every benchmark does the same way: import a file through a running server and time it.

The clock runs from the first byte of the streamed upload to the terminal status, so it covers
the whole pipeline a client waits for (copy with SHA-256, validation, apply, results).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.support.uploads import file_chunks

from benchmarks.datagen import write_orders_csv

TERMINAL = {"completed", "failed", "cancelled", "hash_mismatch", "validation_failed"}


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    peak_rss_bytes: int
    rows: int


def report(measurements: list[Measurement], baseline: Measurement, size_bytes: int) -> None:
    print()
    print(f"{baseline.rows:,} records, {size_bytes / 1e6:,.0f} MB CSV")
    header = f"{'':<32} {'seconds':>9} {'records/s':>12} {'peak RSS MB':>12} {'x baseline':>11}"
    print(header)
    print("-" * len(header))
    for m in measurements:
        ratio = m.seconds / baseline.seconds
        print(
            f"{m.name:<32} {m.seconds:9.2f} {m.rows / m.seconds:12,.0f} "
            f"{m.peak_rss_bytes / 2**20:12,.0f} {ratio:10.2f}x"
        )


@contextmanager
def generated_orders(rows: int, workdir: Path | None = None) -> Iterator[Path]:
    """The benchmark's input: ``rows`` orders, no bad record, as ``orders.csv`` in ``workdir``
    (kept afterwards) or in a temporary directory (removed); every other file goes beside it."""
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        directory = workdir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        csv_path = directory / "orders.csv"
        print(f"generating {rows:,} records …")
        write_orders_csv(csv_path, rows, bad_every=0)
        yield csv_path


def invalid_orders(clean: Path, rows: int, every: int) -> tuple[Path, int]:
    """The same number of orders with one record in ``every`` invalid, beside ``clean``; with
    how many are valid (every invalid one is reported, none applied)."""
    path = clean.with_name(f"orders-invalid-{every}.csv")
    print(f"generating {rows:,} records, one in {every} invalid …")
    return path, write_orders_csv(path, rows, bad_every=every).good


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def timed_import(
    http: httpx.Client,
    csv_path: Path,
    rows: int,
    *,
    digest: str | None = None,
    options: dict[str, Any] | None = None,
    good: int | None = None,
) -> tuple[str, float]:
    """(batch id, seconds) of one CSV import into ``orders``; raises unless every valid row
    (``good``, all ``rows`` by default) landed."""
    params = {"dataset": "orders", "format": "csv"}
    if digest:
        params["hash"] = digest
    if options:
        params["options"] = json.dumps(options)
    started = time.perf_counter()
    created = http.post("/batches", params=params, content=file_chunks(csv_path))
    created.raise_for_status()
    batch_id = str(created.json()["batch"])
    while (batch := http.get(f"/batches/{batch_id}").json())["status"] not in TERMINAL:
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    # How much of the measured time is the client learning of the end, not the pipeline: the
    # poll interval, plus in queue mode how soon the API hears of a worker's transition.
    print(f"  the client saw {batch['status']} {time.time() - batch['completed_ts']:.2f} s late")
    expected = rows if good is None else good
    if batch["status"] != "completed" or batch["successful_operations"] != expected:
        raise RuntimeError(f"batchyard did not complete the import: {batch}")
    return batch_id, seconds


def print_stage_times(http: httpx.Client, batch_id: str, label: str = "batchyard") -> None:
    """Where the time went, from the batch's own history (oldest first)."""
    history = list(reversed(http.get(f"/batches/{batch_id}/history").json()))
    stamps = [(entry["status"], float(entry["updated_ts"])) for entry in history]
    print(f"  {label} stages (from the batch history):")
    for (status, start), (_, end) in itertools.pairwise(stamps):
        print(f"    {status:<16} {end - start:8.2f} s")
