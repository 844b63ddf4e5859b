"""CSV records are what Python's csv module says they are, however the input is cut into blocks.

The reference is ``csv.reader`` over the text read with ``newline=""`` (RFC 4180 as Python reads
it: a quote opens a quoted field only at a field's start; "\\n", "\\r\\n" and "\\r" end records).
Block sizes of a few bytes make every input cross many block boundaries.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batchyard.domain.batches import BatchOptions, InputFormat
from batchyard.domain.errors import InputRejected
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats import read_chunks
from batchyard.pipeline.formats_blocks import CsvEnds, RecordTooLarge, record_blocks
from batchyard.pipeline.formats_common import HeaderLimits

FIELDS = ["id", "body", "tail"]
DATASET = Dataset.from_dict(
    {"name": "t", "columns": [{"name": n, "type": "string"} for n in FIELDS]}
)
BOM = b"\xef\xbb\xbf"


def reference_ends(data: bytes) -> list[int]:
    """Offsets just past each record's line ending, as the csv module reads ``data``."""
    lines = io.StringIO(data.decode("latin-1"), newline="")
    consumed = 0

    def counted() -> Any:
        nonlocal consumed
        for line in lines:
            consumed += len(line)
            yield line

    return [consumed for _ in csv.reader(counted())]


def cutter_ends(data: bytes, cuts: list[int]) -> list[int]:
    """The same, from CsvEnds fed ``data`` in pieces cut at ``cuts``."""
    ends, found, previous = CsvEnds(ord(",")), [], 0
    for cut in [*cuts, len(data)]:
        found += [int(end) + previous + 1 for end in ends.ends(data[previous:cut])]
        previous = cut
    # A "\r" last in a piece ends a record unless the next piece starts with "\n".
    merged: list[int] = []
    for end in found:
        if merged and end == merged[-1] + 1 and data[end - 2 : end] == b"\r\n":
            merged[-1] = end
        else:
            merged.append(end)
    return merged


def inner(ends: list[int], size: int) -> list[int]:
    return [end for end in ends if end < size]


CRAFTED = [
    b'id,body,tail\n10,a 15" laptop sleeve,t10\n11,b,t11\n',
    b'1,"a\nb",c\r\n2,"x""y",z\r3,"q"r"s,t\n',
    b'1,""\n2,""""\n3,"""a"""\r\n"\r",\r\n',
    b'a"b"c,"d"e"f",g\r\n1\r\r\n\n"',
    b',"\n",\r"\r\n"\r\n\r',
]


@pytest.mark.parametrize("data", CRAFTED)
def test_record_ends_match_the_csv_module_wherever_the_input_is_cut(data: bytes) -> None:
    expected = inner(reference_ends(data), len(data))
    for cut in range(len(data) + 1):
        assert inner(cutter_ends(data, [cut]), len(data)) == expected, cut
    for at in range(len(data) + 1):  # a quote at every position
        quoted = data[:at] + b'"' + data[at:]
        assert inner(cutter_ends(quoted, [at, at + 1]), len(quoted)) == inner(
            reference_ends(quoted), len(quoted)
        ), quoted


def random_csv(rng: random.Random) -> bytes:
    """Records as writers make them (any line ending, quoting), with stray quotes sprinkled."""
    alphabet = ["a", '"', ",", "\n", "\r\n", "\r", "é", "€", "😀", " "]
    rows = [
        ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(3)]
        for _ in range(rng.randint(1, 8))
    ]
    text = io.StringIO(newline="")
    quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    csv.writer(text, lineterminator=rng.choice(["\n", "\r\n", "\r"]), quoting=quoting).writerows(
        rows
    )
    written = text.getvalue()
    for _ in range(rng.randint(0, 2)):
        at = rng.randint(0, len(written))
        written = written[:at] + '"' + written[at:]
    return written.encode("utf-8")


def test_random_inputs_end_their_records_where_the_csv_module_does() -> None:
    rng = random.Random(14)
    for _ in range(3000):
        data = random_csv(rng)
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 4)))
        expected = inner(reference_ends(data), len(data))
        assert inner(cutter_ends(data, cuts), len(data)) == expected, (data, cuts)


