"""Headers that are not column names, null markers, delimiters and deletes by key (issue 17,
points 4, 5 and 7), on each backend through the HTTP API, compared with what the table holds."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard import AsyncClient
from batchyard.api.app import create_app
from batchyard.client.models import Column, DatasetSchema
from support.servers import ADMIN_TOKEN
from support.target_rows import stored
from support.waiting import wait_for_status

CONTACTS = {
    "name": "contacts",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False, "from": "Contact ID"},
        {"name": "phone", "type": "string", "from": "Contact Phone Number"},
        {"name": "country", "type": "string", "default": "NL"},
        {"name": "score", "type": "float", "from": "Score", "default": 0},
    ],
}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/datasets", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def load(
    client: httpx.AsyncClient,
    dataset: str,
    body: bytes,
    fmt: str = "csv",
    operation: str = "insert",
    **options: Any,
) -> dict[str, Any]:
    """Upload ``body`` and wait for its batch to end; the batch."""
    params = {"dataset": dataset, "format": fmt, "operation": operation}
    if options:
        params["options"] = json.dumps(options)
    response = await client.post("/batches", params=params, content=body)
    assert response.status_code == 202, response.text
    return await wait_for_status(client, str(response.json()["batch"]))


async def failures(client: httpx.AsyncClient, batch: dict[str, Any]) -> dict[int, str]:
    """Failed record number → error code (column)."""
    text = (await client.get(f"/batches/{batch['batch']}/results")).text
    return {
        int(row["record_number"]): f"{row['error_code']} ({row['error_column']})"
        for row in csv.DictReader(io.StringIO(text))
        if row["outcome"] == "failed"
    }


async def test_headers_map_through_from_and_missing_fields_take_defaults(client, settings):
    created = await create(client, CONTACTS)
    assert created["columns"][1]["from"] == "Contact Phone Number"
    assert created["columns"][2]["default"] == "NL"
    shown = (await client.get("/datasets/contacts")).json()
    assert [c.get("from") for c in shown["columns"]] == [
        "Contact ID",
        "Contact Phone Number",
        None,
        "Score",
    ]
    assert [c.get("default") for c in shown["columns"]] == [None, None, "NL", 0]

    body = b"Contact ID,Contact Phone Number,Score\r\n1,+31 6 1234,1.5\r\n2,,\r\n"
    batch = await load(client, "contacts", body)
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == 2
    # country is not in the header: its default; Score is there but empty: null, not 0.
    assert stored(settings, "contacts") == [(1, "+31 6 1234", "NL", 1.5), (2, None, "NL", None)]


async def test_json_lines_keys_map_and_a_missing_key_takes_the_default(client, settings):
    await create(client, CONTACTS)
    lines = [
        {"Contact ID": 1, "Contact Phone Number": "a", "country": "DE", "Score": 2},
        {"Contact ID": 2, "country": None},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    batch = await load(client, "contacts", body, fmt="jsonl")
    assert batch["status"] == "completed", batch
    # A key sent as null is null; a key not sent takes the default.
    assert stored(settings, "contacts") == [(1, "a", "DE", 2.0), (2, None, None, 0.0)]


async def test_a_parquet_file_without_a_column_takes_its_default(client, settings):
    await create(client, CONTACTS)
    sink = io.BytesIO()
    pq.write_table(pa.table({"Contact ID": [7], "Contact Phone Number": ["p"]}), sink)
    batch = await load(client, "contacts", sink.getvalue(), fmt="parquet")
    assert batch["status"] == "completed", batch
    assert stored(settings, "contacts") == [(7, "p", "NL", 0.0)]


async def test_options_columns_override_the_datasets_mapping_for_one_batch(client, settings):
    await create(client, CONTACTS)
    body = b"ID,Mobile,Score\n5,06-999,3\n"
    batch = await load(client, "contacts", body, columns={"ID": "id", "Mobile": "phone"})
    assert batch["status"] == "completed", batch
    assert batch["options"]["columns"] == {"ID": "id", "Mobile": "phone"}
    assert stored(settings, "contacts") == [(5, "06-999", "NL", 3.0)]
    # The same header without the override names fields the dataset does not read.
    refused = await load(client, "contacts", body)
    assert refused["status"] == "validation_failed"
    assert "'ID', 'Mobile'" in refused["error_message"]


async def test_a_missing_required_field_without_default_refuses_the_input(client):
    await create(client, CONTACTS)
    batch = await load(client, "contacts", b"Contact Phone Number\nx\n")
    assert batch["status"] == "validation_failed"
    assert "'id' (read from 'Contact ID')" in batch["error_message"], batch["error_message"]


RATES_CSV = "id,rate,label\n1,NA,x\n2,1.5,NA\n3,,\n4,N/A,N/A\n"


def reference(text: str, markers: set[str]) -> list[tuple[Any, ...]]:
    """What Python's csv module reads, with ``markers`` as null (the rows batchyard stores)."""
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        values = {k: None if v in markers else v for k, v in row.items()}
        rate = None if values["rate"] is None else float(values["rate"])
        rows.append((int(row["id"]), rate, values["label"]))
    return rows


