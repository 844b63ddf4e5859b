"""JSON Lines: one JSON object per line, turned into string columns for validation.

JSON numbers with a fraction or an exponent keep their text exactly as sent ("1e400", "1.50"), so
that validation decides what the value is; integers and booleans become their JSON text ("12",
"true"); a string column refuses objects and arrays. A json column takes the JSON value on the
line, whatever its type, as compact JSON text with its numbers as sent (the string "abc" is
stored as the JSON string "abc", not parsed as JSON text). A line that names a key twice is refused
as malformed (which value was meant is not for us to guess). Blank lines are not records.

Each record's line travels with it (RawChunk.lines) so that a failed record comes back in the
failed-records file exactly as it was sent; an ``error`` member (that file's own) is ignored
unless the dataset declares such a column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.reading import Reading
from batchyard.domain.records import RecordErrorCode
from batchyard.domain.schema import Column, ColumnType
from batchyard.pipeline.chunks import ERROR_FIELD, RECORD_NUMBER, RawChunk
from batchyard.pipeline.defaults import default_text
from batchyard.pipeline.formats_blocks import RecordTooLarge, record_blocks
from batchyard.pipeline.formats_common import ErrorRows, Reader, line_raw, record_key, to_json

#: Numbers with a fraction or an exponent as their text: as fast as floats, but a string and a
#: number are then alike, so values holding nested numbers are decoded again with _EXACT.
_OBJECTS = msgspec.json.Decoder(list[dict[str, Any]], float_hook=str)
_ONE = msgspec.json.Decoder(float_hook=str)
#: Nested numbers as msgspec.Raw, which is written back verbatim: ``{"a": 1.50}`` stays so.
_EXACT = msgspec.json.Decoder(dict[str, Any], float_hook=msgspec.Raw)
_JSON_KINDS: dict[type, str] = {list: "an array", dict: "an object", str: "a string"}
_JSON_KINDS.update({float: "a number", int: "a number", bool: "a boolean", type(None): "null"})
#: A key's end (closing quote, colon): strings and nested objects may add some but never hide
#: one, so a block with as many as its objects have keys repeats none.
_KEY_END = re.compile(rb'"\s*:')
_SPACED_KEY_END = re.compile(rb'"\s+:')
#: An integer minus zero, which no int keeps: such lines are decoded again.
_NEGATIVE_ZERO = re.compile(rb"-0(?![0-9.eE])")


def read_jsonl(
    stream: Reader,
    *,
    reading: Reading,
    chunk_bytes: int,
    max_record_bytes: int,
) -> Iterator[RawChunk]:
    """One RawChunk per block of lines, its table's columns named by the fields the columns
    read; a record that lacks a column's field gets the column's default, if it has one."""
    next_record, index = 1, 0
    for block in record_blocks(stream, chunk_bytes, max_record_bytes, quoted=False):
        if isinstance(block, RecordTooLarge):
            errors = ErrorRows()
            message = f"record is larger than {block.limit} bytes"
            errors.add(next_record, RecordErrorCode.RECORD_TOO_LARGE, message)
            table = _table({}, [], reading)
            chunk = RawChunk(index, next_record, 1, table, errors.table(), lines=[])
        else:
            chunk = _read_lines(block, reading, index, next_record)
        if chunk.record_count:
            yield chunk
            index += 1
            next_record += chunk.record_count


def _decode_all(lines: list[bytes]) -> list[dict[str, Any]] | None:
    """Every line decoded in one call, or None if any line is not a lone JSON object."""
    joined = b"[" + b",".join(lines) + b"]"
    try:
        decoded = _OBJECTS.decode(joined)
    except (msgspec.DecodeError, UnicodeDecodeError):  # bad UTF-8 inside a string: the latter
        return None
    # A line like `{"a":1},{"b":2}` decodes as two objects: the count catches it.
    if len(decoded) != len(lines):
        return None
    # As many possible key ends as keys: no object names a key twice (else, line by line).
    return decoded if _key_ends(joined) == sum(len(record) for record in decoded) else None


def _key_ends(text: bytes) -> int:
    """How many times ``"`` then (maybe spaces then) ``:`` occurs; counted in C when unspaced."""
    if _SPACED_KEY_END.search(text) is None:
        return text.count(b'":')
    return len(_KEY_END.findall(text))