def test_the_last_end_alone_is_the_last_of_all_ends_whatever_came_before() -> None:
    """``last_end`` (what the cutter asks for when only the last end matters) agrees with
    ``ends`` piece after piece, and where it declines, it leaves the state as it was."""
    rng = random.Random(15)
    for case in range(3000):
        data = random_csv(rng)
        data = data.replace(b'"', b"") if case % 2 else data  # most files quote nothing
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 4)))
        every, last_only = CsvEnds(ord(",")), CsvEnds(ord(","))
        for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
            piece = data[start:stop]
            expected = every.ends(piece).tolist()
            last = last_only.last_end(piece)
            found = last_only.ends(piece).tolist() if last is None else last.tolist()
            assert found == (expected if last is None else expected[-1:]), (data, cuts, piece)


def read(data: bytes, chunk_bytes: int, **kwargs: Any) -> list[RawChunk]:
    fmt = kwargs.pop("fmt", InputFormat.CSV)
    return list(
        read_chunks(
            io.BytesIO(data),
            fmt,
            gzip=False,
            dataset=DATASET,
            options=BatchOptions(),
            chunk_bytes=chunk_bytes,
            **kwargs,
        )
    )


def outcome(chunks: list[RawChunk]) -> tuple[int, dict[int, list[str]], dict[int, str]]:
    """(records counted, stored fields by record number, error code by record number)."""
    total = sum(chunk.record_count for chunk in chunks)
    stored = {
        row[RECORD_NUMBER]: [row[n] or "" for n in FIELDS]
        for chunk in chunks
        for row in chunk.table.to_pylist()
    }
    failed = {
        row["record_number"]: row["code"] for chunk in chunks for row in chunk.errors.to_pylist()
    }
    return total, stored, failed


def reference(data: bytes) -> tuple[int, dict[int, list[str]], dict[int, str]]:
    text = data.removeprefix(BOM).decode("utf-8")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row][1:]
    stored = {n: row for n, row in enumerate(rows, 1) if len(row) == 3}
    failed = {n: "wrong_field_count" for n, row in enumerate(rows, 1) if len(row) != 3}
    return len(rows), stored, failed


def test_blocks_of_a_few_bytes_read_the_records_the_csv_module_reads() -> None:
    rng = random.Random(4180)
    for case in range(250):
        body = random_csv(rng)
        header = rng.choice([b"id,body,tail", BOM + b"id,body,tail", b'"id","body",tail'])
        data = header + rng.choice([b"\n", b"\r\n", b"\r"]) + body
        for chunk_bytes in (1, 3, rng.randint(4, 64)):
            assert outcome(read(data, chunk_bytes)) == reference(data), (case, data, chunk_bytes)


def test_a_stray_quote_in_a_big_file_keeps_every_record() -> None:
    """Issue 14's file in small: record 10 has an inch sign; blocks of 1 KiB."""
    lines = [b"id,body,tail"]
    for n in range(1, 3001):
        lines.append(b"%d,%s,t%d" % (n, b'a 15" laptop sleeve' if n == 10 else b"x" * 110, n))
    total, stored, failed = outcome(read(b"\n".join(lines) + b"\n", 1024))
    assert (total, len(stored), failed) == (3000, 3000, {})
    assert stored[10] == ["10", 'a 15" laptop sleeve', "t10"]
    assert stored[3000] == ["3000", "x" * 110, "t3000"]


@pytest.mark.parametrize("chunk_bytes", [1, 5, 1 << 20])
def test_cr_only_and_mixed_line_endings_are_records(chunk_bytes: int) -> None:
    data = b'id,body,tail\r1,a,t1\r2,"b\rb",t2\r\n3,c,t3\n4,d,t4\r'
    total, stored, failed = outcome(read(data, chunk_bytes))
    assert (total, failed) == (4, {})
    assert stored == {1: ["1", "a", "t1"], 2: ["2", "b\rb", "t2"], 3: ["3", "c", "t3"]} | {
        4: ["4", "d", "t4"]
    }


LIMIT = 1000


def csv_with_record_of(size: int) -> bytes:
    """Three records; the second is ``size`` bytes long with its "\\n", a quoted newline inside."""
    body = b'"' + b"x" * (size - 8) + b'\n"'
    record = b"2," + body + b",t\n"
    assert len(record) == size
    return b"id,body,tail\n1,a,t\n" + record + b"3,c,t\n"


def jsonl_with_record_of(size: int) -> bytes:
    record = b'{"id":"2","body":"' + b"x" * (size - 21) + b'"}\n'
    assert len(record) == size
    return b'{"id":"1"}\n' + record + b'{"id":"3"}\n'


