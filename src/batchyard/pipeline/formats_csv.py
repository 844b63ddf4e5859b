"""CSV: each block parsed by pyarrow at C speed; a block with a bad record re-read exactly.

Three paths, fastest first: pyarrow's parallel parse of the whole block; if a record has the
wrong number of fields, pyarrow's serial parse that hands those records over one by one (so a
ragged line costs its own handling, not a Python walk of its block); and only for what pyarrow
cannot parse at all (invalid UTF-8, broken quoting) the csv module, record by record.

Null semantics follow PostgreSQL's COPY … CSV: an unquoted empty field is NULL, a quoted ""
is the empty string. Blank lines are not records. The first record is the header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Literal, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from batchyard.domain.errors import InputRejected
from batchyard.domain.reading import Reading
from batchyard.domain.records import RecordErrorCode
from batchyard.pipeline.chunks import POSITIONAL_FIELDS, RECORD_NUMBER, RawChunk, empty_errors
from batchyard.pipeline.formats_blocks import RecordTooLarge, record_blocks
from batchyard.pipeline.formats_common import (
    DEFAULT_HEADER_LIMITS,
    ErrorRows,
    HeaderLimits,
    Reader,
    check_fields,
    empty_raw_table,
    number_records,
    record_key,
    to_json,
)

#: What pyarrow's invalid-row handler answers: drop the record, or fail the whole parse.
RowVerdict = Literal["skip", "error"]
#: pyarrow's own parallel parse unit inside one of our blocks.
_ARROW_BLOCK = 4 << 20


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the header told us: every field name, the ones kept, and how to parse."""

    names: list[str]
    keep: list[str]
    delimiter: str
    reading: Reading
    max_record_bytes: int


def read_csv(
    stream: Reader,
    *,
    reading: Reading,
    chunk_bytes: int,
    max_record_bytes: int,
    header_limits: HeaderLimits = DEFAULT_HEADER_LIMITS,
) -> Iterator[RawChunk]:
    """One RawChunk per block of records; raises InputRejected for an unusable header."""
    options = reading.options
    _check_delimiter(options.delimiter)
    blocks = record_blocks(
        stream,
        chunk_bytes,
        max_record_bytes,
        quoted=True,
        delimiter=options.delimiter,
        max_header_bytes=header_limits.bytes,
    )
    names = _read_header(next(blocks, b""), options.delimiter, header_limits, max_record_bytes)
    keep = check_fields(names, reading, "CSV header")
    layout = _Layout(names, keep, options.delimiter, reading, max_record_bytes)
    next_record, index = 1, 0
    for block in blocks:
        chunk = _read_block(block, layout, index, next_record)
        if chunk.record_count:
            yield chunk
            index += 1
            next_record += chunk.record_count


def _check_delimiter(delimiter: str) -> None:
    if len(delimiter.encode("utf-8")) != 1 or delimiter in '"\r\n':
        raise InputRejected(
            f"options.delimiter {delimiter!r} cannot be used: it must be one ASCII character "
            "other than a quote or a line break"
        )


def _read_header(
    header: bytes | RecordTooLarge, delimiter: str, limits: HeaderLimits, max_record_bytes: int
) -> list[str]:
    """The header's field names, refused at once when it is missing or over the caps."""
    too_long = f"the CSV header is longer than {min(limits.bytes, max_record_bytes)} bytes"
    if isinstance(header, RecordTooLarge) or len(header) > limits.bytes:
        raise InputRejected(too_long)
    if not header.strip():
        raise InputRejected("the input is empty: a CSV file starts with a header naming its fields")
    names = _parse_header(header, delimiter)
    if len(names) > limits.columns:
        raise InputRejected(
            f"the CSV header has {len(names)} fields, more than the {limits.columns} allowed"
        )
    return names


def _parse_header(header: bytes, delimiter: str) -> list[str]:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRejected(f"the CSV header is not valid UTF-8 ({exc.reason})") from exc
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (csv.Error, TypeError) as exc:
        raise InputRejected(f"the CSV header cannot be parsed ({exc})") from exc
    return [name.strip() for name in rows[0]] if rows else []


def _read_block(
    block: bytes | RecordTooLarge, layout: _Layout, index: int, first_record: int
) -> RawChunk:
    if isinstance(block, RecordTooLarge):
        errors = ErrorRows()
        message = f"record is larger than {block.limit} bytes"
        errors.add(first_record, RecordErrorCode.RECORD_TOO_LARGE, message)
        return RawChunk(index, first_record, 1, empty_raw_table(layout.keep), errors.table())
    table = _parse_fast(block, layout)
    if table is not None:
        numbered = number_records(table, first_record)
        return RawChunk(index, first_record, table.num_rows, numbered, empty_errors())
    if _is_utf8(block):  # pyarrow cannot hand over a ragged record that is not UTF-8
        ragged = _parse_skipping_ragged(block, layout, index, first_record)
        if ragged is not None:
            return ragged
    return _parse_exact(block, layout, index, first_record)


def _is_utf8(block: bytes) -> bool:
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_skipping_ragged(
    block: bytes, layout: _Layout, index: int, first_record: int
) -> RawChunk | None:
    """Middle path: pyarrow skips records with the wrong field count and reports each one.

    None if the block has another problem (the exact path then judges every record).
    """
    ragged: list[tuple[int, str]] = []

    def skip(row: pcsv.InvalidRow) -> RowVerdict:
        if row.number is None:
            return "error"
        ragged.append((first_record + row.number - 1, row.text))
        return "skip"

    try:
        table = _arrow_read(block, layout, len(block) + 1, invalid_row_handler=skip)
    except pa.ArrowInvalid:
        return None
    total = table.num_rows + len(ragged)
    numbers = pa.arange(first_record, first_record + total)  # type: ignore[attr-defined]
    bad_numbers = pa.array([number for number, _ in ragged], pa.int64())
    numbers = numbers.filter(pc.invert(pc.is_in(numbers, value_set=bad_numbers)))
    errors = ErrorRows()
    for number, text in ragged:
        fields = next(csv.reader([text], delimiter=layout.delimiter), [])
        _wrong_field_count(errors, number, fields, layout)
    table = table.append_column(pa.field(RECORD_NUMBER, pa.int64()), numbers)
    return RawChunk(index, first_record, total, table, errors.table())


