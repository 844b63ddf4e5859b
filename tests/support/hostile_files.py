"""Hostile input files the suite makes itself: the JSON Lines, Parquet and badly encoded CSV that
real tools (and attackers) send, each small enough to build in milliseconds.

Every builder returns the bytes of one file for the dataset ``items`` (id integer, body and tail
strings); tests/e2e/test_hostile_files.py imports each through a real server and asserts the
outcome docs/data-rules.md promises.
"""

from __future__ import annotations

import io
import zlib

import pyarrow as pa
import pyarrow.parquet as pq

MIB = 2**20


def _gzip(head: bytes, zeros: int) -> bytes:
    """``head`` then ``zeros`` zero bytes, gzip'd (64 MiB of zeros → about 64 KB)."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block, out = bytes(MIB), [pack.compress(head)]
    for _ in range(zeros // MIB):
        out.append(pack.compress(block))
    out.append(pack.flush())
    return b"".join(out)


# JSON Lines ---------------------------------------------------------------------------------


def jsonl_invalid_utf8() -> bytes:
    """Four lines; the second is Latin-1 text, the third holds a cut UTF-8 sequence in a string."""
    return (
        b'{"id": 1, "body": "a"}\n'
        b'{"id": 2, "body": "caf\xe9"}\n'
        b'{"id": 3, "body": "\xc3("}\n'
        b'{"id": 4, "body": "d"}\n'
    )


def jsonl_gzip_bomb(zeros: int) -> bytes:
    """One good line, then ``zeros`` NUL bytes, gzip'd: it inflates past any sane upload limit."""
    return _gzip(b'{"id": 1, "body": "a"}\n', zeros)


def jsonl_line_over(limit: int) -> bytes:
    """Three lines; the second is larger than ``limit`` bytes."""
    body = "x" * (limit + 1)
    return b'{"id": 1}\n{"id": 2, "body": "%s"}\n{"id": 3}\n' % body.encode()


def jsonl_not_objects() -> bytes:
    """An object, an array, a scalar, a string and an object: lines 2-4 are not records."""
    return b'{"id": 1}\n[2, "b"]\n3\n"four"\n{"id": 5}\n'


def jsonl_truncated_last_line() -> bytes:
    """A file cut in the middle of its last line (no final newline)."""
    return b'{"id": 1, "body": "a"}\n{"id": 2, "body": "b"}\n{"id": 3, "bo'


def jsonl_utf16() -> bytes:
    """JSON Lines as Windows tools write it in UTF-16 with a byte order mark."""
    return '{"id": 1, "body": "a"}\n{"id": 2, "body": "b"}\n'.encode("utf-16")


# Parquet ------------------------------------------------------------------------------------


def parquet_file(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def _items(count: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, count + 1), pa.int64()),
            "body": [f"body {n}" for n in range(1, count + 1)],
        }
    )


def parquet_truncated() -> bytes:
    """The first two thirds of a valid file: the magic is there, the footer is not."""
    whole = parquet_file(_items(1000), row_group_size=100)
    return whole[: len(whole) * 2 // 3]


def parquet_garbage_footer() -> bytes:
    """Right magic at both ends and a plausible footer length, but the footer is garbage."""
    garbage = bytes(range(256)) * 4
    return b"PAR1" + b"\x00" * 64 + garbage + len(garbage).to_bytes(4, "little") + b"PAR1"


def parquet_wide_schema(columns: int) -> bytes:
    """One row of ``columns`` int32 columns besides ``id``."""
    arrays = {"id": pa.array([1], pa.int64())}
    arrays.update({f"c{n}": pa.array([n], pa.int32()) for n in range(columns)})
    return parquet_file(pa.table(arrays))


def parquet_huge_value(limit: int) -> bytes:
    """Three rows in one row group; row 2's binary ``body`` is larger than ``limit`` bytes."""
    bodies = [b"a", b"z" * (limit + 1), b"c"]
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "body": pa.array(bodies, pa.binary())})
    return parquet_file(table)


# CSV ----------------------------------------------------------------------------------------


def csv_latin1() -> bytes:
    """A CSV written as Latin-1: records 2 and 3 hold bytes that are not UTF-8."""
    text = "id,body,tail\n1,plain,t\n2,café,t\n3,naïve ½,t\n4,end,t\n"
    return text.encode("latin-1")


def csv_utf16() -> bytes:
    """A CSV as Excel's "Unicode text" writes it: UTF-16 with a byte order mark."""
    return "id,body,tail\n1,a,t\n2,b,t\n".encode("utf-16")
