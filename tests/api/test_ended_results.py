"""Results for every ended batch (validation_failed, cancelled, failed, hash_mismatch) and
options.max_error_rate, on each backend through the HTTP API."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from support.items import ITEMS, failed_records_of, items_csv, results_of, row_count, upload
from support.waiting import TERMINAL as TERMINAL_STATUSES
from support.waiting import wait_for_status

COUNTERS = (
    "total_operations",
    "processed_operations",
    "successful_operations",
    "failed_operations",
)


@pytest.fixture
async def items(client: httpx.AsyncClient) -> None:
    response = await client.post("/datasets", json=ITEMS)
    assert response.status_code == 201, response.text


async def counters_agreed(client: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    """The ended batch, once its counters were checked against its results file, its newest
    history snapshot and the last state its events stream sent: all four say the same."""
    batch: dict[str, Any] = (await client.get(f"/batches/{batch_id}")).json()
    outcomes = Counter(r["outcome"] for r in await results_of(client, batch_id))
    succeeded, failed = outcomes["succeeded"], outcomes["failed"]
    assert (
        batch["successful_operations"],
        batch["failed_operations"],
        batch["processed_operations"],
    ) == (succeeded, failed, succeeded + failed), (batch, outcomes)
    counters = {name: batch[name] for name in COUNTERS}
    newest = (await client.get(f"/batches/{batch_id}/history")).json()[0]
    assert newest["status"] == batch["status"]
    assert {name: newest[name] for name in COUNTERS} == counters, newest
    events = (await client.get(f"/batches/{batch_id}/events")).text
    sent = [line[len("data:") :] for line in events.splitlines() if line.startswith("data:")]
    last = json.loads(sent[-1])
    assert last["status"] == batch["status"]
    assert {name: last[name] for name in COUNTERS} == counters, last
    return batch


async def test_max_errors_results_name_invalid_and_unread_records(
    client: httpx.AsyncClient, items: None
) -> None:
    # 64 KiB chunks: max_errors trips in the first chunk, long before the input's end.
    body = items_csv(6000, bad={3, 7, 11})
    batch = await upload(client, body, max_errors=2)
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "validation_failed", ended
    # The counters say what the results file says: three invalid records found, none applied.
    ended = await counters_agreed(client, batch["batch"])
    assert (ended["failed_operations"], ended["successful_operations"]) == (3, 0), ended
    assert ended["processed_operations"] == 3, ended
    assert ended["total_operations"] is None, "it stopped reading before the input's end"

    rows = await results_of(client, batch["batch"])
    assert [int(r["record_number"]) for r in rows] == list(range(1, 6001))
    failed = {int(r["record_number"]): r for r in rows if r["outcome"] == "failed"}
    assert sorted(failed) == [3, 7, 11]
    assert failed[3]["error_code"] == "invalid_integer"
    assert failed[3]["error_column"] == "qty"
    assert {r["outcome"] for r in rows} == {"failed", "not_processed"}
    assert await row_count(client) == 0

    records = await failed_records_of(client, batch["batch"])
    assert [r["id"] for r in records] == [str(n) for n in range(1, 6001)]
    assert records[2]["qty"] == "x" and records[2]["error"].startswith("invalid_integer")
    assert records[0]["error"].startswith("not_processed:")
    assert records[5999]["note"] == "record 6000 padded to make chunks"


async def test_max_error_rate_is_validated(client: httpx.AsyncClient, items: None) -> None:
    for rate in (0, -0.5, 1.5, "often"):
        response = await client.post(
            "/batches",
            params={"dataset": "items", "options": f'{{"max_error_rate": {rate!r}}}'},
            content=items_csv(2).encode(),
        )
        assert response.status_code == 422, (rate, response.text)
        assert response.json()["error"]["code"] == "invalid_request"


async def test_max_error_rate_judged_on_all_records_at_the_end(
    client: httpx.AsyncClient, items: None
) -> None:
    body = items_csv(10, bad={2, 9})  # 20% invalid
    over = await wait_for_status(client, (await upload(client, body, max_error_rate=0.1))["batch"])
    assert over["status"] == "validation_failed", over
    assert "max_error_rate=0.1" in over["error_message"]
    assert await row_count(client) == 0
    rows = await results_of(client, over["batch"])
    assert [r["outcome"] for r in rows].count("failed") == 2
    assert [r["outcome"] for r in rows].count("not_processed") == 8
    over = await counters_agreed(client, over["batch"])
    assert (over["total_operations"], over["failed_operations"]) == (10, 2), over

    under = await wait_for_status(client, (await upload(client, body, max_error_rate=0.2))["batch"])
    assert under["status"] == "completed", under
    assert (under["successful_operations"], under["failed_operations"]) == (8, 2)


async def test_max_error_rate_stops_early_once_enough_records_are_read(
    client: httpx.AsyncClient, items: None
) -> None:
    body = items_csv(6000, bad=set(range(1, 6001, 2)))  # half of them invalid
    batch = await upload(client, body, max_error_rate=0.01)
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "validation_failed", ended
    log = (await client.get(f"/batches/{batch['batch']}/log")).text
    assert "so far" not in ended["error_message"]
    assert "Validated" not in log  # stopped after a chunk, not at the end of the input
    assert await row_count(client) == 0
    ended = await counters_agreed(client, batch["batch"])
    assert ended["failed_operations"] >= 500 and ended["successful_operations"] == 0, ended


async def test_atomic_refusal_counts_the_invalid_record_it_found(
    client: httpx.AsyncClient, items: None
) -> None:
    batch = await upload(client, items_csv(6000, bad={3}), atomic=True)
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "validation_failed", ended
    ended = await counters_agreed(client, batch["batch"])
    assert (ended["processed_operations"], ended["failed_operations"]) == (1, 1), ended
    assert await row_count(client) == 0


async def test_cancelled_in_validation_counts_the_invalid_records_it_found(
    client: httpx.AsyncClient, items: None
) -> None:
    # max_errors: validation reads on to the end before anything is applied, so the cancel
    # meets the batch while it validates, with records 5 and 9 found invalid in its first chunk.
    batch = await upload(client, items_csv(150_000, bad={5, 9}), max_errors=100)
    await wait_for_status(client, batch["batch"], {"validating", *TERMINAL_STATUSES})
    assert (await client.post(f"/batches/{batch['batch']}/cancel")).status_code == 202
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "cancelled", ended
    ended = await counters_agreed(client, batch["batch"])
    assert ended["failed_operations"] == 2, ended
    assert ended["successful_operations"] == await row_count(client)


async def test_cancelled_in_processing_counts_invalid_records_of_chunks_never_applied(
    client: httpx.AsyncClient, items: None
) -> None:
    total = 120_000
    # Record 119,999 is in one of the last chunks: invalid, and never applied by a cancel.
    batch = await upload(client, items_csv(total, bad={5, total - 1}), max_errors=100)
    await _wait_until_applied(client, batch["batch"])
    assert (await client.post(f"/batches/{batch['batch']}/cancel")).status_code == 202
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "cancelled", ended
    ended = await counters_agreed(client, batch["batch"])
    assert ended["failed_operations"] == 2, ended
    assert ended["total_operations"] == total, ended
    assert 0 < ended["successful_operations"] == await row_count(client) < total - 2


async def _wait_until_applied(client: httpx.AsyncClient, batch_id: str) -> None:
    """Returns once some chunks of the batch are committed, long before the last."""
    deadline = time.monotonic() + 60
    while True:
        seen = (await client.get(f"/batches/{batch_id}")).json()
        if seen["successful_operations"] > 0:
            return
        assert seen["status"] not in TERMINAL_STATUSES, seen
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.01)


async def test_hash_mismatch_has_no_results_409(client: httpx.AsyncClient, items: None) -> None:
    response = await client.post(
        "/batches",
        params={"dataset": "items", "hash": "0" * 64},
        content=items_csv(3).encode(),
    )
    batch = await wait_for_status(client, response.json()["batch"])
    assert batch["status"] == "hash_mismatch"
    for path in ("results", "failed-records"):
        answer = await client.get(f"/batches/{batch['batch']}/{path}")
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "no_results"
        assert "SHA-256" in error["message"]
    retry = await client.post(f"/batches/{batch['batch']}/retry")
    assert retry.status_code == 409 and retry.json()["error"]["code"] == "no_results"
    linked = (await client.get(f"/batches/{batch['batch']}", params={"download": True})).json()
    assert linked["download"] is None


async def test_refused_before_any_record_is_409_with_the_reason(
    client: httpx.AsyncClient, items: None
) -> None:
    batch = await upload(client, "id,unknown_column\n1,2\n")
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "validation_failed"
    answer = await client.get(f"/batches/{batch['batch']}/results")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "no_results"
    assert "unknown_column" in answer.json()["error"]["message"]


async def test_running_batch_results_are_not_ready(client: httpx.AsyncClient, items: None) -> None:
    batch = await upload(client, items_csv(40000))
    answer = await client.get(f"/batches/{batch['batch']}/results")
    if answer.status_code != 200:  # it may have ended already on a fast machine
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "results_not_ready"
    await wait_for_status(client, batch["batch"])


async def test_cancelled_batch_results_match_the_table(
    client: httpx.AsyncClient, items: None
) -> None:
    total = 120_000
    batch = await upload(client, items_csv(total, bad={5}))
    await _wait_until_applied(client, batch["batch"])
    assert (await client.post(f"/batches/{batch['batch']}/cancel")).status_code == 202
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "cancelled", ended

    ended = await counters_agreed(client, batch["batch"])
    rows = await results_of(client, batch["batch"])
    outcomes = [r["outcome"] for r in rows]
    succeeded = outcomes.count("succeeded")
    assert succeeded == ended["successful_operations"] == await row_count(client)
    assert outcomes.count("not_processed") > 0, "cancelled before the end"
    assert [int(r["record_number"]) for r in rows] == list(range(1, total + 1))
    assert rows[4]["outcome"] == "failed" and rows[4]["error_code"] == "invalid_integer"

    records = await failed_records_of(client, batch["batch"])
    assert len(records) == total - succeeded
    linked = (await client.get(f"/batches/{batch['batch']}", params={"download": True})).json()
    assert linked["download"]["url"]

    retry = await client.post(f"/batches/{batch['batch']}/retry")
    assert retry.status_code == 202, retry.text
    done = await wait_for_status(client, retry.json()["batch"])
    assert done["status"] == "completed", done
    assert done["total_operations"] == total - succeeded
    assert await row_count(client) == total - 1  # all but record 5, invalid as sent


async def test_failed_batch_results_say_nothing_was_applied(
    client: httpx.AsyncClient, items: None
) -> None:
    # atomic: record 3001 repeats record 1's key, so the one transaction is rolled back.
    body = items_csv(3000) + "1,1,repeated key\n"
    failed = await wait_for_status(client, (await upload(client, body, atomic=True))["batch"])
    assert failed["status"] == "failed", failed
    assert "record 3001" in failed["error_message"]
    rows = await results_of(client, failed["batch"])
    assert len(rows) == 3001
    assert {r["outcome"] for r in rows} == {"not_processed"}
    assert await row_count(client) == 0
    failed = await counters_agreed(client, failed["batch"])
    assert (failed["processed_operations"], failed["total_operations"]) == (0, 3001), failed
    records = await failed_records_of(client, failed["batch"])
    assert records[3000]["note"] == "repeated key"
    assert records[0]["error"] == "not_processed: the batch failed before this record was applied"


async def test_storage_failing_behind_validation_fails_the_batch_with_exact_counters(
    client: httpx.AsyncClient, items: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chunk's staged tables are written while the next chunk is validated: the write that
    # fails (chunk 2's staged keys, late) still stops the batch, and its end counts what was
    # applied.
    from batchyard.pipeline import stage_validate

    put_table = stage_validate.put_table

    async def failing_put(blobs: Any, key: str, table: Any) -> None:
        if key.endswith("/chunks/2.arrow"):
            await asyncio.sleep(0.05)
            raise OSError("disk full")
        await put_table(blobs, key, table)

    monkeypatch.setattr(stage_validate, "put_table", failing_put)
    total = 60_000
    batch = await upload(client, items_csv(total, bad={5}))
    ended = await wait_for_status(client, batch["batch"])
    assert ended["status"] == "failed", ended
    assert "disk full" in ended["error_message"]
    ended = await counters_agreed(client, batch["batch"])
    assert ended["successful_operations"] == await row_count(client)
    rows = await results_of(client, batch["batch"])
    assert [int(r["record_number"]) for r in rows] == list(range(1, total + 1))
    assert rows[4]["outcome"] == "failed"
