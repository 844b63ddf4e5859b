"""JSON Lines: one JSON object per line, turned into string columns for validation.

JSON numbers with a fraction or an exponent keep their text exactly as sent ("1e400", "1.50"), so
that validation decides what the value is and the failed-records file shows what was sent;
integers and booleans become their JSON text ("12", "true"), objects and arrays compact JSON
text (for json columns; a string column refuses them). A line that names a key twice is refused
as malformed (which value was meant is not for us to guess). Blank lines are not records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.batches import BatchOptions
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import ColumnType, Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER, RawChunk
from batchyard.pipeline.formats_blocks import RecordTooLarge, record_blocks
from batchyard.pipeline.formats_common import ErrorRows, JsonNumber, Reader, record_key, to_json

_ANY = msgspec.json.Decoder(float_hook=JsonNumber)
_JSON_KINDS: dict[type, str] = {list: "an array", dict: "an object", str: "a string"}
_JSON_KINDS.update({JsonNumber: "a number", int: "a number", bool: "a boolean", type(None): "null"})
_OBJECTS = msgspec.json.Decoder(list[dict[str, Any]], float_hook=JsonNumber)
#: Where a key may end: a key's closing quote, then a colon. Strings and nested objects may add
#: matches but never hide one, so a line with as many matches as keys repeats none.
_KEY_END = re.compile(rb'"\s*:')


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
    except msgspec.DecodeError:
        return None
    # A line like `{"a":1},{"b":2}` decodes as two objects: the count catches it.
    if len(decoded) != len(lines):
        return None
    keys = sum(len(_KEY_END.findall(line)) for line in lines)
    return decoded if keys == sum(len(record) for record in decoded) else None


def _decode_one(line: bytes) -> dict[str, Any] | str:
    """The line's object, or why it is not one."""
    try:
        value = _ANY.decode(line)
    except msgspec.DecodeError as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"expected a JSON object, found {_JSON_KINDS.get(type(value), 'a value')}"
    repeated = _repeated_key(line, value)
    if repeated is not None:
        return f"the key {repeated!r} appears more than once"
    return value


def _repeated_key(line: bytes, record: dict[str, Any]) -> str | None:
    """A key that an object of ``line`` names twice, if any (only lines that may have one are
    parsed again)."""
    if len(_KEY_END.findall(line)) == len(record):
        return None
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> None:
        keys = [key for key, _ in items]
        repeated.extend(key for i, key in enumerate(keys) if key in keys[:i])

    json.loads(line, object_pairs_hook=pairs)
    return repeated[0] if repeated else None


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
    records, numbers = _drop_nested_strings(records, numbers, dataset, errors)
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


def _drop_nested_strings(
    records: list[dict[str, Any]], numbers: list[int], dataset: Dataset, errors: ErrorRows
) -> tuple[list[dict[str, Any]], list[int]]:
    """Refuse records that send an object or an array to a string column (invalid_string)."""
    strings = [c.name for c in dataset.columns if c.type == ColumnType.STRING]
    if not any(isinstance(r.get(n), dict | list) for r in records for n in strings):
        return records, numbers
    kept_records: list[dict[str, Any]] = []
    kept_numbers: list[int] = []
    for record, number in zip(records, numbers, strict=True):
        nested = [n for n in strings if isinstance(record.get(n), dict | list)]
        if not nested:
            kept_records.append(record)
            kept_numbers.append(number)
            continue
        kind = _JSON_KINDS.get(type(record[nested[0]]), "an object")
        message = f"column {nested[0]!r}: {kind} is not a string (a json column takes it)"
        errors.add(
            number,
            RecordErrorCode.INVALID_STRING,
            message,
            column=nested[0],
            key=record_key(record, dataset),
            raw=to_json(record),
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
    return to_json(value)


def _table(columns: dict[str, pa.Array[Any]], numbers: list[int], dataset: Dataset) -> pa.Table:
    arrays = {name: columns.get(name, pa.array([], pa.string())) for name in dataset.column_names}
    arrays[RECORD_NUMBER] = pa.array(numbers, pa.int64())
    return pa.table(arrays)
