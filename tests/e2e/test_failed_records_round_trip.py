"""The failed-records file through the real server: each failed record exactly as sent, across
chunks, whether validation or the target refused it, for CSV and JSON Lines."""

from __future__ import annotations

import csv
import io
import re

import httpx

from support.waiting import wait_for_status_sync

DATASET = {
    "name": "events",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "ts", "type": "timestamp"},
        {"name": "score", "type": "float"},
        {"name": "note", "type": "string"},
    ],
}
RECORDS = 50_000  # about 2.6 MB: the server cuts 2 MiB chunks
_ERROR_MEMBER = re.compile(r', "error": "(?:[^"\\]|\\.)*"}$')


def _record(n: int) -> tuple[str, str, str, str]:
    """Record n's fields: every 997th has a float out of range, every 1000th repeats a key."""
    key = str(n - 500 if n % 1000 == 0 else n)
    score = "1e400" if n % 997 == 0 else f"{n}.50"
    note = "" if n % 2 else f'say "hi" to {n}'
    return key, f"2024-01-02T03:04:{n % 60:02d}Z", score, note


def _csv_input() -> str:
    def field(text: str) -> str:
        return '""' if text == "" else f'"{text.replace(chr(34), chr(34) * 2)}"'

    lines = [f"{k},{ts},{score},{field(note)}" for k, ts, score, note in map(_record, _numbers())]
    return "id,ts,score,note\n" + "\n".join(lines) + "\n"


def _jsonl_lines() -> list[str]:
    return [
        f'{{"id": {k}, "ts": "{ts}", "score": {score}, "note": "{note.replace(chr(34), "")}"}}'
        for k, ts, score, note in map(_record, _numbers())
    ]


def _numbers() -> range:
    return range(1, RECORDS + 1)


def _import(http: httpx.Client, body: str, fmt: str) -> tuple[list[int], str]:
    """Into a new dataset: (the failed record numbers, the failed-records file's text)."""
    dataset = {**DATASET, "name": f"events_{fmt}"}
    assert http.post("/datasets", json=dataset).status_code == 201
    params = {"dataset": dataset["name"], "format": fmt}
    response = http.post("/batches", params=params, content=body)
    assert response.status_code == 202, response.text
    batch = wait_for_status_sync(http, str(response.json()["batch"]), timeout=300)
    assert batch["status"] == "completed", batch
    results = csv.DictReader(io.StringIO(http.get(f"/batches/{batch['batch']}/results").text))
    failed = [int(r["record_number"]) for r in results if r["outcome"] == "failed"]
    return failed, http.get(f"/batches/{batch['batch']}/failed-records").text


def test_failed_records_come_back_exactly_as_sent(http: httpx.Client) -> None:
    expected = sorted({n for n in _numbers() if n % 997 == 0 or n % 1000 == 0})

    body = _csv_input()
    failed, text = _import(http, body, "csv")
    assert failed == expected
    sent = list(csv.reader(io.StringIO(body)))
    got = list(csv.reader(io.StringIO(text)))
    assert got[0] == [*sent[0], "error"]
    assert [row[:-1] for row in got[1:]] == [sent[n] for n in expected]
    # Field text as sent, byte for byte: the quoting is the only thing CSV lets differ.
    assert f'{50_000 - 500},2024-01-02T03:04:20Z,50000.50,"say ""hi"" to 50000",' in text

    lines = _jsonl_lines()
    failed, text = _import(http, "\n".join(lines) + "\n", "jsonl")
    assert failed == expected
    assert [_ERROR_MEMBER.sub("}", line) for line in text.splitlines()] == [
        lines[n - 1] for n in expected
    ]
