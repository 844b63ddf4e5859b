"""Generated CSV files as other tools (and careless hands) write them, and the csv module's reading.

A file is a header ``n,a,b,v`` and records whose fields hold quotes at every position,
delimiters, LF, CR and CRLF inside and outside quotes, multi-byte UTF-8 (cut across chunk
boundaries by the tiny chunks), invalid UTF-8, empty and whitespace-only fields; lines end in
LF, CRLF, CR or a mix; a BOM, blank lines, a missing final newline, gzip, a ragged record and a
raw field that opens quotes where a writer never would are all drawn. ``n`` numbers the records
as written, so a stored row can be traced to its record.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass

from hypothesis import strategies as st

from batchyard.domain.schema import ColumnType
from differential.expect import Either, Exact, Expectation, Record, Reject
from differential.rules import from_text

DATASET = {
    "name": "csvdiff",
    "primary_key": ["n"],
    "columns": [
        {"name": "n", "type": "integer", "nullable": False},
        {"name": "a", "type": "string"},
        {"name": "b", "type": "string"},
        {"name": "v", "type": "integer"},
    ],
}
TYPES = {"n": ColumnType.INTEGER, "a": ColumnType.STRING, "b": ColumnType.STRING}
TYPES["v"] = ColumnType.INTEGER
NAMES = ["n", "a", "b", "v"]

_ATOMS = ["a", "b", " ", "é", "€", "😀", '"', ",", "\n", "\r", "\r\n", "\t", "x" * 40, '""']
_BAD_BYTES = [b"\xff", b"\xe2\x82", b"\xc3"]
_INTEGERS = ["1", "-5", "+7", " 12 ", "", "   ", "abc", "1.5", "0x10", "1e3", "١٢"]
_INTEGERS += ["9223372036854775807", "9223372036854775808", "-9223372036854775808"]
TERMINATORS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}


@dataclass(frozen=True)
class Field:
    """One field as intended: its text (None: missing) and how it is written."""

    text: str | None
    #: "quoted", "plain" (unquoted; only where a writer could) or "raw" (as is, however odd).
    style: str
    bad_bytes: bytes = b""

    def encoded(self) -> bytes:
        if self.text is None:
            return b""
        body = self.text.encode("utf-8") + self.bad_bytes
        if self.style == "raw" or (self.style == "plain" and _plain_ok(self.text)):
            return body
        return b'"' + body.replace(b'"', b'""') + b'"'


def _plain_ok(text: str) -> bool:
    return bool(text) and not any(c in text for c in ",\r\n") and not text.startswith('"')


@st.composite
def _field(draw: st.DrawFn, values: st.SearchStrategy[str]) -> Field:
    if draw(st.integers(0, 9)) == 0:
        return Field(None, "plain")
    text = draw(values)
    style = draw(st.sampled_from(["quoted", "plain", "plain", "raw"]))
    if style == "raw" and (not text or any(c in text for c in "\r\n")):
        style = "quoted"  # a raw line break would only make a ragged record, drawn elsewhere
    bad = draw(st.sampled_from(_BAD_BYTES)) if draw(st.integers(0, 19)) == 0 else b""
    return Field(text, style, bad)


_TEXT = st.lists(st.sampled_from(_ATOMS), max_size=8).map("".join)


@st.composite
def _record(draw: st.DrawFn, number: int) -> list[Field]:
    fields = [Field(str(number), "plain"), draw(_field(_TEXT)), draw(_field(_TEXT))]
    fields.append(draw(_field(st.sampled_from(_INTEGERS))))
    ragged = draw(st.integers(0, 24))
    if ragged == 0:
        fields.append(Field("extra", "plain"))
    elif ragged == 1:
        fields.pop()
    return fields


@dataclass(frozen=True)
class CsvCase:
    data: bytes
    #: What each record must become, in input order.
    records: list[Record]
    #: Whether the csv module read exactly the records as intended (else only it is trusted).
    as_intended: bool


@st.composite
def csv_cases(draw: st.DrawFn, max_records: int = 12) -> CsvCase:
    """A CSV file (maybe gzip'd) and the reference's reading of it."""
    count = draw(st.integers(0, max_records))
    records = [draw(_record(i + 1)) for i in range(count)]
    ending = draw(st.sampled_from(["lf", "crlf"]))
    out = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    out += b"n,a,b,v"
    for fields in records:
        terminator = TERMINATORS.get(ending) or draw(st.sampled_from(list(TERMINATORS.values())))
        out += terminator.encode()
        if draw(st.integers(0, 9)) == 0:
            out += terminator.encode()  # a blank line
        out += b",".join(f.encoded() for f in fields)
    if not records or draw(st.booleans()):
        out += TERMINATORS["lf" if ending == "mixed" else ending].encode()
    data = bytes(out)
    expected = reference(data, records)
    payload = gzip.compress(data, mtime=0) if draw(st.booleans()) else data
    return CsvCase(payload, *expected)


def reference(data: bytes, intended: list[list[Field]]) -> tuple[list[Record], bool]:
    """The csv module's records, each with what it must become."""
    text = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    csv.field_size_limit(1 << 30)
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    body = rows[1:]
    wanted = [[_as_read(f) for f in fields] for fields in intended]
    as_intended = body == wanted
    if as_intended:
        return [_record_from_fields(fields) for fields in intended], True
    return [_record_from_row(row) for row in body], False


def _as_read(field: Field) -> str:
    """The text the csv module reads for an intended field (which is its text, by design)."""
    return (
        field.encoded().decode("utf-8", "surrogateescape")
        if field.style == "raw"
        else ((field.text or "") + field.bad_bytes.decode("utf-8", "surrogateescape"))
    )


def _broken(row: list[str]) -> Reject | None:
    if len(row) != len(NAMES):
        return Reject("wrong_field_count")
    if any(_has_bad_bytes(text) for text in row):
        return Reject("invalid_encoding")
    return None


def _has_bad_bytes(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _record_from_fields(fields: list[Field]) -> Record:
    texts = [_as_read(f) for f in fields]
    broken = _broken(texts)
    if broken is not None:
        return Record(dict.fromkeys(NAMES, broken))
    # As intended, a raw field never opened quotes: each text is exactly what was meant.
    expectations = {name: _typed(name, f.text) for name, f in zip(NAMES, fields, strict=True)}
    return Record(expectations, sent=texts)


def _typed(name: str, text: str | None) -> Expectation:
    if name == "n" and text is None:
        return Reject("missing_value")
    return from_text(TYPES[name], text)


def _lenient(name: str, text: str) -> Expectation:
    """A field only a lenient reader takes: the reference's value, or failed."""
    expectation = from_text(TYPES[name], text)
    if isinstance(expectation, Exact):
        return Either.of(expectation.value)
    return expectation


def _record_from_row(row: list[str]) -> Record:
    broken = _broken(row)
    if broken is not None:
        return Record(dict.fromkeys(NAMES, broken))
    expectations: dict[str, Expectation] = {}
    for name, text in zip(NAMES, row, strict=True):
        # The csv module does not tell a missing value from a quoted empty one.
        if text == "":
            expectations[name] = Reject("missing_value") if name == "n" else Either.of(None, "")
        else:
            expectations[name] = _lenient(name, text)
    return Record(expectations)
