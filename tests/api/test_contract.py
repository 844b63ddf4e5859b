"""The HTTP contract: auth, error shapes and statuses, cancel, delete, signed downloads."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import httpx

from support.waiting import wait_for_status

UNKNOWN = "7d0c8b36-52d9-4a4b-9b2f-3c0c7e3f1c11"
BIG_CSV = "id,email\n" + "".join(f"{i},u{i}@x.io\n" for i in range(1, 60_001))


async def _completed_batch(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.post(
        "/batches", params={"dataset": "orders"}, content=b"id,email\n1,a@x.io\n2,broken\n"
    )
    return await wait_for_status(client, response.json()["batch"])


async def test_health_needs_no_token_and_everything_else_does(client):
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    assert (await anonymous.get("/health")).status_code == 200
    for method, path in [
        ("GET", "/datasets"),
        ("GET", "/batches"),
        ("GET", f"/batches/{UNKNOWN}"),
        ("POST", "/batches"),
        ("GET", f"/batches/{UNKNOWN}/results"),
    ]:
        response = await anonymous.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "unauthenticated"
    bad = await anonymous.get("/batches", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_missing_batch_is_404_in_the_design_shape(client):
    for path in [
        f"/batches/{UNKNOWN}",
        "/batches/not-a-uuid",
        f"/batches/{UNKNOWN}/history",
        f"/batches/{UNKNOWN}/log",
        f"/batches/{UNKNOWN}/events",
    ]:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == {
            "error": {"code": "batch_not_found", "message": "Batch not found", "details": None}
        }


async def test_dataset_errors(client, orders):
    again = await client.post(
        "/datasets", json={"name": "orders", "columns": [{"name": "a", "type": "string"}]}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "dataset_exists"
    bad_type = await client.post(
        "/datasets", json={"name": "x", "columns": [{"name": "a", "type": "money"}]}
    )
    assert bad_type.status_code == 422 and "money" in bad_type.json()["error"]["message"]
    hostile = await client.post(
        "/datasets", json={"name": 'x"; drop table y', "columns": [{"name": "a", "type": "string"}]}
    )
    assert hostile.status_code == 422
    missing = await client.get("/datasets/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "dataset_not_found"
    unknown = await client.post("/batches", params={"dataset": "nope"}, content=b"a\n1\n")
    assert unknown.status_code == 404


async def test_bad_create_requests_are_422_never_500(client, orders):
    cases = [
        dict(json={"dataset": "orders", "sources": []}),
        dict(json={"dataset": "orders", "sources": ["ftp://x/y.csv"]}),
        dict(json={"dataset": "orders", "sources": ["http://x/y.csv"], "operation": "merge"}),
        dict(json={"dataset": "orders", "sources": ["http://x/y.csv"], "hash": "xyz"}),
        dict(content=b"{not json", headers={"Content-Type": "application/json"}),
        dict(content=b"a\n", params={"dataset": "orders", "options": "{bad"}),
        dict(
            content=b"a\n",
            params={"dataset": "orders", "options": json.dumps({"parallel_streams": 0})},
        ),
        dict(content=b"a\n"),
    ]
    for case in cases:
        response = await client.post("/batches", **case)
        assert response.status_code == 422, (case, response.text)
        assert "code" in response.json()["error"]


async def test_signed_download_needs_no_token_and_refuses_tampering(client, orders):
    batch = await _completed_batch(client)
    with_link = (await client.get(f"/batches/{batch['batch']}", params={"download": "true"})).json()
    link = with_link["download"]
    assert link["validity_ts"] > batch["updated_ts"]
    anonymous = httpx.AsyncClient(transport=client._transport)
    ok = await anonymous.get(link["url"])
    assert ok.status_code == 200 and ok.text.startswith("record_number,outcome")
    assert (await anonymous.get(link["failed_records_url"])).status_code == 200

    parts = urlsplit(link["url"])
    query = parse_qs(parts.query)
    later = int(query["expires"][0]) + 60
    tampered = (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        f"?expires={later}&signature={query['signature'][0]}"
    )
    assert (await anonymous.get(tampered)).status_code == 403
    other_path = link["url"].replace("/results?", "/failed-records?")
    assert (await anonymous.get(other_path)).status_code == 403
    expired = f"{parts.scheme}://{parts.netloc}{parts.path}?expires=1000&signature={query['signature'][0]}"
    assert (await anonymous.get(expired)).status_code == 403


async def test_results_before_completion_are_409(client, orders):
    response = await client.post("/batches", params={"dataset": "orders"}, content=BIG_CSV.encode())
    batch = response.json()
    early = await client.get(f"/batches/{batch['batch']}/results")
    assert early.status_code in {200, 409}
    if early.status_code == 409:
        assert early.json()["error"]["code"] == "results_not_ready"
    await wait_for_status(client, batch["batch"])


async def test_cancel_stops_at_a_chunk_boundary(client, orders):
    """Cancelled as soon as it is accepted (the pipeline shares this event loop and has eleven
    chunks to go): whatever chunks were committed by then are exactly what the batch reports."""
    response = await client.post("/batches", params={"dataset": "orders"}, content=BIG_CSV.encode())
    batch_id = response.json()["batch"]
    cancel = await client.post(f"/batches/{batch_id}/cancel")
    assert cancel.status_code == 202 and cancel.json()["status"] == "cancel"
    final = await wait_for_status(client, batch_id)
    assert final["status"] == "cancelled"
    in_table = (await client.get("/datasets/orders")).json()["row_count"]
    assert final["successful_operations"] == in_table < 60_000
    statuses = [h["status"] for h in (await client.get(f"/batches/{batch_id}/history")).json()]
    assert statuses[:3] == ["cancelled", "cancelling", "cancel"]
    log = (await client.get(f"/batches/{batch_id}/log")).text
    assert "Records committed before the cancel" in log
    again = await client.post(f"/batches/{batch_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


async def test_delete_removes_the_batch_but_keeps_loaded_rows(client, orders):
    batch = await _completed_batch(client)
    response = await client.delete(f"/batches/{batch['batch']}")
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    for _ in range(100):
        if (await client.get(f"/batches/{batch['batch']}")).status_code == 404:
            break
        await asyncio.sleep(0.05)
    assert (await client.get(f"/batches/{batch['batch']}")).status_code == 404
    assert (await client.get(f"/batches/{batch['batch']}/history")).status_code == 404
    assert (await client.get("/datasets/orders")).json()["row_count"] == 1


async def test_running_batch_cannot_be_deleted(client, orders):
    response = await client.post("/batches", params={"dataset": "orders"}, content=BIG_CSV.encode())
    batch_id = response.json()["batch"]
    deleted = await client.delete(f"/batches/{batch_id}")
    assert deleted.status_code in {202, 409}
    if deleted.status_code == 409:
        assert deleted.json()["error"]["code"] == "invalid_transition"
    await wait_for_status(client, batch_id, {"completed", "deleting"})


async def test_list_is_newest_first_with_filters_and_cursor(client, orders):
    ids = []
    for _ in range(3):
        ids.append((await _completed_batch(client))["batch"])
    page1 = (await client.get("/batches", params={"limit": 2})).json()
    page2 = (
        await client.get("/batches", params={"limit": 2, "cursor": page1["next_cursor"]})
    ).json()
    seen = [b["batch"] for b in page1["batches"] + page2["batches"]]
    assert seen == list(reversed(ids))
    assert page2["next_cursor"] is None
    none = (await client.get("/batches", params={"status": "failed"})).json()
    assert none["batches"] == []
    assert (await client.get("/batches", params={"status": "bogus"})).status_code == 422


async def test_openapi_is_served(client):
    spec = (await client.get("/openapi.json")).json()
    assert "/batches/{batch_id}/history" in spec["paths"]
