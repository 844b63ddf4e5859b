"""Live event streams under load: many followers of a running import, and status reads meanwhile.

One ``batchyard serve`` on 127.0.0.1 (SQLite, or a scratch PostgreSQL database). For each count
of followers (0 first, as the reference): a batch of ``--rows`` records into a new dataset, from
a URL source held back until every follower's stream has its first event, then released. While
it runs, ``wrk`` drives ``GET /batches/{id}`` of that batch with 50 connections, after 3 s in
which (PostgreSQL) the database's transactions per second are counted. Printed per run: the
import's duration, wrk's req/s and p50/p99, how many streams saw the batch end, the events they
got, the watcher's reads per second (``batchyard_event_reads`` on /metrics), the transactions,
and the server's CPU time per status request while wrk ran (the followers' share included: what
200 followers add to each status read's cost, whatever else shares the cores).

    uv run --group dev python -m benchmarks.sse_load --backend sqlite
    uv run --group dev python -m benchmarks.sse_load --backend postgresql

The followers run in this process (one thread, asyncio); ``wrk`` (Debian: ``apt-get install
wrk``) and the server are processes of their own, all on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from tests.support.gated_source import GatedSource
from tests.support.servers import ADMIN_TOKEN, BatchyardServer

from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv
from benchmarks.harness import TERMINAL
from benchmarks.status_load import Load, run_wrk, running_server

STATUS = "GET /batches/{id}"
#: How long each import is watched before wrk starts: the database's transactions are counted
#: then (PostgreSQL), with the import and the followers as the only readers.
_QUIET_SECONDS = 3.0
_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Run:
    """One batch followed by ``followers`` streams, with wrk on its status meanwhile."""

    followers: int
    import_seconds: float
    status: Load
    ended_streams: int
    events: int
    reads_per_second: float
    #: PostgreSQL only: transactions per second in the metadata database during the first
    #: seconds of the import, before wrk starts: the import's and the followers', however they
    #: read (runs with and without followers compare; so do versions of the server).
    transactions_per_second: float | None


class Followers:
    """``count`` event streams of one batch, read in a thread of their own until they end."""

    def __init__(self, url: str, batch_id: str, count: int) -> None:
        self.url, self.batch_id, self.count = url, batch_id, count
        self.connected = 0
        self.ended = 0
        self.events = 0
        self._thread = threading.Thread(target=asyncio.run, args=(self._all(),), daemon=True)

    def start(self, within: float = 120) -> Followers:
        self._thread.start()
        deadline = time.monotonic() + within
        while self.connected < self.count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.connected} of {self.count} streams started")
            time.sleep(0.05)
        return self

    def join(self, within: float = 600) -> None:
        self._thread.join(within)

    async def _all(self) -> None:
        limits = httpx.Limits(max_connections=self.count + 1, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=self.url, headers=_HEADERS, timeout=600, limits=limits
        ) as client:
            await asyncio.gather(*(self._one(client) for _ in range(self.count)))

    async def _one(self, client: httpx.AsyncClient) -> None:
        received: list[bytes] = []
        async with client.stream("GET", f"/batches/{self.batch_id}/events") as response:
            response.raise_for_status()
            async for block in response.aiter_bytes():
                if not received:
                    self.connected += 1
                received.append(block)
        text = b"".join(received).decode()
        self.events += len(re.findall(r"^event:", text, re.MULTILINE))
        self.ended += "event: end" in text


def event_reads(server: BatchyardServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    found = re.search(r"^batchyard_event_reads_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def database_transactions(server: BatchyardServer) -> float | None:
    """Transactions committed or rolled back in the server's PostgreSQL database so far."""
    url = server.env.get("BATCHYARD_DATABASE_URL")
    if not url:
        return None
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    return float(row[0]) if row else None


def wait_for_end(http: httpx.Client, batch_id: str) -> str:
    while (status := str(http.get(f"/batches/{batch_id}").json()["status"])) not in TERMINAL:
        time.sleep(0.1)
    return status


def follow_one_import(
    server: BatchyardServer, http: httpx.Client, csv_path: Path, followers: int, seconds: int
) -> Run:
    dataset = f"orders_{followers}"  # each run inserts into a table of its own: equal work
    http.post("/datasets", json={**ORDERS_SCHEMA, "name": dataset}).raise_for_status()
    with GatedSource(csv_path) as source:
        body = {"dataset": dataset, "sources": [source.url]}
        created = http.post("/batches", json=body)
        created.raise_for_status()
        batch_id = created.json()["batch"]
        streams = Followers(server.url, batch_id, followers).start()
        reads_before, started = event_reads(server), time.monotonic()
        source.release()
        # Transactions first, alone: wrk's own reads would swamp the followers' share.
        transactions_before = database_transactions(server)
        time.sleep(_QUIET_SECONDS)
        transactions_after = database_transactions(server)
        pid = server.process.pid if server.process else None
        status = run_wrk(server.url, f"/batches/{batch_id}", 50, seconds, pid)
        ended_as = wait_for_end(http, batch_id)
        import_seconds = time.monotonic() - started
        reads = event_reads(server) - reads_before
        streams.join()
    if ended_as != "completed":
        raise SystemExit(f"the batch ended {ended_as}: no figures")
    if import_seconds < seconds + _QUIET_SECONDS:
        print(f"  note: the import ended after {import_seconds:.1f}s, before wrk did")
    return Run(
        followers,
        import_seconds,
        status,
        streams.ended,
        streams.events,
        reads / import_seconds,
        None
        if transactions_before is None or transactions_after is None
        else (transactions_after - transactions_before) / _QUIET_SECONDS,
    )


def print_runs(title: str, runs: list[Run]) -> None:
    print(f"\n{title}")
    header = (
        f"{'followers':>9} {'import s':>9} {'status req/s':>13} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'CPU µs/req':>11} {'streams ended':>14} {'events':>8} {'reads/s':>8} "
        f"{'db tx/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        tx = "" if run.transactions_per_second is None else f"{run.transactions_per_second:8.0f}"
        print(
            f"{run.followers:9d} {run.import_seconds:9.1f} "
            f"{run.status.requests_per_second:13,.0f} {run.status.p50_ms:8.1f} "
            f"{run.status.p99_ms:8.1f} {run.status.errors:7d} {run.status.cpu_us:11,.0f} "
            f"{run.ended_streams:>8d}/{run.followers:<5d} {run.events:8,d} "
            f"{run.reads_per_second:8.1f} {tx}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--followers", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records in each import")
    parser.add_argument("--seconds", type=int, default=5, help="wrk's run, during each import")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: this benchmark needs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="batchyard-sse-") as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "orders.csv"
        write_orders_csv(csv_path, args.rows, bad_every=0)
        with (
            running_server(args.backend, workdir) as server,
            httpx.Client(base_url=server.url, headers=_HEADERS, timeout=600) as http,
        ):
            runs = [
                follow_one_import(server, http, csv_path, count, args.seconds)
                for count in args.followers
            ]
        print_runs(f"backend {args.backend}, {args.rows:,}-row imports, wrk -c50 on {STATUS}", runs)


if __name__ == "__main__":
    main()
