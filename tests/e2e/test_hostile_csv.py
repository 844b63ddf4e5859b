"""Files that real tools write, and hostile ones, imported through a real server (issue 14).

Every record is accounted for: counted, stored exactly as Python's csv module reads it, or failed
with a code; what the client sent wrong ends the batch plainly, never as an internal error.
"""

from __future__ import annotations

import contextlib
import csv
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.servers import BatchyardServer, serving_dataset
from support.uploads import file_chunks
from support.waiting import wait_for_status_sync

SCHEMA = {
    "name": "items",
    "primary_key": ["id"],
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "body", "type": "string"},
        {"name": "tail", "type": "string"},
    ],
}
MIB = 2**20


def serve(
    tmp_path: Path, env: dict[str, str]
) -> contextlib.AbstractContextManager[tuple[BatchyardServer, httpx.Client]]:
    return serving_dataset(tmp_path / "data", SCHEMA, env)


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BatchyardServer, httpx.Client]]:
    """A server that takes at most 64 MiB (compressed or not), in chunks of 64 KiB; shared by
    the tests of this module that need nothing else (each uses its own ids)."""
    env = {"BATCHYARD_MAX_UPLOAD_BYTES": str(64 * MIB), "BATCHYARD_CHUNK_BYTES": str(64 << 10)}
    with serve(tmp_path_factory.mktemp("small"), env) as running:
        yield running


def send(http: httpx.Client, body: Any, **params: str) -> dict[str, Any]:
    response = http.post("/batches", params={"dataset": "items", **params}, content=body)
    assert response.status_code == 202, response.text
    return wait_for_status_sync(http, response.json()["batch"], timeout=300)


def assert_refused_plainly(http: httpx.Client, batch: dict[str, Any], words: str) -> None:
    assert batch["status"] == "validation_failed", batch
    assert words in batch["error_message"], batch
    assert "internal error" not in batch["error_message"]
    assert len(batch["error_message"]) < 300
    log = http.get(f"/batches/{batch['batch']}/log").text
    assert "Traceback" not in log and "internal error" not in log


def inflating(head: bytes, zeros: int) -> bytes:
    """``head`` then ``zeros`` zero bytes, gzip'd: a record too large, then the limit."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return pack.compress(head) + pack.compress(bytes(zeros)) + pack.flush()


def zeros_bomb(path: Path, size: int) -> Path:
    """``size`` zero bytes gzip'd (1 GiB → about 1 MB), written without holding them."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(16 * MIB)
    with path.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(pack.compress(block))
        out.write(pack.flush())
    return path


def test_input_faults_end_validation_failed_with_a_plain_message(small, tmp_path):
    """Binary data, a gzip bomb (1 GiB of zeros) with and without a format, the decompressed
    limit, an empty body, a 100,000-field header, a 2 MiB header."""
    _, http = small
    bomb = zeros_bomb(tmp_path / "bomb.gz", 2**30)
    assert bomb.stat().st_size < 2 * MIB
    cases = [
        (b"\x00\x01\xfe" * 4000, {}, "binary data"),
        (file_chunks(bomb), {}, "binary data"),
        (file_chunks(bomb), {"format": "csv"}, "header is longer than 1048576 bytes"),
        (
            inflating(b"id,body,tail\n1,a,t\n2,", 80 * MIB),
            {"format": "csv"},
            "decompressed input exceeds 67108864 bytes",
        ),
        (b"", {}, "the input is empty"),
        (b",".join(b"c%d" % n for n in range(100_000)) + b"\n1\n", {}, "100000 fields"),
        (b"id," + b"x" * (2 * MIB) + b"\n", {}, "header is longer than 1048576 bytes"),
    ]
    for body, params, words in cases:
        assert_refused_plainly(http, send(http, body, **params), words)


def test_cr_only_line_endings_are_read_as_records(small):
    _, http = small
    rows = b"".join(b"%d,b%d,t%d\r" % (n, n, n) for n in range(100, 20_100))
    batch = send(http, b"id,body,tail\r" + rows)
    assert batch["status"] == "completed", batch
    assert batch["total_operations"] == batch["successful_operations"] == 20_000