def _decode_one(line: bytes) -> dict[str, Any] | str:
    """The line's object, or why it is not one."""
    try:
        value = _ONE.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(value, dict):
        kind = "a number" if isinstance(value, str) and line.lstrip()[:1] != b'"' else None
        return f"expected a JSON object, found {kind or _JSON_KINDS.get(type(value), 'a value')}"
    repeated = _repeated_key(line, value)
    if repeated is not None:
        return f"the key {repeated!r} appears more than once"
    return value


def _repeated_key(line: bytes, record: dict[str, Any]) -> str | None:
    """A key that an object of ``line`` names twice, if any (only lines that may have one are
    parsed again)."""
    if _key_ends(line) == len(record):
        return None
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> None:
        keys = [key for key, _ in items]
        repeated.extend(key for i, key in enumerate(keys) if key in keys[:i])

    try:
        json.loads(line, object_pairs_hook=pairs)
    except ValueError:  # what msgspec read, json cannot: no repeated key found either way
        return None
    return repeated[0] if repeated else None


@dataclass
class _Lines:
    """A block's decoded records, each with its number and its line as sent."""

    records: list[dict[str, Any]]
    numbers: list[int]
    lines: list[bytes]

    def keep(self, refuse: Callable[[dict[str, Any]], _Refusal | None], errors: ErrorRows) -> None:
        """Drop the records ``refuse`` has a reason for, each as an error row with its line."""
        kept = _Lines([], [], [])
        for record, number, line in zip(self.records, self.numbers, self.lines, strict=True):
            refusal = refuse(record)
            if refusal is None:
                kept.records.append(record)
                kept.numbers.append(number)
                kept.lines.append(line)
                continue
            code, message, column, key = refusal
            errors.add(number, code, message, column=column, key=key, raw=line_raw(line))
        self.records, self.numbers, self.lines = kept.records, kept.numbers, kept.lines


#: Why a record is refused: code, message, column, key.
_Refusal = tuple[RecordErrorCode, str, str | None, str | None]


def _read_lines(block: bytes, reading: Reading, index: int, first_record: int) -> RawChunk:
    lines = [line.removesuffix(b"\r") for line in block.split(b"\n") if line.strip()]
    numbers = list(range(first_record, first_record + len(lines)))
    errors = ErrorRows()
    records = _decode_all(lines)
    if records is None:
        read = _decode_each(lines, first_record, errors)
    else:
        read = _Lines(records, numbers, lines)
    if b"-0" in block:
        _keep_negative_zeros(read)
    known = set(reading.fields.values())
    drop_error = ERROR_FIELD not in known and b'"error"' in block
    if drop_error:
        for record in read.records:  # the failed-records file's own member
            record.pop(ERROR_FIELD, None)
    if not reading.options.ignore_unknown_columns and not all(
        known.issuperset(r) for r in read.records
    ):
        read.keep(lambda record: _unknown(record, reading), errors)
    json_fields = _fields_of(reading, ColumnType.JSON)
    if json_fields:
        _decode_exactly(read, json_fields, drop_error)
    columns, nested = _columns(read.records, reading)
    if nested:
        strings = _fields_of(reading, ColumnType.STRING)
        read.keep(lambda record: _nested_string(record, strings, reading), errors)
        columns, _ = _columns(read.records, reading)
    table = _table(columns, read.numbers, reading)
    errors_table = errors.table().sort_by("record_number")
    return RawChunk(index, first_record, len(lines), table, errors_table, lines=read.lines)


def _fields_of(reading: Reading, kind: ColumnType) -> list[str]:
    """The fields read by the checked columns of type ``kind``."""
    fields = []
    for column in reading.dataset.columns:
        field = reading.field_of(column)
        if column.type == kind and field is not None and reading.is_checked(column):
            fields.append(field)
    return fields


def _keep_negative_zeros(read: _Lines) -> None:
    """Decode again the lines with an integer ``-0``, which msgspec reads as 0: their integers
    as their text, so that a string column stores "-0" as sent."""
    for at, line in enumerate(read.lines):
        if _NEGATIVE_ZERO.search(line):
            read.records[at] = json.loads(line, parse_int=str, parse_float=str)


