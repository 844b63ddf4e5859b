"""The built-in http operation end to end: each record sent once per attempt with its key, the
receiver's answers as the results (CSV and JSON Lines), retries logged, secrets never shown."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from batchyard.settings import Settings
from support.accounts import open_accounts
from support.operation_receiver import OperationReceiver, answer_for
from support.target_rows import execute, has_table
from support.waiting import wait_for_status, wait_until_sync

ITEMS = {
    "name": "items",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "name", "type": "string"},
    ],
}
RECORDS = 60


def script(record_id: int) -> tuple[str, float | None]:
    if record_id % 10 == 3:
        return "flaky", 1
    if record_id % 10 == 7:
        return "refuse", None
    if record_id % 10 == 9:
        return "slow", 0.3
    return "ok", None


def items_csv(count: int = RECORDS) -> bytes:
    lines = ["id,name"] + [f"{i},item {i}" for i in range(1, count + 1)]
    # One invalid record: it never reaches the operation.
    lines.append("not-a-number,broken")
    return ("\n".join(lines) + "\n").encode()


async def create_http_batch(
    client: httpx.AsyncClient, settings: dict[str, Any], body: bytes | None = None
) -> httpx.Response:
    return await client.post(
        "/batches",
        params={
            "dataset": "items",
            "format": "csv",
            "operation": "http",
            "options": json.dumps({"operation": settings}),
        },
        content=body or items_csv(),
        headers={"Content-Type": "text/csv"},
    )


@pytest.fixture
async def items(client: httpx.AsyncClient) -> None:
    assert (await client.post("/datasets", json=ITEMS)).status_code == 201


async def test_http_batch_matches_the_receivers_answers(
    client: httpx.AsyncClient, items: None
) -> None:
    secret = "Bearer do-not-show-me"
    with OperationReceiver(script) as receiver:
        created = await create_http_batch(
            client,
            {"url": receiver.url, "headers": {"Authorization": secret}, "concurrency": 4},
        )
        assert created.status_code == 202, created.text
        batch = await wait_for_status(client, created.json()["batch"], within=120)
        seen = receiver.requests()
    batch_id = batch["batch"]
    assert batch["status"] == "completed", batch
    failing = [i for i in range(1, RECORDS + 1) if i % 10 == 7]
    assert batch["successful_operations"] == RECORDS - len(failing)
    assert batch["failed_operations"] == len(failing) + 1  # + the invalid record

    # Every valid record arrived, each key names exactly one record, flaky ones twice.
    by_key: dict[str, set[int]] = {}
    for request in seen:
        by_key.setdefault(request.key, set()).add(request.record["id"])
        assert request.headers.get("Authorization") == secret
    assert {key: ids for key, ids in by_key.items() if len(ids) != 1} == {}
    assert by_key == {f"{batch_id}:{i}": {i} for i in range(1, RECORDS + 1)}
    attempts = Counter(r.record["id"] for r in seen)
    assert {i for i, n in attempts.items() if n == 2} == {
        i for i in range(1, RECORDS + 1) if i % 10 == 3
    }
    assert seen[0].record == {"id": seen[0].record["id"], "name": f"item {seen[0].record['id']}"}

    # The results say what the receiver answered.
    text = (await client.get(f"/batches/{batch_id}/results")).text
    rows = {int(r["record_number"]): r for r in csv.DictReader(io.StringIO(text))}
    assert list(rows[1]) == [
        "record_number",
        "outcome",
        "error_code",
        "error_column",
        "error_message",
        "key",
        "output",
    ]
    for number in range(1, RECORDS + 1):
        row = rows[number]
        if number % 10 == 7:
            assert (row["outcome"], row["error_code"]) == ("failed", "http_400")
            assert f"record {number} is not welcome" in row["error_message"]
        else:
            assert row["outcome"] == "succeeded", row
            expected = answer_for({"id": number, "name": f"item {number}"})
            assert json.loads(row["output"]) == expected
    assert rows[RECORDS + 1]["outcome"] == "failed"
    assert rows[RECORDS + 1]["output"] == ""

    jsonl = (await client.get(f"/batches/{batch_id}/results", params={"format": "jsonl"})).text
    objects = [json.loads(line) for line in jsonl.splitlines()]
    assert [o["record_number"] for o in objects] == list(range(1, RECORDS + 2))
    assert objects[0] == {
        "record_number": 1,
        "outcome": "succeeded",
        "code": None,
        "column": None,
        "message": None,
        "key": "1",
        "output": answer_for({"id": 1, "name": "item 1"}),
    }
    assert objects[6]["code"] == "http_400" and objects[6]["output"] is None

    # Retries are in the log; the header's value is nowhere to be seen.
    log = (await client.get(f"/batches/{batch_id}/log")).text
    assert "record 3: http_503 on attempt 1 of 3, retrying" in log
    shown = [
        (await client.get(f"/batches/{batch_id}")).text,
        (await client.get(f"/batches/{batch_id}/history")).text,
        (await client.get("/batches")).text,
        log,
    ]
    assert not [s for s in shown if "do-not-show-me" in s]
    assert batch["options"]["operation"]["headers"] == {"Authorization": "<redacted>"}


async def test_exhausted_retries_and_timeouts_fail_the_record(
    client: httpx.AsyncClient, items: None
) -> None:
    def stubborn(record_id: int) -> tuple[str, float | None]:
        return ("flaky", 5) if record_id == 1 else ("slow", 2.0) if record_id == 2 else ("ok", 0)

    with OperationReceiver(stubborn, retry_after=True) as receiver:
        created = await create_http_batch(
            client,
            {"url": receiver.url, "max_attempts": 2, "timeout": 0.5},
            body=b"id,name\n1,a\n2,b\n3,c\n",
        )
        batch = await wait_for_status(client, created.json()["batch"], within=60)
    assert (batch["status"], batch["successful_operations"]) == ("completed", 1)
    jsonl = (await client.get(f"/batches/{batch['batch']}/results?format=jsonl")).text
    codes = [json.loads(line)["code"] for line in jsonl.splitlines()]
    assert codes == ["http_429", "http_timeout", None]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({}, "options.operation"),
        ({"url": "http://127.0.0.1/x", "concurrency": 0}, "options.operation.concurrency"),
        ({"url": "http://127.0.0.1/x", "verb": "GET"}, "options.operation"),
        ({"url": "ftp://example.com/x"}, None),
        ({"url": "http://127.0.0.1/x", "headers": {"Idempotency-Key": "mine"}}, None),
    ],
)
async def test_wrong_settings_are_a_422(
    client: httpx.AsyncClient, items: None, given: dict[str, Any], field: str | None
) -> None:
    response = await create_http_batch(client, given)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_operation_settings"
    if field is not None:
        assert error["details"]["field"] == field


@pytest.mark.parametrize("option", ["atomic", "dry_run"])
async def test_atomic_and_dry_run_are_refused_for_effects_outside_the_database(
    client: httpx.AsyncClient, items: None, option: str
) -> None:
    """A rollback cannot take back a request sent elsewhere: a dry run would really send it."""
    response = await client.post(
        "/batches",
        params={
            "dataset": "items",
            "operation": "http",
            "options": json.dumps({option: True, "operation": {"url": "http://127.0.0.1/x"}}),
        },
        content=b"id,name\n1,a\n",
    )
    assert response.status_code == 422
    assert f"options.{option} applies to insert, upsert and delete" in response.text
    assert response.json()["error"]["details"]["field"] == f"options.{option}"


async def test_unknown_operation_is_a_422(client: httpx.AsyncClient, items: None) -> None:
    response = await client.post(
        "/batches?dataset=items&operation=teleport", content=b"id,name\n1,a\n"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_operation"


async def test_operations_are_listed_with_their_settings_schema(
    client: httpx.AsyncClient,
) -> None:
    listed = (await client.get("/operations")).json()["operations"]
    by_name = {op["name"]: op for op in listed}
    assert {"insert", "upsert", "delete", "http"} <= set(by_name)
    http = by_name["http"]["settings_schema"]
    assert http["required"] == ["url"]
    assert http["properties"]["concurrency"]["default"] == 8
    assert http["properties"]["headers"]["writeOnly"] is True
    assert by_name["insert"]["settings_schema"] == {"type": "object", "additionalProperties": False}


async def test_cancel_stops_sending_at_once(client: httpx.AsyncClient, items: None) -> None:
    def slow(record_id: int) -> tuple[str, float | None]:
        return "slow", 0.1

    records = 200  # one chunk: the cancel must act inside it, not at its end
    body = ("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, records + 1))).encode()
    with OperationReceiver(slow) as receiver:
        created = await create_http_batch(
            client, {"url": receiver.url, "concurrency": 1}, body=body
        )
        batch_id = created.json()["batch"]
        await asyncio.to_thread(
            wait_until_sync,
            lambda: len(receiver.requests()) >= 5 or None,
            30,
            "the receiver's first requests",
        )
        assert (await client.post(f"/batches/{batch_id}/cancel")).status_code == 202
        batch = await wait_for_status(client, batch_id, within=60)
        sent = {r.record["id"] for r in receiver.requests()}
    assert batch["status"] == "cancelled"
    assert len(sent) < records / 2, "sending went on long after the cancel"
    rows = [
        json.loads(line)
        for line in (
            await client.get(f"/batches/{batch_id}/results?format=jsonl")
        ).text.splitlines()
    ]
    succeeded = {r["record_number"] for r in rows if r["outcome"] == "succeeded"}
    not_sent = {r["record_number"] for r in rows if r["code"] == "not_sent"}
    assert succeeded == sent and not_sent == set(range(1, records + 1)) - sent
    assert batch["successful_operations"] == len(sent)
    assert batch["processed_operations"] == records


async def test_rate_per_second_spaces_the_requests(client: httpx.AsyncClient, items: None) -> None:
    body = ("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 11))).encode()
    with OperationReceiver(lambda _: ("ok", None)) as receiver:
        started = time.monotonic()
        created = await create_http_batch(
            client, {"url": receiver.url, "rate_per_second": 10}, body=body
        )
        batch = await wait_for_status(client, created.json()["batch"], within=60)
        elapsed = time.monotonic() - started
    assert batch["successful_operations"] == 10
    assert len(receiver.requests()) == 10
    assert elapsed >= 0.9  # 10 requests at 10 per second: the last starts 0.9 s after the first


async def test_roles_allow_or_deny_the_http_operation(settings: Settings) -> None:
    async with open_accounts(settings) as acc:
        assert (await acc.call("admin", "POST", "/datasets", json=ITEMS)).status_code == 201
        for name, operations in (("loader", ["insert"]), ("sender", ["http"])):
            role = {
                "name": name,
                "statements": [
                    {"actions": ["create_batch", "get_batch"], "operations": operations}
                ],
            }
            assert (await acc.call("admin", "POST", "/roles", json=role)).status_code == 201
            await acc.add_user(f"{name}_user", name)
        with OperationReceiver(lambda _: ("ok", None)) as receiver:
            params = {
                "dataset": "items",
                "operation": "http",
                "options": json.dumps({"operation": {"url": receiver.url}}),
            }
            body = b"id,name\n1,a\n"
            refused = await acc.call("loader_user", "POST", "/batches", params=params, content=body)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "operation_not_allowed"
            allowed = await acc.call("sender_user", "POST", "/batches", params=params, content=body)
            assert allowed.status_code == 202, allowed.text
            done = await acc.finished("sender_user", allowed.json()["batch"])
            assert done["successful_operations"] == 1
            assert len(receiver.requests()) == 1
            insert = await acc.call(
                "sender_user", "POST", "/batches", params={"dataset": "items"}, content=body
            )
            assert insert.status_code == 403


async def test_http_batches_leave_the_datasets_table_alone(
    client: httpx.AsyncClient, items: None, settings: Settings
) -> None:
    """The http operation reads records; it neither creates the dataset's table where it is
    missing (dropped by hand, a new target database) nor fails on a table of other columns."""

    async def sent() -> dict[str, Any]:
        created = await create_http_batch(client, {"url": receiver.url}, items_csv(5))
        assert created.status_code == 202, created.text
        return await wait_for_status(client, created.json()["batch"])

    execute(settings, 'DROP TABLE "items"')
    with OperationReceiver(lambda _: ("ok", None)) as receiver:
        done = await sent()
        assert (done["status"], done["successful_operations"]) == ("completed", 5), done
        assert not has_table(settings, "items")

        execute(settings, 'CREATE TABLE "items" (id integer, other_column text)')
        done = await sent()
        assert (done["status"], done["successful_operations"]) == ("completed", 5), done
    assert len(receiver.seen) == 10

    # An insert batch still checks the table it writes.
    refused = await client.post(
        "/batches", params={"dataset": "items", "format": "csv"}, content=b"id,name\n1,a\n"
    )
    ended = await wait_for_status(client, refused.json()["batch"])
    assert ended["status"] in ("failed", "validation_failed"), ended
    assert "other_column" in ended["error_message"], ended
