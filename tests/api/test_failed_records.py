"""The failed-records file is what the client sent: each failed record exactly as it came, so
that fixing and resending it changes nothing else (on each backend, through the HTTP API)."""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
import pytest

from support.waiting import wait_for_status

DATASET = {
    "name": "events",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "ts", "type": "timestamp"},
        {"name": "score", "type": "float"},
        {"name": "note", "type": "string"},
        {"name": "code", "type": "string", "enum": ["a", "b"]},
    ],
}

#: Records 2 to 4 fail validation, record 6 the target (its key repeats record 1's).
CSV_INPUT = (
    "id,ts,score,note,code\r\n"
    "1,2024-01-02T03:04:05Z,1.5,plain,a\r\n"
    '2,2024-01-02T03:04:05Z,1e400,"say ""hi""\nthere",a\r\n'
    '3,2024-01-02 03:04Z,2,"",c\r\n'
    "4,,NaN,,a\r\n"
    "5,2024-01-02T03:04:05+01:00,2,x,b\r\n"
    '1,2024-01-02T03:04:05Z,2.50,"",b\r\n'
)

JSONL_LINES = [
    '{"id": 1, "ts": "2024-01-02T03:04:05Z", "score": 1.50}',
    '{"id": 2, "ts": "2024-01-02T03:04:05Z", "score": 1e400, "note": "caf\\u00e9"}',
    '{"id": 3,   "ts": "2024-01-02T03:04Z", "note": {"nested": true}}',
    '{"id": 4, "id": 5}',
    '{"id": 6, "ts": "2024-01-02T03:04:05Z"',
    '{"id": 7, "extra": 1e400}',
    '{"id": 1, "ts": "2024-01-02T03:04:05Z", "score": 2.50, "code": "b"}',
    "{}",
]
JSONL_INPUT = "".join(line + "\r\n" if i % 2 else line + "\n" for i, line in enumerate(JSONL_LINES))
_ERROR_MEMBER = re.compile(r', "error": "(?:[^"\\]|\\.)*"}$')


@pytest.fixture
async def events(client: httpx.AsyncClient) -> None:
    response = await client.post("/datasets", json=DATASET)
    assert response.status_code == 201, response.text


async def _import(client: httpx.AsyncClient, body: str, fmt: str) -> tuple[dict[int, str], str]:
    """Import ``body``: (failed record number → error code, the failed-records file's text)."""
    response = await client.post(
        "/batches", params={"dataset": "events", "format": fmt}, content=body.encode()
    )
    assert response.status_code == 202, response.text
    batch = await wait_for_status(client, str(response.json()["batch"]))
    assert batch["status"] == "completed", batch
    results = (await client.get(f"/batches/{batch['batch']}/results")).text
    rows = csv.DictReader(io.StringIO(results))
    codes = {int(r["record_number"]): r["error_code"] for r in rows if r["outcome"] == "failed"}
    failed = await client.get(f"/batches/{batch['batch']}/failed-records")
    assert failed.headers["content-type"].startswith(
        "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    )
    return codes, failed.text


def _fields(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


async def test_csv_failed_records_are_the_fields_as_sent(client, events) -> None:  # type: ignore[no-untyped-def]
    codes, failed = await _import(client, CSV_INPUT, "csv")
    assert codes == {2: "invalid_float", 3: "not_in_enum", 4: "invalid_float", 6: "duplicate_key"}
    sent = _fields(CSV_INPUT)
    got = _fields(failed)
    assert got[0] == [*sent[0], "error"]
    assert [row[:-1] for row in got[1:]] == [sent[2], sent[3], sent[4], sent[6]]
    lines = failed.split("\n")
    # A NULL stays an empty field and an empty string stays "", so neither turns into the other.
    assert lines[3].startswith('3,2024-01-02 03:04Z,2,"",c,')
    assert lines[4].startswith("4,,NaN,,a,")
    assert lines[5].startswith('1,2024-01-02T03:04:05Z,2.50,"",b,duplicate_key')

    again, failed_again = await _import(client, failed, "csv")  # resent as is: same failures
    assert sorted(again.values()) == sorted(codes.values())
    assert [row[:-1] for row in _fields(failed_again)] == [row[:-1] for row in got]


async def test_jsonl_failed_records_are_the_lines_as_sent(client, events) -> None:  # type: ignore[no-untyped-def]
    codes, failed = await _import(client, JSONL_INPUT, "jsonl")
    assert codes == {
        2: "invalid_float",
        3: "invalid_string",
        4: "malformed_record",
        5: "malformed_record",
        6: "unknown_column",
        7: "duplicate_key",
        8: "missing_value",
    }
    lines = failed.splitlines()
    assert len(lines) == 7
    # Each object line is the line as sent with an "error" member added at its end, and a line
    # that is not a JSON object comes back alone, exactly as sent.
    assert [_ERROR_MEMBER.sub("}", line) for line in lines[:6]] == JSONL_LINES[1:7]
    assert lines[6] == '{"error": "missing_value (column id): column \'id\' is required"}'
    assert json.loads(lines[0])["error"].startswith("invalid_float (column score):")
    assert lines[3] == JSONL_LINES[4]

    again, failed_again = await _import(client, failed, "jsonl")  # resent as is: same failures
    assert sorted(again.values()) == sorted(codes.values())
    assert [_ERROR_MEMBER.sub("}", line) for line in failed_again.splitlines()[:6]] == [
        _ERROR_MEMBER.sub("}", line) for line in lines[:6]
    ]
