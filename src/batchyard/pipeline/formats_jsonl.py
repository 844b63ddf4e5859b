"""JSON Lines: one JSON object per line, turned into string columns for validation.

JSON numbers are decoded as Decimal so that no digit is lost before validation decides what the
value is; numbers and booleans become their JSON text ("12", "1.5", "true"), objects and arrays
compact JSON text. Blank lines are not records.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import BatchOptions
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats_blocks import RecordTooLarge, record_blocks
from batchyard.pipeline.formats_common import ErrorRows, Reader, record_key, to_json

_ANY = msgspec.json.Decoder(float_hook=Decimal)
_JSON_KINDS = {list: "an array", str: "a string", Decimal: "a number", int: "a number"}
_JSON_KINDS.update({bool: "a boolean", type(None): "null"})
_OBJECTS = msgspec.json.Decoder(list[dict[str, Any]], float_hook=Decimal)


def read_jsonl(
    stream: Reader,
    *,
    dataset: Dataset,
    options: BatchOptions,
    chunk_bytes: int,
    max_record_bytes: int,
) -> Iterator[RawChunk]:
    """One RawChunk per block of lines."""
    next_record, index = 1, 0
    for block in record_blocks(stream, chunk_bytes, max_record_bytes, quoted=False):
        if isinstance(block, RecordTooLarge):
            errors = ErrorRows()
            message = f"record is larger than {block.limit} bytes"
            errors.add(next_record, RecordErrorCode.RECORD_TOO_LARGE, message)
            chunk = RawChunk(index, next_record, 1, _table({}, [], dataset), errors.table())
        else:
            chunk = _read_lines(block, dataset, options, index, next_record)
        if chunk.record_count:
            yield chunk
            index += 1
            next_record += chunk.record_count


def _decode_all(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """Every line decoded in one call, or None if any line is not a lone JSON object."""
    try:
        decoded = _OBJECTS.decode(b"[" + b",".join(lines) + b"]")
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for bad bytes
        return None
    # A line like `{"a":1},{"b":2}` decodes as two objects: the count catches it.
    return decoded if len(decoded) == len(lines) else None


def _decode_one(line: bytes) -> dict[str, Any] | str:
    """The line's object, or why it is not one."""
    try:
        value = _ANY.decode(line)
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 ({exc.reason})"
    except msgspec.DecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"expected a JSON object, found {_JSON_KINDS.get(type(value), 'a value')}"
    return value


def _read_lines(
    block: bytes, dataset: Dataset, options: BatchOptions, index: int, first_record: int
) -> RawChunk:
    lines = [line for line in block.split(b"\n") if line.strip()]
    numbers = list(range(first_record, first_record + len(lines)))
    errors = ErrorRows()
    records = _decode_all(lines)
    if records is None:
        records, numbers = _decode_each(lines, numbers, errors)
    if not options.ignore_unknown_columns:
        records, numbers = _drop_unknown(records, numbers, dataset, errors)
    table = _table(_columns(records, dataset), numbers, dataset)
    errors_table = errors.table().sort_by("record_number")
    return RawChunk(index, first_record, len(lines), table, errors_table)


def _decode_each(
    lines: list[bytes], numbers: list[int], errors: ErrorRows
) -> tuple[list[dict[str, Any]], list[int]]:
    """Slow path: decode line by line, turning each bad line into an error."""
    records: list[dict[str, Any]] = []
    kept: list[int] = []
    for line, number in zip(lines, numbers, strict=True):
        value = _decode_one(line)
        if isinstance(value, dict):
            records.append(value)
            kept.append(number)
            continue
        text = line.decode("utf-8", "replace")
        try:
            line.decode("utf-8")
            code = RecordErrorCode.MALFORMED_RECORD
        except UnicodeDecodeError as exc:
            code = RecordErrorCode.INVALID_ENCODING
            value = f"the line is not valid UTF-8 (byte 0x{line[exc.start]:02x})"
        errors.add(number, code, value, raw=to_json({"_line": text.strip()}))
    return records, kept


def _drop_unknown(
    records: list[dict[str, Any]], numbers: list[int], dataset: Dataset, errors: ErrorRows
) -> tuple[list[dict[str, Any]], list[int]]:
    known = set(dataset.column_names)
    if all(known.issuperset(record) for record in records):
        return records, numbers
    kept_records: list[dict[str, Any]] = []
    kept_numbers: list[int] = []
    for record, number in zip(records, numbers, strict=True):
        unknown = [key for key in record if key not in known]
        if not unknown:
            kept_records.append(record)
            kept_numbers.append(number)
            continue
        listed = ", ".join(repr(key) for key in unknown)
        message = f"unknown column(s) {listed} (set options.ignore_unknown_columns to skip them)"
        key = record_key(record, dataset)
        raw = to_json(record)
        errors.add(
            number, RecordErrorCode.UNKNOWN_COLUMN, message, column=unknown[0], key=key, raw=raw
        )
    return kept_records, kept_numbers


def _columns(records: list[dict[str, Any]], dataset: Dataset) -> dict[str, pa.Array[Any]]:
    return {
        name: _as_text([record.get(name) for record in records]) for name in dataset.column_names
    }


def _as_text(values: list[Any]) -> pa.Array[Any]:
    """A string column: strings as they are, other JSON values as their JSON text."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:  # a column of integers or booleans converts in C
        inferred = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        inferred = None
    if inferred is not None and (
        pa.types.is_integer(inferred.type) or pa.types.is_boolean(inferred.type)
    ):
        text: pa.Array[Any] = pc.cast(inferred, pa.string())
        return text
    return pa.array([_text(value) for value in values], pa.string())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return to_json(value)


def _table(columns: dict[str, pa.Array[Any]], numbers: list[int], dataset: Dataset) -> pa.Table:
    arrays = {name: columns.get(name, pa.array([], pa.string())) for name in dataset.column_names}
    arrays[RECORD_NUMBER] = pa.array(numbers, pa.int64())
    return pa.table(arrays)