def _decode_exactly(read: _Lines, names: list[str], drop_error: bool) -> None:
    """Decode again the records whose json columns hold objects, arrays, strings or fractional
    numbers: the fast decode gives numbers as text, so a string and a number look alike, and a
    json column stores either as the JSON value it is."""
    for at, record in enumerate(read.records):
        if any(isinstance(record.get(name), dict | list | str) for name in names):
            exact = _EXACT.decode(read.lines[at])
            if drop_error:
                exact.pop(ERROR_FIELD, None)
            read.records[at] = exact


def _decode_each(lines: list[bytes], first_record: int, errors: ErrorRows) -> _Lines:
    """Slow path: decode line by line, turning each bad line into an error."""
    read = _Lines([], [], [])
    for number, line in enumerate(lines, start=first_record):
        value = _decode_one(line)
        if isinstance(value, dict):
            read.records.append(value)
            read.numbers.append(number)
            read.lines.append(line)
            continue
        try:
            line.decode("utf-8")
            code = RecordErrorCode.MALFORMED_RECORD
        except UnicodeDecodeError as exc:
            code = RecordErrorCode.INVALID_ENCODING
            value = f"the line is not valid UTF-8 (byte 0x{line[exc.start]:02x})"
        errors.add(number, code, value, raw=line_raw(line))
    return read


def _unknown(record: dict[str, Any], reading: Reading) -> _Refusal | None:
    unknown = [key for key in record if reading.column_for(key) is None]
    if not unknown:
        return None
    listed = ", ".join(repr(key[:100]) for key in unknown[:10])
    message = f"unknown column(s) {listed} (set options.ignore_unknown_columns to skip them)"
    return RecordErrorCode.UNKNOWN_COLUMN, message, unknown[0], record_key(record, reading)


def _nested_string(record: dict[str, Any], strings: list[str], reading: Reading) -> _Refusal | None:
    """An object or an array sent to a string column: refused, never stored as its JSON text."""
    nested = [n for n in strings if isinstance(record.get(n), dict | list)]
    if not nested:
        return None
    kind = _JSON_KINDS.get(type(record[nested[0]]), "an object")
    column = reading.column_for(nested[0])
    name = column.name if column is not None else nested[0]
    message = f"column {name!r}: {kind} is not a string (a json column takes it)"
    return RecordErrorCode.INVALID_STRING, message, name, record_key(record, reading)


def _columns(
    records: list[dict[str, Any]], reading: Reading
) -> tuple[dict[str, pa.Array[Any]], bool]:
    """The records' text columns by field, and whether a checked string column got an object or
    an array."""
    columns: dict[str, pa.Array[Any]] = {}
    nested = False
    for column in reading.dataset.columns:
        field = reading.field_of(column)
        if field is None:
            continue
        values = _values(records, field, column)
        if column.type == ColumnType.JSON:  # the JSON value on the line, whatever its type
            columns[field] = pa.array([_json_text(v) for v in values], pa.string())
            continue
        text = _strings(values)
        if text is None:
            if column.type == ColumnType.STRING and reading.is_checked(column):
                nested = nested or any(isinstance(v, dict | list) for v in values)
            text = _as_text(values)
        columns[field] = text
    return columns, nested


def _values(records: list[dict[str, Any]], field: str, column: Column) -> list[Any]:
    """The field's value in each record; a record without the key takes the column's default."""
    if column.default is None:
        return [record.get(field) for record in records]
    default = column.default if column.type == ColumnType.JSON else default_text(column.default)
    return [record.get(field, default) for record in records]


def _json_text(value: Any) -> str | None:
    return None if value is None else to_json(value)


def _strings(values: list[Any]) -> pa.Array[Any] | None:
    """The values as a string column if they all are strings (or null)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _as_text(values: list[Any]) -> pa.Array[Any]:
    """A string column of values that are not all strings: others as their JSON text."""
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


def _table(columns: dict[str, pa.Array[Any]], numbers: list[int], reading: Reading) -> pa.Table:
    arrays = {
        field: columns.get(field, pa.array([], pa.string())) for field in reading.fields.values()
    }
    arrays[RECORD_NUMBER] = pa.array(numbers, pa.int64())
    return pa.table(arrays)
