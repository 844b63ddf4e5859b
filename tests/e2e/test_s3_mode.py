"""S3 mode end to end: the real server keeps everything in a real S3 server (SeaweedFS).

An independent boto3 client checks what is in the bucket; downloads go straight to S3 through
presigned URLs, with no token.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA, write_orders_csv

from support.s3server import FORBIDDEN_BUCKET, SOURCE_BUCKET, STORAGE_BUCKET, S3Server
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.uploads import upload
from support.waiting import wait_for_status_sync
from support.workers import WorkerProcess, queue_env

#: Short enough to watch a link expire, long enough for a fresh one to be used at once.
DOWNLOAD_TTL = 5


def s3_deployment(s3: S3Server, prefix: str) -> dict[str, str]:
    return {
        **s3.env,
        "BATCHYARD_STORAGE_URL": f"s3://{STORAGE_BUCKET}/{prefix}",
        "BATCHYARD_S3_SOURCE_BUCKETS": f"{STORAGE_BUCKET},{SOURCE_BUCKET}",
        "BATCHYARD_CHUNK_BYTES": str(2 * 2**20),
        "BATCHYARD_DOWNLOAD_TTL": str(DOWNLOAD_TTL),
    }


def client_for(server: BatchyardServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    )


@pytest.fixture
def s3_http(
    s3_env: S3Server, s3_prefix: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[httpx.Client]:
    env = s3_deployment(s3_env, s3_prefix)
    if backend == "postgresql":
        pg_url = str(request.getfixturevalue("pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    server = BatchyardServer(tmp_path / "data", env=env)
    try:
        server.start()
        with client_for(server) as http:
            assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
            yield http
    finally:
        server.stop()


def fetch_by_link(http: httpx.Client, batch_id: str, which: str = "url") -> httpx.Response:
    """GET a fresh presigned link with no token; a link that expired under load is renewed."""
    deadline = time.monotonic() + 60
    while True:
        link = http.get(f"/batches/{batch_id}", params={"download": "true"}).json()["download"]
        response = httpx.get(link[which], timeout=60)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response


def write_part(path: Path, rows: int, offset: int) -> int:
    """An orders CSV whose ids start after ``offset`` (so parts never collide); its row count."""
    expected = write_orders_csv(path, rows, bad_every=0)
    header, *lines = path.read_text().splitlines()
    shifted = [f"{int(line.split(',', 1)[0]) + offset},{line.split(',', 1)[1]}" for line in lines]
    path.write_text("\n".join([header, *shifted]) + "\n")
    return expected.rows


def test_import_download_and_delete_in_s3_mode(
    s3_http: httpx.Client, s3_env: S3Server, s3_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    expected = write_orders_csv(path, 40_000, bad_every=100)
    batch = wait_for_status_sync(s3_http, str(upload(s3_http, path)["batch"]))
    batch_id = batch["batch"]
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == expected.good
    assert batch["failed_operations"] == len(expected.bad)

    where = f"{s3_prefix}/batches/{batch_id}"
    deadline = time.monotonic() + 10
    while True:  # the staged chunks go just after the batch ends; what the user sent and got stays
        stored = set(s3_env.keys(STORAGE_BUCKET, f"{where}/"))
        staged = [
            key for key in stored if any(p in key for p in ("/chunks/", "/errors/", "/staged/"))
        ]
        if not staged or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored == {
        f"{where}/input/0",
        f"{where}/manifest.json",
        f"{where}/results.csv",
        f"{where}/failed-records.csv",
        f"{where}/results-summary.json",
    }
    assert not (tmp_path / "data" / "blobs").exists()  # nothing went to the local disk

    results = fetch_by_link(s3_http, batch_id)
    assert results.status_code == 200, results.text
    assert results.headers["content-type"].startswith("text/csv")
    assert results.request.url.host == "127.0.0.1" and "X-Amz-Signature" in str(results.url)
    rows = list(csv.DictReader(results.text.splitlines()))
    assert len(rows) == 40_000
    assert sum(r["outcome"] == "failed" for r in rows) == len(expected.bad)
    failed = fetch_by_link(s3_http, batch_id, "failed_records_url")
    assert len(list(csv.DictReader(failed.text.splitlines()))) == len(expected.bad)
    through_api = s3_http.get(f"/batches/{batch_id}/results")  # with the token, via the API
    assert through_api.status_code == 200 and through_api.text == results.text

    asked = time.time()
    link = s3_http.get(f"/batches/{batch_id}", params={"download": "true"}).json()["download"]
    assert asked + DOWNLOAD_TTL - 1 <= link["validity_ts"] <= time.time() + DOWNLOAD_TTL
    tampered = link["url"].replace("results.csv", "input/0")
    assert httpx.get(tampered).status_code == 403
    deadline = time.monotonic() + 60
    while (expired := httpx.get(link["url"])).status_code == 200:
        assert time.monotonic() < deadline, "the link never expired"
        time.sleep(0.5)
    assert expired.status_code == 403 and "expired" in expired.text

    assert s3_http.delete(f"/batches/{batch_id}").status_code == 202
    deadline = time.monotonic() + 60
    while s3_http.get(f"/batches/{batch_id}").status_code != 404:
        assert time.monotonic() < deadline, "the batch was never deleted"
        time.sleep(0.2)
    assert s3_env.keys(STORAGE_BUCKET, f"{where}/") == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_s3_sources_with_a_glob_and_refused_buckets(
    s3_http: httpx.Client, s3_env: S3Server, s3_prefix: str, tmp_path: Path
) -> None:
    client = s3_env.client()
    total = 0
    for n in range(3):
        part = tmp_path / f"part{n}.csv"
        total += write_part(part, 3_000, offset=n * 3_000)
        client.upload_file(str(part), SOURCE_BUCKET, f"{s3_prefix}/in/part{n}.csv")
    client.put_object(Bucket=SOURCE_BUCKET, Key=f"{s3_prefix}/in/notes.txt", Body=b"not csv")
    client.put_object(Bucket=SOURCE_BUCKET, Key=f"{s3_prefix}/in/deeper/x.csv", Body=b"id\n")
    single = tmp_path / "single.csv"
    total += write_part(single, 1_000, offset=9_000)
    client.upload_file(str(single), STORAGE_BUCKET, f"{s3_prefix}-src/single.csv")
    digest = hashlib.sha256(single.read_bytes()).hexdigest()

    created = s3_http.post(
        "/batches",
        json={
            "dataset": "orders",
            "sources": [
                f"s3://{SOURCE_BUCKET}/{s3_prefix}/in/*.csv",
                {"url": f"s3://{STORAGE_BUCKET}/{s3_prefix}-src/single.csv", "sha256": digest},
            ],
            "options": {"parallel_streams": 4},
        },
    )
    assert created.status_code == 202, created.text
    urls = [source["url"] for source in created.json()["sources"]]
    assert urls == [
        *(f"s3://{SOURCE_BUCKET}/{s3_prefix}/in/part{n}.csv" for n in range(3)),
        f"s3://{STORAGE_BUCKET}/{s3_prefix}-src/single.csv",
    ]
    batch = wait_for_status_sync(s3_http, created.json()["batch"])
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == total
    log = s3_http.get(f"/batches/{batch['batch']}/log").text
    assert "Using 4 parallel streams" in log

    own_input = f"s3://{STORAGE_BUCKET}/{s3_prefix}/batches/{batch['batch']}/input/0"
    refused: list[Any] = [
        f"s3://{FORBIDDEN_BUCKET}/data.csv",
        f"s3://{SOURCE_BUCKET}/{s3_prefix}/in/*.parquet",
        own_input,
        {"url": f"s3://{SOURCE_BUCKET}/{s3_prefix}/in/*.csv", "sha256": digest},
    ]
    for source in refused:
        response = s3_http.post("/batches", json={"dataset": "orders", "sources": [source]})
        assert response.status_code == 422, (source, response.text)
        assert response.json()["error"]["code"] == "invalid_source"
    missing = s3_http.post(
        "/batches",
        json={"dataset": "orders", "sources": [f"s3://{SOURCE_BUCKET}/{s3_prefix}/nope.csv"]},
    )
    failed = wait_for_status_sync(s3_http, missing.json()["batch"])
    assert failed["status"] == "failed"
    assert "does not exist" in failed["error_message"]


def test_api_and_worker_share_only_postgresql_and_s3(
    s3_env: S3Server, s3_prefix: str, pg_url: str, tmp_path: Path
) -> None:
    # Separate data directories: no path on disk is shared between the two processes.
    api_dir, worker_dir = tmp_path / "api", tmp_path / "worker"
    env = queue_env(pg_url, api_dir, **s3_deployment(s3_env, s3_prefix))
    api = BatchyardServer(api_dir, env=env)
    worker = WorkerProcess(worker_dir, env, "worker")
    try:
        api.start()
        worker.start()
        with client_for(api) as http:
            assert http.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
            path = tmp_path / "orders.csv"
            expected = write_orders_csv(path, 30_000, bad_every=50)
            batch = wait_for_status_sync(http, str(upload(http, path)["batch"]), timeout=300)
            assert batch["status"] == "completed", batch
            assert batch["successful_operations"] == expected.good
            assert http.get("/datasets/orders").json()["row_count"] == expected.good
            results = fetch_by_link(http, batch["batch"])
            assert len(list(csv.DictReader(results.text.splitlines()))) == 30_000
        for data_dir in (api_dir, worker_dir):
            assert not (data_dir / "blobs").exists()
        assert s3_env.keys(STORAGE_BUCKET, f"{s3_prefix}/batches/{batch['batch']}/")
    finally:
        worker.stop()
        api.stop()
