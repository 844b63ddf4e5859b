"""Two hundred live event streams of one running batch on a real server, on each backend.

Every follower sees the batch to its end; status reads stay as quick as the runtime attack tests
require while they follow; and the server's reads for them stay bounded by the watcher's
design (a few dozen a second at most), where one re-read per follower every half second would
be 400 a second. On PostgreSQL the database's own count of transactions, while the followers
wait for the batch to start, says the same whatever part of the server would read: it does not
grow from one follower to 200.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from support.backend_server import serve_backend
from support.gated_source import GatedSource
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.workers import queue_deployment

POLLER = Path(__file__).resolve().parent.parent / "support" / "status_poller.py"
FOLLOWERS = 200
ROWS = 300_000
#: Followers that close their stream after the first event, before the batch runs.
LEAVERS = 10
#: As in tests/api/test_attacks_runtime.py: a scheduling hiccup of a loaded 2-core machine must
#: not fail the test, status reads queued behind 200 streams (seconds) must.
_MAX_P95 = 0.5
#: The watcher reads at most once per 50 ms gap plus its 0.5 s poll: 22 a second, whatever the
#: number of followers. Followers reading for themselves would need 400 a second.
_MAX_READS_PER_SECOND = 25

#: While the batch waits for its source, PostgreSQL counts every transaction on the database,
#: however the server reads, first with one follower, then with all: the followers that join
#: share the first one's reads and token lookups, where 199 more reading for themselves every
#: half second would add 398 a second or more. Allows for the server's periodic work.
_MAX_GROWTH_PER_SECOND = 10
#: How long each of those counts lasts.
_COUNT_SECONDS = 3.0
#: A PostgreSQL connection left idle reports its statistics within 10 s (PGSTAT_IDLE_INTERVAL).
_STATS_SECONDS = 11.0

Event = tuple[str, dict[str, Any]]
_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _transactions_per_second(pg_url: str | None) -> float:
    """Transactions per second on the test's PostgreSQL database over ``_COUNT_SECONDS``,
    once the server's idle connections have reported what they did before (PostgreSQL takes up
    to ``_STATS_SECONDS`` for that)."""
    if pg_url is None:
        return 0.0
    await asyncio.sleep(_STATS_SECONDS)
    before = await asyncio.to_thread(_transactions, pg_url)
    await asyncio.sleep(_COUNT_SECONDS)
    return (await asyncio.to_thread(_transactions, pg_url) - before) / _COUNT_SECONDS


def _transactions(pg_url: str) -> float:
    """Transactions committed or rolled back on the test's PostgreSQL database so far."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return float(row[0])


def _metric(server: BatchyardServer, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def _follow(client: httpx.AsyncClient, batch_id: str, connected: list[int]) -> list[Event]:
    """The stream's events until the server ends it; counts itself connected on the first.

    Bytes are parsed once the stream has ended: 200 parsers at work would take the machine's
    time from the server being measured.
    """
    received: list[bytes] = []
    async with client.stream("GET", f"/batches/{batch_id}/events") as response:
        assert response.status_code == 200, await response.aread()
        async for block in response.aiter_bytes():
            if not received:
                connected.append(1)
            received.append(block)
    events: list[Event] = []
    name = ""
    for line in b"".join(received).decode().splitlines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1])))
    return events


async def _leave_at_once(client: httpx.AsyncClient, batch_id: str) -> None:
    """A follower that goes away after the first event (a closed tab)."""
    async with client.stream("GET", f"/batches/{batch_id}/events") as response:
        async for _ in response.aiter_bytes():
            return


async def _settles_at(server: BatchyardServer, name: str, value: float, within: float) -> None:
    deadline = time.monotonic() + within
    while (seen := await asyncio.to_thread(_metric, server, name)) != value:
        assert time.monotonic() < deadline, f"{name} is {seen}, not {value}"
        await asyncio.sleep(0.05)