def rates(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "rate", "type": "float"},
            {"name": "label", "type": "string"},
        ],
        **extra,
    }


async def test_null_markers_make_float_and_string_columns_alike(client, settings):
    markers = ["", "NA", "N/A"]
    created = await create(client, rates("rates", null_markers=markers))
    assert created["null_markers"] == markers
    batch = await load(client, "rates", RATES_CSV.encode())
    assert batch["status"] == "completed", batch
    assert batch["failed_operations"] == 0
    assert stored(settings, "rates") == reference(RATES_CSV, set(markers))
    assert stored(settings, "rates")[0] == (1, None, "x")


async def test_without_markers_na_is_text_in_a_string_column_and_refused_in_a_float_one(
    client, settings
):
    await create(client, rates("plain"))
    batch = await load(client, "plain", RATES_CSV.encode())
    assert batch["status"] == "completed", batch
    assert await failures(client, batch) == {1: "invalid_float (rate)", 4: "invalid_float (rate)"}
    assert stored(settings, "plain") == [(2, 1.5, "NA"), (3, None, None)]


async def test_a_batchs_null_markers_override_the_datasets(client, settings):
    await create(client, rates("rates", null_markers=["NA"]))
    markers = ["", "NA", "N/A"]
    batch = await load(client, "rates", RATES_CSV.encode(), null_markers=markers)
    assert batch["status"] == "completed", batch
    assert batch["options"]["null_markers"] == markers
    assert stored(settings, "rates") == reference(RATES_CSV, set(markers))


async def test_a_quoted_marker_is_text(client, settings):
    await create(client, rates("rates", null_markers=["", "NA"]))
    batch = await load(client, "rates", b'id,rate,label\n1,,"NA"\n2,,""\n')
    assert batch["status"] == "completed", batch
    assert stored(settings, "rates") == [(1, None, "NA"), (2, None, "")]


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
async def test_tab_semicolon_and_pipe_files_import_with_their_delimiter(
    client, settings, delimiter
):
    await create(client, rates("rates"))
    rows = [["id", "rate", "label"], ["1", "2.5", "a,b"], ["2", "", "c"]]
    text = "".join(delimiter.join(row) + "\n" for row in rows)
    batch = await load(client, "rates", text.encode(), delimiter=delimiter)
    assert batch["status"] == "completed", batch
    assert stored(settings, "rates") == [(1, 2.5, "a,b"), (2, None, "c")]


