"""batchyard's full pipeline on the embedded default against ``sqlite3 .import`` of the same file.

One run, one machine, one file: the baseline is measured next to batchyard so the ratio means
something wherever it runs. batchyard does much more than ``.import`` (SHA-256 while copying,
typed validation of every field, an exactly-once ledger, a results file with one row per
record), so the ratio says what that costs.

    uv run python -m benchmarks.sqlite_import --rows 5000000

Reported: wall time, records per second, peak resident memory (the server's VmHWM; the
sqlite3 process's max RSS from wait4), and the ratio of each time to the baseline's.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

TERMINAL = {"completed", "failed", "cancelled", "hash_mismatch", "validation_failed"}
BASELINE_DDL = (
    "CREATE TABLE orders (id INTEGER PRIMARY KEY NOT NULL, email TEXT, amount NUMERIC, "
    "status TEXT, ts TEXT, user_id TEXT);"
)


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    peak_rss_bytes: int
    rows: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def run_sqlite_import(csv_path: Path, workdir: Path, rows: int) -> Measurement:
    """``sqlite3 db '.import --csv --skip 1 file orders'`` into a table with the same key."""
    database = workdir / "baseline.db"
    script = f"{BASELINE_DDL}\n.import --csv --skip 1 {csv_path} orders\n"
    started = time.perf_counter()
    process = subprocess.Popen(
        ["sqlite3", str(database)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert process.stdin is not None
    process.stdin.write(script.encode())
    process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"sqlite3 .import failed with exit code {process.returncode}")
    loaded = subprocess.run(
        ["sqlite3", str(database), "SELECT COUNT(*) FROM orders"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if int(loaded) != rows:
        raise RuntimeError(f"sqlite3 .import loaded {loaded} rows, expected {rows}")
    return Measurement("sqlite3 .import", seconds, usage.ru_maxrss * 1024, rows)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            yield block


def run_batchyard(csv_path: Path, workdir: Path, rows: int, digest: str) -> Measurement:
    """Upload (streamed, hash checked) → completed, results file written, on a real server."""
    server = BatchyardServer(workdir / "batchyard-data").start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            started = time.perf_counter()
            created = http.post(
                "/batches",
                params={"dataset": "orders", "format": "csv", "hash": digest},
                content=_file_chunks(csv_path),
                headers={"Content-Type": "application/octet-stream"},
            )
            created.raise_for_status()
            batch_id = created.json()["batch"]
            while (batch := http.get(f"/batches/{batch_id}").json())["status"] not in TERMINAL:
                time.sleep(0.2)
            seconds = time.perf_counter() - started
            if batch["status"] != "completed" or batch["successful_operations"] != rows:
                raise RuntimeError(f"batchyard did not complete the import: {batch}")
            _print_stage_times(http, batch_id)
        return Measurement("batchyard (upload → completed)", seconds, server.peak_rss_bytes(), rows)
    finally:
        server.stop()


def _print_stage_times(http: httpx.Client, batch_id: str) -> None:
    """Where the time went, from the batch's own history (oldest first)."""
    history = list(reversed(http.get(f"/batches/{batch_id}/history").json()))
    stamps = [(entry["status"], float(entry["updated_ts"])) for entry in history]
    print("  batchyard stages (from the batch history):")
    for (status, start), (_, end) in itertools.pairwise(stamps):
        print(f"    {status:<16} {end - start:8.2f} s")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 command is needed for the baseline (apt-get install sqlite3)")
    with tempfile.TemporaryDirectory(prefix="batchyard-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        csv_path = workdir / "orders.csv"
        print(f"generating {args.rows:,} records …")
        write_orders_csv(csv_path, args.rows, bad_every=0)
        digest = sha256_of(csv_path)
        baseline = run_sqlite_import(csv_path, workdir, args.rows)
        print(f"  sqlite3 .import: {baseline.seconds:.2f} s")
        batchyard = run_batchyard(csv_path, workdir, args.rows, digest)
        report([baseline, batchyard], baseline, csv_path.stat().st_size)


if __name__ == "__main__":
    main()