def _start_poller(server: BatchyardServer, batch_id: str) -> subprocess.Popen[str]:
    """GET /batches/{id} every 50 ms until the batch ends, timed from a process of its own."""
    command = [sys.executable, str(POLLER), server.url, ADMIN_TOKEN, batch_id]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def _wait_for(connected: list[int], count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while len(connected) < count:
        assert time.monotonic() < deadline, f"only {len(connected)} streams started"
        await asyncio.sleep(0.05)


async def test_200_followers_share_one_source_and_status_reads_stay_quick(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    csv_path = tmp_path / "orders.csv"
    write_orders_csv(csv_path, ROWS, bad_every=0)
    pg_url = str(request.getfixturevalue("pg_url")) if backend == "postgresql" else None
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    limits = httpx.Limits(max_connections=FOLLOWERS + LEAVERS + 10, max_keepalive_connections=0)
    with serve_backend(tmp_path, backend, request) as server, GatedSource(csv_path) as source:
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, timeout=180, limits=limits
        ) as client:
            assert (await client.post("/datasets", json=ORDERS_SCHEMA)).status_code == 201
            body = {"dataset": "orders", "sources": [source.url]}
            created = await client.post("/batches", json=body)
            assert created.status_code == 202, created.text
            batch_id = created.json()["batch"]

            connected: list[int] = []
            streams = [asyncio.create_task(_follow(client, batch_id, connected))]
            await _wait_for(connected, 1, within=30)
            with_one = await _transactions_per_second(pg_url)
            streams += [
                asyncio.create_task(_follow(client, batch_id, connected))
                for _ in range(FOLLOWERS - 1)
            ]
            await _wait_for(connected, FOLLOWERS, within=60)
            await asyncio.gather(*(_leave_at_once(client, batch_id) for _ in range(LEAVERS)))
            # Those that left hold nothing: exactly the followers are open on the server.
            await _settles_at(server, "batchyard_event_followers", FOLLOWERS, within=10)
            with_all = await _transactions_per_second(pg_url)
            reads_before = await asyncio.to_thread(_metric, server, "batchyard_event_reads_total")
            started = time.monotonic()

            source.release()
            poller = _start_poller(server, batch_id)
            followed = await asyncio.wait_for(asyncio.gather(*streams), timeout=180)
            elapsed = time.monotonic() - started
            reads = await asyncio.to_thread(_metric, server, "batchyard_event_reads_total")
            reads -= reads_before
            await _settles_at(server, "batchyard_event_followers", 0, within=10)
            out, _ = await asyncio.to_thread(poller.communicate, timeout=60)

    assert poller.returncode == 0
    latencies: list[float] = json.loads(out)

    for events in followed:
        assert events[-1][0] == "end", events[-3:]
        final = events[-1][1]
        outcome = (final["status"], final["successful_operations"])
        assert outcome == ("completed", ROWS), final["error_message"]
        processed = [data["processed_operations"] or 0 for kind, data in events if kind == "batch"]
        assert processed == sorted(processed)  # counters only move forward
    assert len(latencies) >= 20, "the batch ended before status reads could be timed"
    assert _p95(latencies) < _MAX_P95, sorted(latencies)[-5:]
    assert reads / elapsed < _MAX_READS_PER_SECOND, f"{reads:.0f} reads in {elapsed:.1f}s"
    growth = with_all - with_one
    assert growth < _MAX_GROWTH_PER_SECOND, f"{with_one:.1f}/s with one, {with_all:.1f}/s with all"


def test_followers_on_an_api_only_server_see_what_workers_do(tmp_path: Path, pg_url: str) -> None:
    """Queue mode: the batch is run by worker processes, whose changes reach the API process's
    watcher by its poll; the follower sees the counters move and the end, as in embedded mode."""
    csv_path = tmp_path / "orders.csv"
    write_orders_csv(csv_path, 100_000, bad_every=0)
    with (
        queue_deployment(pg_url, tmp_path / "data", chunk_bytes=256 * 1024) as (api, _),
        httpx.Client(base_url=api.url, headers=_ADMIN, timeout=120) as http,
    ):
        assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        batch_id = str(upload(http, csv_path)["batch"])
        events: list[Event] = []
        with http.stream("GET", f"/batches/{batch_id}/events") as stream:
            name = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line.split(":", 1)[1])))

    assert events[-1][0] == "end", [(kind, data["status"]) for kind, data in events]
    assert (events[-1][1]["status"], events[-1][1]["successful_operations"]) == (
        "completed",
        100_000,
    )
    batches = [data for kind, data in events if kind == "batch"]
    assert len(batches) >= 2, "only the end was seen: no change arrived while it ran"
    processed = [data["processed_operations"] or 0 for data in batches]
    assert processed == sorted(processed)
