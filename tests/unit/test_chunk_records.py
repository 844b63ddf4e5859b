"""A raw chunk of many small records is cut into chunks of at most chunk_records records."""

from __future__ import annotations

import pyarrow as pa

from batchyard.pipeline.chunks import ERRORS_SCHEMA, RECORD_NUMBER, RawChunk, split_records


def _raw(first: int, count: int, failed: set[int]) -> RawChunk:
    numbers = [n for n in range(first, first + count) if n not in failed]
    table = pa.table({"v": [str(n) for n in numbers], RECORD_NUMBER: pa.array(numbers, pa.int64())})
    errors = pa.table(
        {
            "record_number": sorted(failed),
            "column": [None] * len(failed),
            "code": ["wrong_field_count"] * len(failed),
            "message": ["m"] * len(failed),
            "key": [None] * len(failed),
            "raw": [None] * len(failed),
        },
        schema=ERRORS_SCHEMA,
    )
    return RawChunk(3, first, count, table, errors)


def test_pieces_cover_every_record_once_in_order() -> None:
    raw = _raw(first=11, count=25, failed={12, 20, 21, 35})
    pieces = list(split_records(raw, 10))

    assert [(p.first_record, p.record_count) for p in pieces] == [(11, 10), (21, 10), (31, 5)]
    assert all(p.index == 3 for p in pieces)
    for piece in pieces:
        numbers = piece.table[RECORD_NUMBER].to_pylist() + piece.errors["record_number"].to_pylist()
        assert sorted(numbers) == list(
            range(piece.first_record, piece.first_record + piece.record_count)
        )
    assert [p.errors.num_rows for p in pieces] == [2, 1, 1]


def test_a_small_chunk_or_no_limit_is_left_whole() -> None:
    raw = _raw(first=1, count=5, failed=set())
    assert list(split_records(raw, 5)) == [raw]
    assert list(split_records(raw, None)) == [raw]