@pytest.mark.parametrize(
    ("fmt", "make"), [("csv", csv_with_record_of), ("jsonl", jsonl_with_record_of)]
)
@pytest.mark.parametrize("chunk_bytes", [7, 256, 1 << 20])
def test_the_record_size_limit_is_one_limit(fmt: str, make: Any, chunk_bytes: int) -> None:
    for size, too_large in ((LIMIT, False), (LIMIT + 1, True), (40 * LIMIT, True)):
        chunks = read(make(size), chunk_bytes, fmt=InputFormat(fmt), max_record_bytes=LIMIT)
        total, stored, failed = outcome(chunks)
        assert total == 3
        assert failed == ({2: "record_too_large"} if too_large else {}), (fmt, size)
        assert set(stored) == ({1, 3} if too_large else {1, 2, 3})


def test_a_too_large_record_is_never_held_whole() -> None:
    """The cutter hands over a marker, not the record: no block is larger than chunk + limit."""
    data = csv_with_record_of(200 * LIMIT) * 3
    blocks = list(record_blocks(io.BytesIO(data), 64, LIMIT, quoted=True))
    assert sum(isinstance(b, RecordTooLarge) for b in blocks) == 3
    assert max(len(b) for b in blocks if isinstance(b, bytes)) <= 64 + LIMIT


def test_wide_or_long_headers_are_refused_at_once_with_a_short_message() -> None:
    wide = b",".join(b"c%d" % n for n in range(100_000)) + b"\n1\n"
    started = time.monotonic()
    with pytest.raises(InputRejected) as caught:
        read(wide, 1 << 20)
    assert "100000 fields, more than the 4096 allowed" in caught.value.message
    assert time.monotonic() - started < 10  # was minutes: the duplicate check was quadratic
    with pytest.raises(InputRejected, match="longer than 100 bytes"):
        read(b"id," + b"x" * 200 + b"\n1,a\n", 16, header_limits=HeaderLimits(bytes=100))
    limits = HeaderLimits(columns=200_000)
    with pytest.raises(InputRejected) as unknown:
        read(wide, 1 << 20, header_limits=limits)
    assert len(unknown.value.message) < 400
    assert "'c0', 'c1'" in unknown.value.message and "and 99990 more" in unknown.value.message


def test_a_ragged_record_with_bad_bytes_before_a_quoted_newline() -> None:
    """Found by the differential tests: pyarrow could not hand the record over."""
    data = b'id,body,tail\n1,,a"\xff,,x\n2,,"\nb",,x\n3,c,d\n'
    for chunk_bytes in (1, 64, 1 << 20):
        total, stored, failed = outcome(read(data, chunk_bytes))
        assert (total, failed) == (3, {1: "wrong_field_count", 2: "wrong_field_count"})
        assert stored == {3: ["3", "c", "d"]}


def test_failed_record_text_survives_for_the_results() -> None:
    """A record failed for its size names the limit in its message."""
    chunks = read(csv_with_record_of(LIMIT + 1), 64, max_record_bytes=LIMIT)
    (error,) = [row for chunk in chunks for row in chunk.errors.to_pylist()]
    assert error["message"] == f"record is larger than {LIMIT} bytes"
    assert json.dumps(error)  # plain values only


def test_parquet_rows_over_the_record_limit_fail_alone() -> None:
    table = pa.table({"id": ["1", "2", "3"], "body": ["a", "x" * (LIMIT + 1), None]})
    table = table.append_column("tail", pa.array(["t", "t", "t"]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    total, stored, failed = outcome(
        read(sink.getvalue(), 1 << 20, fmt=InputFormat.PARQUET, max_record_bytes=LIMIT)
    )
    assert (total, failed) == (3, {2: "record_too_large"})
    assert set(stored) == {1, 3}


def test_the_last_record_reads_the_same_with_or_without_its_line_ending() -> None:
    """Found by the differential tests: pyarrow read `1,"x",` at the very end as "" not NULL."""
    for data in (b'id,body,tail\n1,"x",', b'id,body,tail\n1,"x",\n'):
        (chunk,) = read(data, 1 << 20)
        assert chunk.table.to_pylist() == [{"id": "1", "body": "x", "tail": None, RECORD_NUMBER: 1}]
    (chunk,) = read(b'id,body,tail\n1,x,"open\n', 4)
    assert chunk.table.to_pylist() == [{"id": "1", "body": "x", "tail": "open\n", RECORD_NUMBER: 1}]
