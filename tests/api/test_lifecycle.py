"""A batch through the HTTP API: upload, lifecycle, counts, history, log, results."""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import json
import re

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from support.waiting import wait_for_status

CSV = (
    "id,email,amount,status,ts,user_id\n"
    "1,a@x.io,10.50,new,2024-01-02T03:04:05Z,0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a01\n"
    "2,bad-email,3.00,paid,2024-01-02,\n"
    "3,c@x.io,-1,new,,\n"
    "4,d@x.io,7,shipped,,\n"
    "5,e@x.io\n"
    "6,f@x.io,1.00,paid,2024-05-06 07:08:09+02:00,0B0E5D5E2B1C4A4E9D551C1F6F0E6A02\n"
)


async def upload(client: httpx.AsyncClient, body: bytes, **params: str) -> dict[str, object]:
    response = await client.post(
        "/batches",
        params={"dataset": "orders", **params},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


async def test_upload_runs_to_completed_with_exact_counts_and_results(client, orders):
    created = await upload(client, CSV.encode())
    assert created["status"] in {"copied", "validating", "processing", "processed", "completed"}
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "completed", batch
    assert batch["total_operations"] == 6
    assert batch["successful_operations"] == 2
    assert batch["failed_operations"] == 4
    assert batch["processed_operations"] == 6
    assert batch["progress_percentage"] == 100.0
    assert batch["started_ts"] and batch["completed_ts"] >= batch["started_ts"]

    results = await client.get(f"/batches/{batch['batch']}/results")
    assert results.status_code == 200
    rows = list(csv.DictReader(io.StringIO(results.text)))
    assert [r["record_number"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["outcome"] for r in rows] == [
        "succeeded",
        "failed",
        "failed",
        "failed",
        "failed",
        "succeeded",
    ]
    assert [r["error_code"] for r in rows[1:5]] == [
        "pattern_mismatch",
        "below_minimum",
        "not_in_enum",
        "wrong_field_count",
    ]
    assert rows[1]["error_column"] == "email" and rows[1]["key"] == "2"

    failed = await client.get(f"/batches/{batch['batch']}/failed-records")
    failed_rows = list(csv.DictReader(io.StringIO(failed.text)))
    assert [r["id"] for r in failed_rows] == ["2", "3", "4", "5"]
    assert failed_rows[0]["email"] == "bad-email"
    assert "pattern_mismatch" in failed_rows[0]["error"]

    dataset = (await client.get("/datasets/orders")).json()
    assert dataset["row_count"] == 2


async def test_history_is_newest_first_with_one_snapshot_per_transition(client, orders):
    created = await upload(client, CSV.encode())
    await wait_for_status(client, str(created["batch"]))
    history = (await client.get(f"/batches/{created['batch']}/history")).json()
    statuses = [h["status"] for h in history]
    assert statuses == [
        "completed",
        "writing_results",
        "processed",
        "processing",
        "validating",
        "copied",
        "copying",
        "new",
    ]
    assert history[0]["successful_operations"] == 2
    assert "Finished. Inserted: 2, Invalid: 4" in history[0]["log"]
    assert history[-1]["log"] == ""
    assert [h["updated_ts"] for h in history] == sorted(
        (h["updated_ts"] for h in history), reverse=True
    )

    log = (await client.get(f"/batches/{created['batch']}/log")).text
    assert "Received upload" in log
    assert "Invalid record 2: pattern_mismatch" in log
    assert log.strip().endswith("Finished. Inserted: 2, Invalid: 4")


@pytest.mark.parametrize("variant", ["csv.gz", "jsonl", "jsonl.gz", "parquet", "multipart"])
async def test_every_format_and_gzip_imports(client, orders, variant):
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "email": ["a@x.io", "b@x.io", "c@x.io"],
            "amount": ["1.50", "2.00", "3.25"],
            "status": ["new", "paid", "new"],
        }
    )
    if variant.startswith("csv"):
        body = gzip.compress(
            b"id,email,amount,status\n1,a@x.io,1.50,new\n2,b@x.io,2,paid\n3,c@x.io,3.25,new\n"
        )
    elif variant.startswith("jsonl") or variant == "multipart":
        lines = "".join(json.dumps(r) + "\n" for r in table.to_pylist()).encode()
        body = gzip.compress(lines) if variant.endswith(".gz") else lines
    else:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        body = sink.getvalue()
    if variant == "multipart":
        response = await client.post(
            "/batches", params={"dataset": "orders"}, files={"file": ("orders.jsonl", body)}
        )
        assert response.status_code == 202, response.text
        created = response.json()
    else:
        created = await upload(client, body)
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == 3


