"""Imports through the real server: exact counts, results, URL sources, hashes, events."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil

import httpx
from benchmarks.datagen import write_orders_csv

from support.servers import BatchyardServer, FileServer
from support.uploads import upload
from support.waiting import wait_for_status_sync, wait_until_applying_sync


def test_100k_rows_with_1_percent_bad_rows_of_every_kind(http, orders, tmp_path):
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 100_000, bad_every=100)
    batch = wait_for_status_sync(http, str(upload(http, path)["batch"]))

    assert batch["status"] == "completed", batch
    assert batch["total_operations"] == 100_000
    assert batch["failed_operations"] == len(expected.bad) == 1000
    assert batch["successful_operations"] == expected.good
    assert http.get("/datasets/orders").json()["row_count"] == expected.good

    results = http.get(f"/batches/{batch['batch']}/results")
    rows = list(csv.DictReader(results.text.splitlines()))
    assert [int(r["record_number"]) for r in rows] == list(range(1, 100_001))
    failed = {int(r["record_number"]): r["error_code"] for r in rows if r["outcome"] == "failed"}
    assert failed == expected.bad

    failed_file = http.get(f"/batches/{batch['batch']}/failed-records")
    failed_rows = list(csv.DictReader(failed_file.text.splitlines()))
    assert len(failed_rows) == 1000
    assert failed_rows[0]["id"] == "100" and failed_rows[0]["email"] == "no-at-sign"
    assert failed_rows[0]["error"].startswith("pattern_mismatch (column email)")


def test_gzip_upload_with_hash(http, orders, tmp_path):
    plain = tmp_path / "orders.csv"
    expected = write_orders_csv(plain, 20_000, bad_every=0)
    packed = tmp_path / "orders.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()
    batch = wait_for_status_sync(http, str(upload(http, packed, hash=digest)["batch"]))
    assert batch["status"] == "completed"
    assert batch["successful_operations"] == expected.rows
    assert batch["hash"] == digest


def test_three_url_sources_fetched_in_parallel(http, orders, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    sizes = []
    for n in range(3):
        # distinct id ranges so the three files do not collide on the primary key
        part = served / f"part{n}.csv"
        expected = write_orders_csv(part, 5_000, bad_every=0)
        text = part.read_text().splitlines()
        body = [text[0]] + [
            f"{int(line.split(',', 1)[0]) + n * 5_000},{line.split(',', 1)[1]}" for line in text[1:]
        ]
        part.write_text("\n".join(body) + "\n")
        sizes.append(expected.rows)
    digest = hashlib.sha256((served / "part1.csv").read_bytes()).hexdigest()
    with FileServer(served) as files:
        sources = [
            f"{files.url}/part0.csv",
            {"url": f"{files.url}/part1.csv", "sha256": digest},
            f"{files.url}/part2.csv.gz",
        ]
        shutil.copy(served / "part2.csv", served / "part2.csv.tmp")
        (served / "part2.csv.gz").write_bytes(
            gzip.compress((served / "part2.csv.tmp").read_bytes())
        )
        response = http.post("/batches", json={"dataset": "orders", "sources": sources})
        assert response.status_code == 202, response.text
        batch = wait_for_status_sync(http, response.json()["batch"])
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == sum(sizes) == 15_000
    log = http.get(f"/batches/{batch['batch']}/log").text
    assert "Using 3 parallel streams" in log
    assert log.count("Fetching url") == 3
    results = list(csv.DictReader(http.get(f"/batches/{batch['batch']}/results").text.splitlines()))
    assert len(results) == 15_000  # numbered across the three sources, in source order
    assert [r["record_number"] for r in results] == [str(n) for n in range(1, 15_001)]
    assert {r["outcome"] for r in results} == {"succeeded"}


def test_url_source_hash_mismatch_and_404(http, orders, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "a.csv").write_text("id,email\n1,a@x.io\n")
    with FileServer(served) as files:
        wrong = {"url": f"{files.url}/a.csv", "sha256": "0" * 64}
        mismatch = http.post("/batches", json={"dataset": "orders", "sources": [wrong]}).json()
        missing = http.post(
            "/batches", json={"dataset": "orders", "sources": [f"{files.url}/nope.csv"]}
        ).json()
        first = wait_for_status_sync(http, mismatch["batch"])
        second = wait_for_status_sync(http, missing["batch"])
    assert first["status"] == "hash_mismatch" and "a.csv" in first["error_message"]
    assert second["status"] == "failed" and "404" in second["error_message"]


def test_events_stream_every_change_until_the_end(http, orders, tmp_path):
    path = tmp_path / "orders.csv"
    write_orders_csv(path, 30_000, bad_every=50)
    batch_id = str(upload(http, path)["batch"])
    events: list[tuple[str, dict[str, object]]] = []
    with http.stream("GET", f"/batches/{batch_id}/events", timeout=120) as stream:
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "end":
                    break
    statuses = [data["status"] for kind, data in events if kind == "batch"]
    assert statuses[-1] == "completed"
    assert events[-1][0] == "end"
    processed = [data["processed_operations"] for kind, data in events if kind == "batch"]
    assert processed == sorted(processed)  # counters only move forward


def test_restart_mid_batch_completes_exactly_once(tmp_path):
    """Killed while chunks are applied during validation; the restarted server, configured
    with another chunk size, validates again into the same chunks and skips the applied ones."""
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 400_000, bad_every=100)
    data_dir = tmp_path / "data"
    env = {"BATCHYARD_CHUNK_BYTES": str(1 * 2**20)}
    first = BatchyardServer(data_dir, env=env).start()
    try:
        with httpx.Client(
            base_url=first.url,
            headers={"Authorization": f"Bearer {first.env['BATCHYARD_ADMIN_TOKEN']}"},
            timeout=60,
        ) as http:
            from benchmarks.datagen import ORDERS_SCHEMA

            assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
            batch_id = str(upload(http, path)["batch"])
            wait_until_applying_sync(http, batch_id, "validating")
    finally:
        first.kill()  # kill -9 in the middle of the work
    second = BatchyardServer(data_dir, env={"BATCHYARD_CHUNK_BYTES": str(3 * 2**20)}).start()
    try:
        with httpx.Client(
            base_url=second.url,
            headers={"Authorization": f"Bearer {second.env['BATCHYARD_ADMIN_TOKEN']}"},
            timeout=60,
        ) as http:
            batch = wait_for_status_sync(http, batch_id, timeout=300)
            row_count = http.get("/datasets/orders").json()["row_count"]
            log = http.get(f"/batches/{batch_id}/log").text
    finally:
        second.stop()
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == expected.good
    assert batch["failed_operations"] == len(expected.bad)
    assert row_count == expected.good, log  # nothing lost, nothing applied twice