def _arrow_read(
    data: bytes,
    layout: _Layout,
    block_size: int,
    invalid_row_handler: Callable[[pcsv.InvalidRow], RowVerdict] | None = None,
) -> pa.Table:
    # include_columns=[] would mean "all": read one field and drop it when none is kept.
    include = layout.keep or layout.names[:1]
    table = pcsv.read_csv(
        # A NativeFile is read without copies; the stubs only list Python file types.
        cast("IO[bytes]", pa.BufferReader(data)),
        read_options=pcsv.ReadOptions(
            column_names=layout.names,
            block_size=block_size,
            # Only a serial parse tells the handler which record it is looking at.
            use_threads=invalid_row_handler is None,
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=layout.delimiter,
            newlines_in_values=True,
            invalid_row_handler=invalid_row_handler,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in include},
            include_columns=include,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=list(layout.reading.null_markers),
        ),
    )
    return table if layout.keep else table.select([])


def _parse_fast(block: bytes, layout: _Layout) -> pa.Table | None:
    """The block as a table, or None if it holds a record that needs the exact path."""
    try:
        return _arrow_read(block, layout, _ARROW_BLOCK)
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            return None
    try:  # a record longer than pyarrow's block: parse the whole block as one
        return _arrow_read(block, layout, len(block) + 1)
    except pa.ArrowInvalid:
        return None


def _lines(text: str) -> list[str]:
    """Lines with their endings kept ("\n", "\r\n" or "\r", as the csv module wants them), so
    any run of them is the exact text of those records."""
    return io.StringIO(text, newline="").readlines()


def _parse_exact(block: bytes, layout: _Layout, index: int, first_record: int) -> RawChunk:
    """Slow path: walk the block with the csv module to number and judge every record.

    Good records are then handed back to pyarrow together, so their null semantics are exactly
    those of the fast path.
    """
    csv.field_size_limit(max(csv.field_size_limit(), layout.max_record_bytes))
    lines = _lines(block.decode("utf-8", "surrogateescape"))
    reader = csv.reader(lines, delimiter=layout.delimiter)
    errors = ErrorRows()
    good_text: list[str] = []
    good_rows: list[list[str]] = []
    numbers: list[int] = []
    number, start = first_record, 0
    while (row := _next_row(reader)) is not None:
        end = reader.line_num
        if isinstance(row, str):
            message = f"the CSV record cannot be parsed ({row})"
            errors.add(number, RecordErrorCode.MALFORMED_RECORD, message)
        elif row and not _add_error(errors, number, row, layout):
            good_text.append("".join(lines[start:end]))
            good_rows.append(row)
            numbers.append(number)
        number += 1 if row else 0
        start = end
    table = _good_table("".join(good_text).encode("utf-8"), good_rows, layout)
    table = table.append_column(pa.field(RECORD_NUMBER, pa.int64()), pa.array(numbers, pa.int64()))
    return RawChunk(index, first_record, number - first_record, table, errors.table())


def _good_table(data: bytes, rows: list[list[str]], layout: _Layout) -> pa.Table:
    table = _parse_fast(data, layout) if rows else None
    if table is not None and table.num_rows == len(rows):
        return table
    # pyarrow and the csv module disagree on these records: take the csv module's fields, with
    # the null markers as NULL (the quoted/unquoted distinction is lost here).
    markers = frozenset(layout.reading.null_markers)
    columns = {}
    for name in layout.keep:
        at = layout.names.index(name)
        columns[name] = pa.array(
            [None if row[at] in markers else row[at] for row in rows], pa.string()
        )
    return pa.table(columns, schema=pa.schema([pa.field(n, pa.string()) for n in layout.keep]))


def _next_row(reader: Iterator[list[str]]) -> list[str] | str | None:
    """The next record's fields, the csv module's complaint about it, or None at the end."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        return str(exc)


def _clean(field: str) -> str:
    """Undo surrogateescape for display: bad bytes become U+FFFD."""
    return field.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _wrong_field_count(errors: ErrorRows, number: int, row: list[str], layout: _Layout) -> None:
    message = f"expected {len(layout.names)} fields, found {len(row)}"
    raw = to_json({POSITIONAL_FIELDS: [_clean(f) for f in row]})
    errors.add(number, RecordErrorCode.WRONG_FIELD_COUNT, message, raw=raw)


def _add_error(errors: ErrorRows, number: int, row: list[str], layout: _Layout) -> bool:
    """Record why ``row`` cannot be read, if it cannot; return whether it was an error."""
    if len(row) != len(layout.names):
        _wrong_field_count(errors, number, row, layout)
        return True
    for at, field in enumerate(row):
        try:
            field.encode("utf-8")
        except UnicodeEncodeError as exc:
            name = layout.names[at]
            byte = ord(field[exc.start]) - 0xDC00
            message = f"field {name!r} is not valid UTF-8 (byte 0x{byte:02x})"
            fields = {n: _clean(f) for n, f in zip(layout.names, row, strict=True)}
            key = record_key(fields, layout.reading)
            errors.add(
                number,
                RecordErrorCode.INVALID_ENCODING,
                message,
                column=name if name in layout.keep else None,
                key=key,
                raw=to_json(fields),
            )
            return True
    return False