async def test_a_delete_is_validated_on_its_key_only(client, settings):
    await create(
        client,
        {
            "name": "stock",
            "primary_key": ["id"],
            "columns": [
                {"name": "id", "type": "integer", "nullable": False},
                {"name": "qty", "type": "integer", "nullable": False, "min": 0},
                {"name": "sku", "type": "string", "pattern": "[A-Z]+"},
            ],
        },
    )
    inserted = await load(client, "stock", b"id,qty,sku\n1,5,A\n2,6,B\n3,7,C\n")
    assert inserted["successful_operations"] == 3
    body = b"id,qty,sku\n1,not a number,lower\n2,-5,\nx,1,A\n"
    batch = await load(client, "stock", body, operation="delete")
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == 2
    assert await failures(client, batch) == {3: "invalid_integer (id)"}
    assert stored(settings, "stock") == [(3, 7, "C")]
    # The key alone is enough: required non-key columns may be absent.
    keys_only = await load(client, "stock", b"id\n3\n", operation="delete")
    assert keys_only["status"] == "completed", keys_only
    assert stored(settings, "stock") == []


HOSTILE_DATASETS = [
    ("a column read from batchyard's own field", {"from": "__record_number"}),
    ("a field name far too long", {"from": "x" * 5000}),
    ("an empty field name", {"from": ""}),
    ("a default of another type", {"default": "abc"}),
    ("an object as default", {"default": {"a": 1}}),
]


@pytest.mark.parametrize(("why", "extra"), HOSTILE_DATASETS, ids=[h[0] for h in HOSTILE_DATASETS])
async def test_hostile_mappings_in_a_dataset_are_refused(client, why, extra):
    body = {
        "name": "hostile",
        "columns": [{"name": "n", "type": "integer", **extra}, {"name": "s", "type": "string"}],
    }
    response = await client.post("/datasets", json=body)
    assert response.status_code == 422, (why, response.text)
    assert response.json()["error"]["code"] in {"invalid_schema", "invalid_request"}
    assert (await client.get("/datasets/hostile")).status_code == 404


async def test_a_column_named_as_batchyards_own_is_refused(client):
    body = {"name": "own", "columns": [{"name": "__record_number", "type": "integer"}]}
    response = await client.post("/datasets", json=body)
    assert response.status_code == 422, response.text
    assert "keeps for itself" in response.json()["error"]["message"]


async def test_two_columns_may_not_read_one_field(client):
    body = {
        "name": "twice",
        "columns": [
            {"name": "a", "type": "string", "from": "b"},
            {"name": "b", "type": "string"},
        ],
    }
    response = await client.post("/datasets", json=body)
    assert response.status_code == 422
    assert "'a' and 'b' both read the input field 'b'" in response.json()["error"]["message"]


async def test_null_markers_are_bounded(client):
    response = await client.post("/datasets", json=rates("many", null_markers=["x"] * 100))
    assert response.status_code == 422
    response = await client.post("/datasets", json=rates("long", null_markers=["x" * 300]))
    assert response.status_code == 422


HOSTILE_OPTIONS = [
    ("a column the dataset lacks", {"columns": {"Phone": "mobile"}}),
    ("batchyard's own column as target", {"columns": {"x": "__record_number"}}),
    ("batchyard's own field as source", {"columns": {"__record_number": "phone"}}),
    ("two fields onto one column", {"columns": {"A": "phone", "B": "phone"}}),
    ("a huge field name", {"columns": {"x" * 5000: "phone"}}),
    ("a delimiter that is not offered", {"delimiter": "x"}),
    ("a quote as delimiter", {"delimiter": '"'}),
    ("too many null markers", {"null_markers": ["x"] * 100}),
    ("null markers that are not texts", {"null_markers": [1]}),
]


@pytest.mark.parametrize(("why", "options"), HOSTILE_OPTIONS, ids=[h[0] for h in HOSTILE_OPTIONS])
async def test_hostile_batch_options_are_refused_before_any_batch(client, why, options):
    await create(client, CONTACTS)
    for request in (
        client.post(
            "/batches",
            params={"dataset": "contacts", "options": json.dumps(options)},
            content=b"Contact ID\n1\n",
        ),
        client.post(
            "/batches",
            json={
                "dataset": "contacts",
                "sources": ["http://127.0.0.1:9/x.csv"],
                **{"options": options},
            },
        ),
    ):
        response = await request
        assert response.status_code == 422, (why, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await client.get("/batches")).json()["batches"] == []


