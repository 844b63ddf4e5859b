"""batchyard's full pipeline on the embedded default against ``sqlite3 .import`` of the same file.

One run, one machine, one file: the baseline is measured next to batchyard so the ratio means
something wherever it runs. batchyard does much more than ``.import`` (SHA-256 while copying,
typed validation of every field, an exactly-once ledger, a results file with one row per
record), so the ratio says what that costs.

    uv run --group dev python -m benchmarks.sqlite_import --rows 5000000

Reported: wall time, records per second, peak resident memory (the server's VmHWM; the
sqlite3 process's max RSS from wait4), and the ratio of each time to the baseline's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import psutil
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

from benchmarks.datagen import ORDERS_SCHEMA
from benchmarks.harness import (
    Measurement,
    generated_orders,
    invalid_orders,
    print_stage_times,
    report,
    sha256_of,
    timed_import,
)

BASELINE_DDL = (
    "CREATE TABLE orders (id INTEGER PRIMARY KEY NOT NULL, email TEXT, amount NUMERIC, "
    "status TEXT, ts TEXT, user_id TEXT);"
)


def run_sqlite_import(csv_path: Path, workdir: Path, rows: int) -> Measurement:
    """``sqlite3 db '.import --csv --skip 1 file orders'`` into a table with the same key, in
    a database made afresh (a reused ``--workdir`` holds the last run's)."""
    return sqlite3_import(csv_path, workdir, rows)[0]


def sqlite3_import(csv_path: Path, workdir: Path, rows: int) -> tuple[Measurement, float]:
    """``run_sqlite_import``'s measurement and the CPU seconds the sqlite3 process used."""
    database = workdir / "baseline.db"
    database.unlink(missing_ok=True)
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
    measured = Measurement("sqlite3 .import", seconds, usage.ru_maxrss * 1024, rows)
    return measured, usage.ru_utime + usage.ru_stime


def batchyard_import(
    csv_path: Path,
    workdir: Path,
    rows: int,
    digest: str,
    good: int | None = None,
    label: str = "batchyard (upload → completed)",
    env: dict[str, str] | None = None,
    stages: bool = True,
) -> tuple[Measurement, float]:
    """Upload (streamed, hash checked) → completed, results file written, on a real server of
    its own started with ``env`` on top of the usual (a data directory per run, emptied first: a
    reused ``--workdir`` holds the last run's, whose dataset already exists); the measurement and
    the CPU seconds the server process used from the upload to the end of the batch."""
    data = workdir / f"batchyard-data-{csv_path.stem}"
    shutil.rmtree(data, ignore_errors=True)
    server = BatchyardServer(data, env=env).start()
    try:
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            started = process.cpu_times()
            batch_id, seconds = timed_import(http, csv_path, rows, digest=digest, good=good)
            ended = process.cpu_times()
            if stages:
                print_stage_times(http, batch_id)
        cpu = ended.user + ended.system - started.user - started.system
        return Measurement(label, seconds, server.peak_rss_bytes(), rows), cpu
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    parser.add_argument(
        "--invalid-every", type=int, default=0, help="also import a file with 1 in N invalid"
    )
    args = parser.parse_args()
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 command is needed for the baseline (apt-get install sqlite3)")
    with generated_orders(args.rows, args.workdir) as csv_path:
        workdir, digest = csv_path.parent, sha256_of(csv_path)
        baseline = run_sqlite_import(csv_path, workdir, args.rows)
        print(f"  sqlite3 .import: {baseline.seconds:.2f} s")
        batchyard = batchyard_import(csv_path, workdir, args.rows, digest)[0]
        measured = [baseline, batchyard]
        if args.invalid_every:
            bad_path, good = invalid_orders(csv_path, args.rows, args.invalid_every)
            label = f"batchyard, 1 in {args.invalid_every} invalid"
            measured.append(
                batchyard_import(bad_path, workdir, args.rows, sha256_of(bad_path), good, label)[0]
            )
        report(measured, baseline, csv_path.stat().st_size)


if __name__ == "__main__":
    main()
