"""SDK pieces without a server: public surface, error mapping, uploads, schema inference."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import batchyard
from batchyard import client as sdk
from batchyard.client import _core, errors
from batchyard.client._uploads import Upload
from batchyard.client.infer import infer_schema


def test_public_surface_is_curated_and_lazy():
    assert batchyard.Client is sdk.Client and batchyard.AsyncClient is sdk.AsyncClient
    assert set(sdk.__all__) >= {"Client", "AsyncClient", "Batch", "BatchyardError"}
    assert all(not name.startswith("_") for name in sdk.__all__)
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None
    # The server imports the package too: it must not pay for the SDK (httpx, msgspec models).
    code = "import sys, batchyard; print('batchyard.client' in sys.modules, 'httpx' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.stdout.split() == ["False", "False"], loaded.stderr


def test_every_error_is_under_one_root():
    for name in sdk.__all__:
        value = getattr(sdk, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, sdk.BatchyardError), name


def _response(status: int, body: object) -> httpx.Response:
    request = httpx.Request("GET", "http://x/batches/1")
    if isinstance(body, str):
        return httpx.Response(status, text=body, request=request)
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "batch_not_found", sdk.BatchNotFound),
        (404, "dataset_not_found", sdk.DatasetNotFound),
        (404, "not_found", sdk.NotFound),
        (401, "unauthenticated", sdk.AuthenticationFailed),
        (403, "forbidden", sdk.PermissionDenied),
        (403, "invalid_signature", sdk.PermissionDenied),
        (409, "invalid_transition", sdk.InvalidTransition),
        (409, "results_not_ready", sdk.ResultsNotReady),
        (409, "dataset_exists", sdk.DatasetExists),
        (409, "dataset_in_use", sdk.DatasetInUse),
        (422, "invalid_request", sdk.ValidationFailed),
        (422, "invalid_schema", sdk.ValidationFailed),
        (413, "payload_too_large", sdk.PayloadTooLarge),
        (500, "internal_error", sdk.ServerError),
    ],
)
def test_error_codes_map_to_typed_exceptions(status, code, expected):
    body = {"error": {"code": code, "message": "Nope", "details": {"x": 1}}}
    error = errors.error_from_response(_response(status, body))
    assert type(error) is expected
    assert (error.status_code, error.code, error.message, error.details) == (
        status,
        code,
        "Nope",
        {"x": 1},
    )


def test_non_api_error_bodies_still_map_by_status():
    error = errors.error_from_response(_response(502, "<html>bad gateway</html>"))
    assert isinstance(error, sdk.ServerError) and "502" in error.message
    with pytest.raises(sdk.UnexpectedResponse):
        _core.parse_batch(_response(200, "<html>not json</html>"))


def test_transport_errors_are_translated():
    request = httpx.Request("GET", "http://127.0.0.1:9/batches")
    refused = errors.transport_error(httpx.ConnectError("refused", request=request))
    assert isinstance(refused, sdk.TransportError) and "127.0.0.1:9" in refused.message
    slow = errors.transport_error(httpx.ReadTimeout("slow", request=request))
    assert isinstance(slow, sdk.TimeoutExceeded)


def test_requests_are_built_once_for_both_clients(monkeypatch):
    monkeypatch.setenv("BATCHYARD_URL", "http://example.test:1234/")
    monkeypatch.setenv("BATCHYARD_TOKEN", "t0k")
    options = _core.http_options(None, None, 5)
    assert options["base_url"] == "http://example.test:1234"
    assert options["headers"]["Authorization"] == "Bearer t0k"
    call = _core.create_batch_upload(
        "orders",
        format="csv",
        operation="upsert",
        hash="ab" * 32,
        options={"max_errors": 3},
        idempotency_key="k",
        size=10,
    )
    assert call.params == {
        "dataset": "orders",
        "operation": "upsert",
        "format": "csv",
        "hash": "ab" * 32,
        "options": json.dumps({"max_errors": 3}),
    }
    assert call.headers["Idempotency-Key"] == "k" and call.headers["Content-Length"] == "10"
    assert _core.get_batch("../datasets").path == "/batches/..%2Fdatasets"
    listing = _core.list_batches("completed", "orders", "alice", "c1", 10)
    assert (listing.path, listing.params) == (
        "/batches",
        {
            "limit": "10",
            "status": "completed",
            "dataset": "orders",
            "owner": "alice",
            "cursor": "c1",
        },
    )
    assert "owner" not in _core.list_batches(None, None, None, None, 10).params
    with pytest.raises(ValueError, match="hash='auto'"):
        _core.create_batch_from_sources(
            "orders",
            ["http://x/a.csv"],
            format=None,
            operation="insert",
            hash="auto",
            options=None,
            idempotency_key=None,
        )


def test_upload_hashes_in_a_first_pass_and_streams_in_blocks(tmp_path):
    data = b"x" * (_core.CHUNK_BYTES * 2 + 5)
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    seen: list[tuple[int, int | None]] = []
    with Upload(path) as upload:
        assert upload.size == len(data)
        assert upload.sha256() == hashlib.sha256(data).hexdigest()
        blocks = list(upload.blocks(lambda n, t: seen.append((n, t))))
    assert [len(b) for b in blocks] == [_core.CHUNK_BYTES, _core.CHUNK_BYTES, 5]
    assert seen[-1] == (len(data), len(data))

    stream = io.BytesIO(b"skip" + data)
    stream.read(4)  # a file object is sent from where it stands
    upload = Upload(stream)
    assert upload.size == len(data) and upload.sha256() == hashlib.sha256(data).hexdigest()
    assert b"".join(upload.blocks()) == data


def test_auto_hash_needs_a_seekable_file():
    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

    upload = Upload(Pipe())  # type: ignore[arg-type]
    assert upload.size is None
    with pytest.raises(ValueError, match="seekable"):
        upload.sha256()


CSV = (
    "id,email,amount,paid,day,ts,user_id,note\n"
    "1,a@x.io,10.5,true,2024-01-02,2024-01-02T03:04:05,0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a01,\n"
    "2,b@x.io,3,false,2024-01-03,2024-01-02T03:04:06,0b0e5d5e-2b1c-4a4e-9d55-1c1f6f0e6a02,hi\n"
)


def test_infer_csv_types_key_and_name(tmp_path):
    path = tmp_path / "Daily Orders.csv"
    path.write_text(CSV)
    schema = infer_schema(path)
    assert schema.name == "daily_orders"
    assert schema.primary_key == ["id"]
    types = {c.name: (c.type, c.nullable) for c in schema.columns}
    assert types == {
        "id": ("integer", False),
        "email": ("string", True),
        "amount": ("float", True),
        "paid": ("boolean", True),
        "day": ("date", True),
        "ts": ("timestamp", True),
        "user_id": ("uuid", True),
        "note": ("string", True),
    }


def test_infer_gzip_jsonl_and_parquet_alike(tmp_path):
    rows = [{"id": i, "name": f"n{i}", "tags": {"a": i}} for i in range(5)]
    jsonl = tmp_path / "events.jsonl.gz"
    jsonl.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    schema = infer_schema(jsonl)
    assert schema.name == "events"
    assert [(c.name, c.type) for c in schema.columns] == [
        ("id", "integer"),
        ("name", "string"),
        ("tags", "json"),
    ]

    parquet = tmp_path / "prices.parquet"
    table = pa.table(
        {"sku": ["a", "a"], "price": pa.array([1, 2], pa.decimal128(10, 2)), "n": [1, None]}
    )
    pq.write_table(table, parquet)
    schema = infer_schema(parquet)
    assert schema.primary_key == []  # no id column
    assert [(c.name, c.type, c.precision, c.scale) for c in schema.columns] == [
        ("sku", "string", None, None),
        ("price", "decimal", 10, 2),
        ("n", "integer", None, None),
    ]


def test_infer_reads_a_file_object_and_leaves_it_open():
    sample = io.BytesIO(CSV.encode())
    schema = infer_schema(sample, "from_memory")
    assert schema.name == "from_memory" and len(schema.columns) == 8
    assert not sample.closed


def test_infer_rejects_unreadable_samples(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": \n[1, 2]\n')
    with pytest.raises(ValueError, match="cannot read the sample as JSON Lines"):
        infer_schema(path)
    empty = Path(tmp_path / "empty.csv")
    empty.write_text("")
    with pytest.raises(ValueError, match="the sample is empty"):
        infer_schema(empty)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(CSV.encode())[:-12])
    with pytest.raises(ValueError, match="cannot read the sample"):
        infer_schema(cut)


def _batch(status: str, **fields: object) -> sdk.Batch:
    body = {
        "batch": "b1",
        "dataset": "orders",
        "operation": "insert",
        "status": status,
        "created_ts": 1706196472.292,
        "updated_ts": 1706196473.552,
        **fields,
    }
    return _core.parse_batch(_response(200, body))


def test_batch_names_its_owner_when_the_server_does():
    assert _batch("completed", owner="alice").owner == "alice"
    assert _batch("completed").owner is None  # a server from before owners were shown


def test_wait_bookkeeping_reports_each_state_once_and_times_out():
    seen: list[sdk.Batch] = []
    tracker = _core.Tracker("b1", None, seen.append)
    assert tracker.update(_batch("processing")) is False
    assert tracker.update(_batch("processing")) is False  # unchanged: not reported again
    assert tracker.update(_batch("completed")) is True
    assert [b.status for b in seen] == ["processing", "completed"]
    assert seen[0].created_ts.isoformat() == "2024-01-25T15:27:52.292000+00:00"

    expired = _core.Tracker("b1", 0, None)
    with pytest.raises(sdk.WaitTimeout, match="still processing after 0s"):
        expired.update(_batch("processing"))
    assert expired.update(_batch("failed")) is True  # a terminal state is never a timeout


def test_cli_maps_sdk_errors_to_exit_codes():
    import typer

    from batchyard.cli.connection import ExitCode, connect, outcome

    for error, code in [
        (sdk.WaitTimeout(), 5),
        (sdk.BatchNotFound(), 1),
        (sdk.TransportError(), 1),
    ]:
        with pytest.raises(typer.Exit) as stopped, connect("http://127.0.0.1:9", "t"):
            raise error
        assert stopped.value.exit_code == code
    assert outcome(_batch("completed")) == ExitCode.OK
    assert outcome(_batch("cancelled")) == ExitCode.NOT_COMPLETED