async def test_the_sdk_declares_mappings_and_sends_reading_options(settings, tmp_path):
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    schema = DatasetSchema(
        name="people",
        primary_key=["id"],
        null_markers=["", "NA"],
        columns=[
            Column(name="id", type="integer", nullable=False, from_="Person ID"),
            Column(name="age", type="integer", from_="Age (years)"),
            Column(name="city", type="string", default="Utrecht"),
        ],
    )
    sample = tmp_path / "people.tsv"
    sample.write_text("ID\tAge (years)\n1\tNA\n2\t41\n")
    async with (
        app.router.lifespan_context(app),
        AsyncClient(ADMIN_TOKEN, "http://batchyard.test", transport=transport) as sdk,
    ):
        created = await sdk.datasets.create(schema)
        assert [c.from_ for c in created.columns] == ["Person ID", "Age (years)", None]
        assert created.columns[2].default == "Utrecht"
        assert (await sdk.datasets.get("people")).null_markers == ["", "NA"]
        options = {"delimiter": "\t", "columns": {"ID": "id"}}
        batch = await sdk.ingest.create_batch("people", file=sample, options=options)
        batch = await sdk.ingest.wait(batch.id, timeout=60)
    assert batch.status == "completed", batch
    assert stored(settings, "people") == [(1, None, "Utrecht"), (2, 41, "Utrecht")]


async def test_a_marker_in_a_required_column_is_a_missing_value(client, settings):
    body = rates("strict", null_markers=["", "NA"])
    body["columns"][2] = {"name": "label", "type": "string", "nullable": False}
    await create(client, body)
    batch = await load(client, "strict", b"id,rate,label\n1,1,NA\n2,2,ok\n")
    assert await failures(client, batch) == {1: "missing_value (label)"}
    assert stored(settings, "strict") == [(2, 2.0, "ok")]


async def test_a_json_columns_default_is_its_json_value(client, settings):
    await create(
        client,
        {
            "name": "docs",
            "columns": [
                {"name": "id", "type": "integer"},
                {"name": "meta", "type": "json", "default": {"source": "import", "n": [1, 2]}},
                {"name": "tag", "type": "json", "default": "plain"},
            ],
        },
    )
    batch = await load(client, "docs", b"id\n1\n")
    assert batch["status"] == "completed", batch
    [(number, meta, tag)] = stored(settings, "docs")
    meta = meta if isinstance(meta, dict) else json.loads(meta)
    tag = tag if tag == "plain" else json.loads(tag)
    assert (number, meta, tag) == (1, {"source": "import", "n": [1, 2]}, "plain")


async def test_failed_records_keep_the_inputs_headers_and_go_back_in_as_they_are(client, settings):
    await create(client, CONTACTS)
    body = b"Contact ID,Contact Phone Number,Score\n1,a,1.5\n2,b,high\n3,c,NA\n"
    batch = await load(client, "contacts", body)
    assert await failures(client, batch) == {
        2: "invalid_float (score)",
        3: "invalid_float (score)",
    }
    failed = (await client.get(f"/batches/{batch['batch']}/failed-records")).text
    rows = list(csv.reader(io.StringIO(failed)))
    assert rows[0] == ["Contact ID", "Contact Phone Number", "Score", "error"]
    assert [row[:3] for row in rows[1:]] == [["2", "b", "high"], ["3", "c", "NA"]]
    fixed = failed.replace(",high,", ",2.5,")
    again = await load(client, "contacts", fixed.encode(), null_markers=["", "NA"])
    assert again["status"] == "completed", again
    assert again["failed_operations"] == 0
    assert stored(settings, "contacts") == [
        (1, "a", "NL", 1.5),
        (2, "b", "NL", 2.5),
        (3, "c", "NL", None),
    ]


async def test_a_huge_header_field_is_refused_in_a_short_message(client):
    await create(client, CONTACTS)
    huge = "Contact " + "Phone " * 15_000
    batch = await load(client, "contacts", f"Contact ID,{huge}\n1,x\n".encode())
    assert batch["status"] == "validation_failed"
    assert len(batch["error_message"]) < 1000, len(batch["error_message"])
    assert "does not declare" in batch["error_message"]