def test_fields_over_the_record_limit_fail_alone_without_growing_the_server(small):
    server, http = small
    before = server.rss_bytes()
    for size in (50_000_000, int(17.1 * MIB)):
        body = b"id,body,tail\n%d,a,t\n2,%s,t\n%d,c,t\n" % (size, b"z" * size, size + 1)
        batch = send(http, body)
        assert batch["status"] == "completed", batch
        assert (batch["total_operations"], batch["failed_operations"]) == (3, 1)
        results = http.get(f"/batches/{batch['batch']}/results").text
        failed = [r for r in csv.DictReader(results.splitlines()) if r["outcome"] == "failed"]
        assert [(r["record_number"], r["error_code"]) for r in failed] == [
            ("2", "record_too_large")
        ]
    # The 50 MB record was parsed whole before (+700 MB); now it is skipped in pieces.
    assert server.peak_rss_bytes() - before < 300 * MIB


def write_mixed_csv(path: Path, chunk: int, target: int) -> dict[str, int]:
    """A >100 MB file: stray quotes, LF, CRLF and CR-only records, quoted newlines placed across
    the reader's block boundaries (every ``chunk`` bytes), ragged and too-large records."""
    endings = (b"\n", b"\r\n", b"\r")
    counts = {"records": 0, "ragged": 0, "too_large": 0}
    with path.open("wb") as out:
        out.write(b"\xef\xbb\xbfid,body,tail\n")
        offset, n = 3 + 13, 0
        while offset < target:
            n += 1
            record = _record(n, offset, chunk, counts) + endings[n % 3]
            out.write(record)
            offset += len(record)
        counts["records"] = n
    return counts


def _record(n: int, offset: int, chunk: int, counts: dict[str, int]) -> bytes:
    to_boundary = chunk - offset % chunk
    if 40 < to_boundary < 400:  # a quoted newline right at the boundary
        pad = to_boundary - len(b'%d,"' % n) - 1
        return b'%d,"%s\n""quoted"" %d\r\nline",t%d' % (n, b"q" * pad, n, n)
    if n % 10_007 == 0:
        counts["ragged"] += 1
        return b"%d,ragged" % n
    if n % 200_003 == 0:
        counts["too_large"] += 1
        return b'%d,"%s",t%d' % (n, b"L\n" * 40_000, n)
    if n % 97 == 0:
        return b'%d,a 15" laptop sleeve %d,t%d' % (n, n, n)
    return b"%d,%s,t%d" % (n, b"x" * 100, n)


@pytest.mark.slow
def test_a_big_file_of_everything_is_read_exactly(tmp_path):
    chunk = 1 * MIB
    path = tmp_path / "mixed.csv"
    counts = write_mixed_csv(path, chunk, 105 * 10**6)
    assert path.stat().st_size > 100 * 10**6
    env = {"BATCHYARD_CHUNK_BYTES": str(chunk), "BATCHYARD_MAX_RECORD_BYTES": str(64 << 10)}
    with serve(tmp_path, env) as (server, http):
        batch = send(http, file_chunks(path))
        results = http.get(f"/batches/{batch['batch']}/results").text
        stored = server.data_dir / "target.db"
        failed_expected = counts["ragged"] + counts["too_large"]
        assert batch["status"] == "completed", batch
        assert batch["total_operations"] == counts["records"]
        assert batch["failed_operations"] == failed_expected
        outcomes = list(csv.DictReader(results.splitlines()))
        assert [int(r["record_number"]) for r in outcomes] == list(range(1, counts["records"] + 1))
        codes = {r["error_code"] for r in outcomes if r["outcome"] == "failed"}
        assert codes == {"wrong_field_count", "record_too_large"}
        assert sum(r["outcome"] == "failed" for r in outcomes) == failed_expected
        assert_rows_are_the_csv_modules(path, stored)


def assert_rows_are_the_csv_modules(path: Path, database: Path) -> None:
    """The table holds exactly the records Python's csv module reads that fit (3 fields, small)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        expected = (
            (int(r[0]), r[1], r[2])
            for r in csv.reader(handle)
            if len(r) == 3 and r[0] != "id" and len(",".join(r)) < 60_000
        )
        with sqlite3.connect(database) as conn:
            got = conn.execute("SELECT id, body, tail FROM items ORDER BY id")
            count = 0
            for want, have in zip(expected, got, strict=True):
                assert have == want
                count += 1
    assert count > 700_000
