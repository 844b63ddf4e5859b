"""Status reads under load: how many ``GET /batches/{id}`` (and friends) one server answers.

One ``batchyard serve`` on 127.0.0.1 (SQLite, or a scratch PostgreSQL database), one dataset, one
finished batch; then ``wrk`` drives each endpoint with an admin token, idle and while a large
import runs, and the figures are printed per endpoint: req/s, p50/p99, errors, and the server
process's CPU time per request (what a request costs, whatever else shares the cores).

    uv run --group dev python -m benchmarks.status_load --backend sqlite
    uv run --group dev python -m benchmarks.status_load --backend postgresql

The server runs with BATCHYARD_RATE_LIMIT_PER_MINUTE=0 (no per-token limit): the benchmark
measures the read path, and one token sending thousands of requests a second would otherwise be
answered 429 after the first 3,000 of each minute. ``wrk`` (Debian: ``apt-get install wrk``)
runs on the same machine as the server, so both share its cores.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
from tests.support.servers import ADMIN_TOKEN, BatchyardServer
from tests.support.uploads import file_chunks

from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv
from benchmarks.harness import TERMINAL, timed_import
from benchmarks.postgres_import import fresh_database, postgres_server

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Load:
    """One wrk run against one endpoint."""

    endpoint: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    #: The server process's CPU time (all its threads) per answered request, in microseconds:
    #: what a request costs, much less disturbed than req/s by other work on shared cores.
    cpu_us: float = 0.0
    #: Reads of the run that waited for the database instead of being answered from memory
    #: (``batchyard_status_reads_total{answer="waited"}``, every kind): each one is a request
    #: held for a query on a busy event loop, what the p99 is made of.
    waited: int = 0


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def parse_wrk(endpoint: str, output: str) -> Load:
    """wrk --latency output → the figures we print; non-2xx answers and socket errors count."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
        output,
    )
    if socket:
        errors += sum(int(n) for n in socket.groups())
    endpoint = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", endpoint)
    return Load(endpoint, rate, p50, p99, errors)


def waited_reads(url: str) -> int:
    """How many status reads and token lookups of requests have waited for the database so far."""
    text = httpx.get(f"{url}/metrics", headers=_AUTH, timeout=30).text
    waited = r'^batchyard_status_reads_total\{[^}]*answer="waited"[^}]*\} (\S+)$'
    found = re.findall(waited, text, re.MULTILINE)
    return int(sum(float(n) for n in found))


def run_wrk(url: str, path: str, connections: int, seconds: int, pid: int | None = None) -> Load:
    """Drive ``path`` with wrk; with ``pid`` (the server's), also its CPU time per request and
    the reads that waited for the database."""
    server = psutil.Process(pid) if pid else None
    waited_before = waited_reads(url) if server else 0
    before = sum(server.cpu_times()[:2]) if server else 0.0
    command = [
        "wrk",
        f"-c{connections}",
        f"-t{min(2, connections)}",  # wrk needs a connection per thread
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        url + path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    load = parse_wrk(path, done.stdout)
    if server is None:
        return load
    requests = load.requests_per_second * seconds
    spent = sum(server.cpu_times()[:2]) - before
    waited = waited_reads(url) - waited_before
    return replace(load, cpu_us=spent / requests * 1e6 if requests else 0.0, waited=waited)


def print_table(title: str, loads: list[Load]) -> None:
    print(f"\n{title}")
    header = f"{'endpoint':<34} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}"
    header += f" {'CPU µs/req':>11} {'waited':>7}"
    print(header)
    print("-" * len(header))
    for load in loads:
        print(
            f"{load.endpoint:<34} {load.requests_per_second:9,.0f} {load.p50_ms:9.2f} "
            f"{load.p99_ms:9.2f} {load.errors:7d} {load.cpu_us:11,.0f} {load.waited:7,d}"
        )


@contextmanager
def running_server(backend: str, workdir: Path) -> Iterator[BatchyardServer]:
    with ExitStack() as stack:
        pg_url = None
        if backend == "postgresql":
            pg_url = stack.enter_context(fresh_database(stack.enter_context(postgres_server())))
        env = {"BATCHYARD_RATE_LIMIT_PER_MINUTE": "0"}
        if pg_url:
            env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
        server = BatchyardServer(workdir / "data", env=env).start()
        try:
            yield server
        finally:
            server.stop()


def endpoints(http: httpx.Client, workdir: Path) -> list[str]:
    """The dataset and one finished batch to read; returns the paths to drive."""
    http.post("/datasets", json=ORDERS_SCHEMA).raise_for_status()
    small = workdir / "small.csv"
    write_orders_csv(small, 1_000, bad_every=0)
    batch_id, _ = timed_import(http, small, 1_000)
    return ["/health", f"/batches/{batch_id}", f"/batches/{batch_id}/history", "/datasets/orders"]


@contextmanager
def imports_running(http: httpx.Client, csv_path: Path) -> Iterator[list[str]]:
    """Upserts of ``csv_path`` into dataset ``bulk``, one after another until the block ends;
    yields the terminal statuses seen (so the caller can tell an import ran throughout)."""
    http.post("/datasets", json={**ORDERS_SCHEMA, "name": "bulk"}).raise_for_status()
    stop, statuses = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            params = {"dataset": "bulk", "format": "csv", "operation": "upsert"}
            created = http.post("/batches", params=params, content=file_chunks(csv_path))
            created.raise_for_status()
            path = f"/batches/{created.json()['batch']}"
            while (status := http.get(path).json()["status"]) not in TERMINAL:
                time.sleep(0.2)
            statuses.append(status)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(1)  # past the upload's first bytes: the pipeline is working
    try:
        yield statuses
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=5, help="per endpoint and phase")
    parser.add_argument("--import-rows", type=int, default=1_000_000, help="0: skip that phase")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: this benchmark needs it (apt-get install wrk)")
    print(f"backend {args.backend}, {args.connections} connections, rate limit off")
    with tempfile.TemporaryDirectory(prefix="batchyard-status-") as tmp:
        workdir = Path(tmp)
        with (
            running_server(args.backend, workdir) as server,
            httpx.Client(base_url=server.url, headers=_AUTH, timeout=600) as http,
        ):
            paths = endpoints(http, workdir)
            pid = server.process.pid if server.process else None
            idle = [run_wrk(server.url, p, args.connections, args.seconds, pid) for p in paths]
            print_table("idle server", idle)
            if args.import_rows:
                big = workdir / "big.csv"
                write_orders_csv(big, args.import_rows, bad_every=0)
                with imports_running(http, big) as statuses:
                    busy = [
                        run_wrk(server.url, p, args.connections, args.seconds, pid) for p in paths
                    ]
                title = f"during {args.import_rows:,}-row imports, back to back"
                print_table(f"{title} (finished meanwhile: {statuses or 'none'})", busy)


if __name__ == "__main__":
    main()
