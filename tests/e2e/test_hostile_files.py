"""Hostile JSON Lines, Parquet and badly encoded CSV through a real server, on SQLite and
PostgreSQL (issue 14): each file ends as docs/data-rules.md says, every record accounted for,
never an internal error and never a traceback in the batch log.

The files come from tests/support/hostile_files.py; test_hostile_csv.py covers hostile UTF-8 CSV.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support import hostile_files as hostile
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.waiting import wait_for_status_sync

MIB = 2**20
RECORD_LIMIT = 64 << 10
HEADER_FIELDS = 64
UPLOAD_LIMIT = 16 * MIB
IGNORE_UNKNOWN = '{"ignore_unknown_columns": true}'
_names = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def http(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """One server per backend for the whole module, with small limits (each case gets its own
    dataset, so cases never see each other's rows)."""
    env = {
        "BATCHYARD_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "BATCHYARD_CHUNK_BYTES": str(64 << 10),
        "BATCHYARD_MAX_RECORD_BYTES": str(RECORD_LIMIT),
        "BATCHYARD_MAX_HEADER_COLUMNS": str(HEADER_FIELDS),
    }
    if request.param == "postgresql":
        url = str(request.getfixturevalue("module_pg_url"))
        env["BATCHYARD_DATABASE_URL"] = url.replace("postgresql://", "postgresql+psycopg://")
    server = BatchyardServer(tmp_path_factory.mktemp(request.param) / "data", env=env).start()
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
        ) as client:
            yield client
    finally:
        server.stop()


def send(http: httpx.Client, body: bytes, filename: str | None, **params: str) -> dict[str, Any]:
    """Upload ``body`` into a new dataset ``items_N`` (id integer, body and tail strings)."""
    name = f"items_{next(_names)}"
    schema = {
        "name": name,
        "primary_key": ["id"],
        "columns": [
            {"name": "id", "type": "integer", "nullable": False},
            {"name": "body", "type": "string"},
            {"name": "tail", "type": "string"},
        ],
    }
    assert http.post("/datasets", json=schema).status_code == 201
    upload: dict[str, Any] = (
        {"files": {"file": (filename, body)}} if filename else {"content": body}
    )
    response = http.post("/batches", params={"dataset": name, **params}, **upload)
    assert response.status_code == 202, response.text
    batch = wait_for_status_sync(http, response.json()["batch"], timeout=120)
    log = http.get(f"/batches/{batch['batch']}/log").text
    assert "Traceback" not in log and "internal error" not in log, log
    return batch


@dataclass(frozen=True)
class Refused:
    """A file refused as a whole: ``validation_failed`` with these words in a short message."""

    make: Callable[[], bytes]
    words: str
    params: tuple[tuple[str, str], ...] = ()
    filename: str | None = None


REFUSED = {
    "jsonl gzip bomb named .jsonl.gz": Refused(
        lambda: hostile.jsonl_gzip_bomb(64 * MIB), "binary data", filename="bomb.jsonl.gz"
    ),
    "jsonl gzip bomb declared jsonl": Refused(
        lambda: hostile.jsonl_gzip_bomb(64 * MIB),
        f"decompressed input exceeds {UPLOAD_LIMIT} bytes",
        (("format", "jsonl"),),
        "bomb.jsonl.gz",
    ),
    "jsonl utf-16 with bom": Refused(hostile.jsonl_utf16, "binary data"),
    "parquet truncated": Refused(hostile.parquet_truncated, "not a readable Parquet file"),
    "parquet garbage footer": Refused(
        hostile.parquet_garbage_footer, "not a readable Parquet file"
    ),
    "parquet schema over the header cap": Refused(
        lambda: hostile.parquet_wide_schema(HEADER_FIELDS + 36),
        f"the Parquet schema has {HEADER_FIELDS + 37} fields, more than the 64 allowed",
        (("options", IGNORE_UNKNOWN),),
    ),
    "csv utf-16 with bom": Refused(hostile.csv_utf16, "binary data"),
    "csv utf-16 declared csv": Refused(
        hostile.csv_utf16, "the CSV header is not valid UTF-8", (("format", "csv"),)
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_unreadable_files_end_validation_failed_plainly(http: httpx.Client, case: Refused) -> None:
    batch = send(http, case.make(), case.filename, **dict(case.params))
    assert batch["status"] == "validation_failed", batch
    message = batch["error_message"]
    assert case.words in message and "internal error" not in message, batch
    assert len(message) < 300, message


@dataclass(frozen=True)
class Read:
    """A file read record by record: ``total`` records, these (record number, code) failed."""

    make: Callable[[], bytes]
    total: int
    failed: list[tuple[int, str]]
    params: tuple[tuple[str, str], ...] = ()


READ = {
    "jsonl invalid utf-8 lines": Read(
        hostile.jsonl_invalid_utf8, 4, [(2, "invalid_encoding"), (3, "invalid_encoding")]
    ),
    "jsonl line over the record limit": Read(
        lambda: hostile.jsonl_line_over(RECORD_LIMIT), 3, [(2, "record_too_large")]
    ),
    "jsonl array, number and string lines": Read(
        hostile.jsonl_not_objects,
        5,
        [(2, "malformed_record"), (3, "malformed_record"), (4, "malformed_record")],
    ),
    "jsonl truncated last line": Read(
        hostile.jsonl_truncated_last_line, 3, [(3, "malformed_record")]
    ),
    "parquet huge binary value": Read(
        lambda: hostile.parquet_huge_value(RECORD_LIMIT), 3, [(2, "record_too_large")]
    ),
    "csv latin-1 bytes": Read(
        hostile.csv_latin1, 4, [(2, "invalid_encoding"), (3, "invalid_encoding")]
    ),
}


@pytest.mark.parametrize("case", READ.values(), ids=READ.keys())
def test_bad_records_fail_alone_and_the_rest_is_stored(http: httpx.Client, case: Read) -> None:
    batch = send(http, case.make(), None, **dict(case.params))
    assert batch["status"] == "completed", batch
    assert batch["total_operations"] == case.total, batch
    assert batch["successful_operations"] == case.total - len(case.failed), batch
    rows = list(csv.DictReader(http.get(f"/batches/{batch['batch']}/results").text.splitlines()))
    assert [int(r["record_number"]) for r in rows] == list(range(1, case.total + 1))
    failed = [(int(r["record_number"]), r["error_code"]) for r in rows if r["outcome"] == "failed"]
    assert failed == case.failed


def test_utf16_declared_jsonl_stores_nothing_and_says_why(http: httpx.Client) -> None:
    """Declared JSON Lines, a UTF-16 file is read line by line as bytes: none is a UTF-8 JSON
    object (the first has the BOM's 0xff, the others start with the NUL of a UTF-16 newline)."""
    batch = send(http, hostile.jsonl_utf16(), None, format="jsonl")
    assert batch["status"] == "completed", batch
    assert batch["successful_operations"] == 0
    assert batch["failed_operations"] == batch["total_operations"] > 0
    rows = list(csv.DictReader(http.get(f"/batches/{batch['batch']}/results").text.splitlines()))
    assert rows[0]["error_code"] == "invalid_encoding"
    assert {r["error_code"] for r in rows} <= {"invalid_encoding", "malformed_record"}