async def test_hash_is_checked_while_uploading(client, orders):
    body = b"id,email\n1,a@x.io\n"
    good = await upload(client, body, hash=hashlib.sha256(body).hexdigest())
    assert (await wait_for_status(client, str(good["batch"])))["status"] == "completed"

    bad = await upload(client, body, hash="0" * 64)
    assert bad["status"] == "hash_mismatch"
    assert "sha256" in str(bad["error_message"])
    history = (await client.get(f"/batches/{bad['batch']}/history")).json()
    assert [h["status"] for h in history][:2] == ["hash_mismatch", "copied"]


async def test_max_errors_fails_validation_and_applies_nothing(client, orders):
    created = await upload(client, CSV.encode(), options=json.dumps({"max_errors": 2}))
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "validation_failed"
    assert "max_errors" in batch["error_message"]
    assert (await client.get("/datasets/orders")).json()["row_count"] == 0


async def test_input_refused_late_reports_exactly_what_was_applied_while_validating(client, orders):
    """Chunks are applied as soon as they are validated: an input that turns out unreadable
    only near its end ends in validation_failed with counters equal to what the table holds."""
    rows = "".join(f"{i},user{i}@example.io,{i % 997}.25,new,,\n" for i in range(1, 40_001))
    whole = gzip.compress(("id,email,amount,status,ts,user_id\n" + rows).encode())
    created = await upload(client, whole[: len(whole) * 3 // 4])  # the stream stops mid-way
    batch = await wait_for_status(client, str(created["batch"]))
    log = (await client.get(f"/batches/{created['batch']}/log")).text

    assert batch["status"] == "validation_failed", log
    assert "gzip" in batch["error_message"].lower(), batch["error_message"]
    in_table = (await client.get("/datasets/orders")).json()["row_count"]
    assert in_table > 0, log  # the chunks before the damage were applied…
    assert batch["successful_operations"] == in_table  # …and the batch says exactly how many
    assert batch["processed_operations"] == in_table


async def test_results_of_many_chunks_list_every_record_once_in_input_order(client, orders):
    """Results are built several chunks at a time; the file still reads in input order, with
    clean chunks, a chunk with an invalid record and one with a refused key side by side."""
    first = await upload(client, b"id,email\n12345,taken@x.io\n")
    await wait_for_status(client, str(first["batch"]))
    rows = [f"{i},user{i}@example.io,{i % 997}.25,new,,\n" for i in range(1, 20_001)]
    rows[7_000 - 1] = "7000,not-an-email,1.00,new,,\n"
    created = await upload(client, ("id,email,amount,status,ts,user_id\n" + "".join(rows)).encode())
    batch = await wait_for_status(client, str(created["batch"]))
    results = await client.get(f"/batches/{batch['batch']}/results")
    lines = list(csv.DictReader(io.StringIO(results.text)))
    log = (await client.get(f"/batches/{created['batch']}/log")).text

    applying = re.search(
        r"Applying (\d+) chunk\(s\) chunk by chunk(?: \((\d+) applied)?"
        r"|All (\d+) chunk\(s\) applied while validating",
        log,
    )
    assert applying, log
    chunks = sum(int(group or 0) for group in applying.groups())
    assert chunks > 8, log  # chunks of the tests' 64 KiB size
    assert [int(r["record_number"]) for r in lines] == list(range(1, 20_001))
    assert [r["key"] for r in lines] == [str(i) for i in range(1, 20_001)]
    failed = {r["record_number"]: r["error_code"] for r in lines if r["outcome"] == "failed"}
    assert failed == {"7000": "pattern_mismatch", "12345": "duplicate_key"}
    assert (batch["successful_operations"], batch["failed_operations"]) == (19_998, 2)


def _stored(settings, batch_id: str) -> dict[str, int]:
    """The batch's files in local blob storage: top-level part of the key -> files under it."""
    root = settings.data_dir / "blobs" / "batches" / batch_id
    parts = [p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()]
    return {part: parts.count(part) for part in set(parts)}


async def _until_staged_chunks_are_gone(settings, batch_id: str) -> dict[str, int]:
    for _ in range(200):  # removed just after the batch ends, so give it a moment
        stored = _stored(settings, batch_id)
        if not {"chunks", "errors", "staged"} & stored.keys():
            return stored
        await asyncio.sleep(0.05)
    return _stored(settings, batch_id)


async def test_an_ended_batch_keeps_input_and_results_but_not_its_staged_chunks(
    client, orders, settings
):
    """Validation stages every record again as Arrow (about the input's size once more); once
    the batch has ended nothing reads that, so it goes. What the user sent and got stays."""
    header = "id,email,amount,status,ts,user_id\n"
    rows = "".join(f"{i},user{i}@example.io,{i % 997}.25,new,,\n" for i in range(1, 5_001))
    completed = await upload(client, (header + rows + "5001,broken,1,new,,\n").encode())
    refused = await upload(client, CSV.encode(), options=json.dumps({"atomic": True}))
    completed = await wait_for_status(client, str(completed["batch"]))
    refused = await wait_for_status(client, str(refused["batch"]))
    assert (completed["status"], refused["status"]) == ("completed", "validation_failed")

    kept = await _until_staged_chunks_are_gone(settings, str(completed["batch"]))
    files = {"results.csv": 1, "failed-records.csv": 1, "results-summary.json": 1}
    assert kept == {"input": 1, "manifest.json": 1, **files}
    results = await client.get(f"/batches/{completed['batch']}/results")
    assert len(results.text.splitlines()) == 1 + 5_001
    failed = await client.get(f"/batches/{completed['batch']}/failed-records")
    assert failed.text.splitlines()[1].startswith("5001,broken")
    # Refused in validation: its results (written before it ended) stay, its chunks go.
    assert await _until_staged_chunks_are_gone(settings, str(refused["batch"])) == {
        "input": 1,
        **files,
    }


async def test_atomic_with_an_invalid_record_applies_nothing(client, orders):
    created = await upload(client, CSV.encode(), options=json.dumps({"atomic": True}))
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "validation_failed"
    assert (await client.get("/datasets/orders")).json()["row_count"] == 0


async def test_atomic_duplicate_key_rolls_back_every_chunk(client, orders):
    rows = "".join(f"{i},u{i}@x.io,1.00,new,,\n" for i in range(1, 3001))
    body = ("id,email,amount,status,ts,user_id\n" + rows + "1,dup@x.io,1.00,new,,\n").encode()
    created = await upload(client, body, options=json.dumps({"atomic": True}))
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "failed"
    assert "record 3001" in batch["error_message"]
    assert (await client.get("/datasets/orders")).json()["row_count"] == 0


async def test_duplicate_key_in_insert_is_a_per_record_failure(client, orders):
    first = await upload(client, b"id,email\n1,a@x.io\n2,b@x.io\n")
    await wait_for_status(client, str(first["batch"]))
    second = await upload(client, b"id,email\n2,again@x.io\n3,c@x.io\n")
    batch = await wait_for_status(client, str(second["batch"]))
    assert batch["status"] == "completed"
    assert (batch["successful_operations"], batch["failed_operations"]) == (1, 1)
    rows = list(
        csv.DictReader(io.StringIO((await client.get(f"/batches/{batch['batch']}/results")).text))
    )
    assert rows[0]["error_code"] == "duplicate_key"
    assert (await client.get("/datasets/orders")).json()["row_count"] == 3


async def test_unreadable_input_fails_validation_with_a_clear_message(client, orders):
    created = await upload(client, b"id,colour\n1,red\n")
    batch = await wait_for_status(client, str(created["batch"]))
    assert batch["status"] == "validation_failed"
    assert "colour" in batch["error_message"]
