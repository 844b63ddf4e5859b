"""The failed-records file: each failed record as the client sent it, plus why it failed.

In the input's own format, so that the file can be fixed and sent again and nothing else
changes: CSV keeps every field's text as read, written with the input's delimiter, a missing
field (NULL) as an empty field and an empty string as ``""``; JSON Lines keeps each line exactly
as sent and adds the reason as a last member ``"error"``. A line that is not a JSON object comes
back as it was sent, alone (results.csv says why). The readers leave the ``error`` field out
when the file is sent again (``is_error_column``), unless the dataset declares a column of that
name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, cast

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Dataset
from batchyard.pipeline.chunks import ERROR_FIELD, ORIGINAL_LINE_FIELD, POSITIONAL_FIELDS

#: Media types of the two kinds of file, by the input's format.
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
JSONL_CONTENT_TYPE = "application/x-ndjson; charset=utf-8"
#: Decodes each failed record's fields (``raw``, JSON text). msgspec takes about a fifth of the
#: time ``json.loads`` does (a chunk of 1% invalid records spent 0.3 of its 0.8 ms of
#: failed-records text decoding them); what it refuses (NaN, numbers out of a float's range,
#: lone surrogates) goes to ``json.loads``, so every text decodes to the same fields as before.
_RAW_DECODER = msgspec.json.Decoder()
#: The ``error`` member this file adds, at the end of a line sent again as it was.
_EARLIER_ERROR = re.compile(r'(,\s*)?"error"\s*:\s*"(?:[^"\\]|\\.)*"\s*}$')


def is_error_column(name: str, dataset: Dataset) -> bool:
    """Whether an input field is this file's ``error`` column, left out when the file is sent
    again: exactly that name, and only while the dataset declares no column of that name."""
    return name == ERROR_FIELD and dataset.column(name) is None


def is_jsonl(input_format: str | None) -> bool:
    return input_format == "jsonl"


def content_type(input_format: str | None) -> str:
    return JSONL_CONTENT_TYPE if is_jsonl(input_format) else CSV_CONTENT_TYPE


def extension(input_format: str | None) -> str:
    return "jsonl" if is_jsonl(input_format) else "csv"


class FailedRecordsFormat:
    """Turns ERRORS_SCHEMA rows (with ``raw``) into the failed-records file's text."""

    def __init__(self, input_format: str | None, columns: list[str], delimiter: str = ","):
        self.jsonl = is_jsonl(input_format)
        self.columns = columns
        self.delimiter = delimiter

    def header(self) -> str:
        """The first line: CSV's header (fields, then ``error``); nothing for JSON Lines."""
        if self.jsonl:
            return ""
        return self._csv_line([*self.columns, ERROR_FIELD])

    def rows(self, failed: pa.Table) -> str:
        """One line per failed record, in the table's order."""
        render = self._jsonl_line if self.jsonl else self._csv_record
        return "".join(render(raw, error) for raw, error in _raw_and_errors(failed))

    def csv_rows(self, fields: pa.Table, error: str) -> str:
        """CSV lines of records given by their fields as text, all failing for one ``error``:
        built column-wise by Arrow, the same text ``rows`` makes record by record."""
        n = fields.num_rows
        if not n:
            return ""
        parts = [
            _csv_fields(fields[c] if c in fields.column_names else pa.nulls(n, pa.string()), self)
            for c in self.columns
        ]
        ending = pa.scalar(_csv_field(error, self.delimiter) + "\n")
        lines = pc.binary_join_element_wise(*parts, ending, self.delimiter)
        return "".join(cast("list[str]", lines.to_pylist()))

    def _csv_record(self, raw: dict[str, Any], error: str) -> str:
        return self._csv_line([*_original_values(raw, self.columns), error])

    def _csv_line(self, fields: list[str | None]) -> str:
        delimiter = self.delimiter
        return delimiter.join([_csv_field(f, delimiter) for f in fields]) + "\n"

    def _jsonl_line(self, raw: dict[str, Any], error: str) -> str:
        line = raw.get(ORIGINAL_LINE_FIELD)
        member = f"{json.dumps(ERROR_FIELD)}: {json.dumps(error, ensure_ascii=False)}"
        if not isinstance(line, str):  # no line kept: the fields known, if any
            line = json.dumps(raw, ensure_ascii=False)
        body = line.rstrip()
        if not _is_object(body):
            return line + "\n"
        if ERROR_FIELD not in self.columns:  # sent again: the earlier reason gives way
            body = _EARLIER_ERROR.sub("}", body)
        inside = body[:-1].rstrip()
        separator = "" if inside.endswith("{") else ", "
        return f"{inside}{separator}{member}}}\n"


def _raw_and_errors(failed: pa.Table) -> Iterator[tuple[dict[str, Any], str]]:
    for raw, code, column, message in zip(
        failed["raw"].to_pylist(),
        failed["code"].to_pylist(),
        failed["column"].to_pylist(),
        failed["message"].to_pylist(),
        strict=True,
    ):
        where = f" (column {column})" if column else ""
        yield _decode_raw(raw), f"{code}{where}: {message}"


def _csv_fields(values: Any, form: FailedRecordsFormat) -> Any:
    """``_csv_field`` for a column at once."""
    special = f'[\\x{{{ord(form.delimiter):x}}}"\\r\\n]'
    needs = pc.or_(
        pc.equal(pc.utf8_length(values), pa.scalar(0, pa.int32())),
        pc.match_substring_regex(values, pattern=special),
    )
    quoted = pc.binary_join_element_wise(
        '"', pc.replace_substring(values, pattern='"', replacement='""'), '"', ""
    )
    return pc.fill_null(pc.if_else(needs, quoted, values), "")


def _is_object(text: str) -> bool:
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _csv_field(value: str | None, delimiter: str) -> str:
    """A field as CSV text: None (NULL) is left empty, an empty string is quoted ``""``."""
    if value is None:
        return ""
    # A quote or a line break needs quotes too; tested one by one, not with any() over a
    # generator, as this runs for every field of every failed record.
    if value == "" or delimiter in value or '"' in value or "\r" in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _original_values(fields: dict[str, Any], columns: list[str]) -> list[str | None]:
    """The record's fields in file order; a CSV line with the wrong field count keeps its fields
    by position (``_fields``) so that nothing the client sent is dropped from the file to fix."""
    positional = fields.get(POSITIONAL_FIELDS)
    if isinstance(positional, list):
        texts = [None if v is None else _field_text(v) for v in positional]
        return texts + [None] * (len(columns) - len(texts))
    return [None if fields.get(c) is None else _field_text(fields[c]) for c in columns]


def _decode_raw(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        decoded = _RAW_DECODER.decode(raw)
    except msgspec.MsgspecError:
        try:
            decoded = json.loads(raw)
        except ValueError:
            return {}
    return decoded if isinstance(decoded, dict) else {}


def _field_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
