"""Generated JSON Lines files with every JSON type in every column type, and ``json``'s reading.

Each line is an object with ``n`` (the record's number) and a few of the dataset's columns,
holding null, booleans, integers (beyond 64 bits too), numbers in every notation, strings that
look like each column type or like nothing, arrays and objects. Hostile lines are drawn too:
not JSON, not an object, invalid UTF-8, a repeated key, an unknown key; lines end in LF or CRLF,
blank lines and a missing final newline included.
"""

from __future__ import annotations

import decimal
import gzip
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from batchyard.domain.schema import ColumnType
from differential.expect import Either, Exact, Expectation, Record, Reject
from differential.rules import from_text, json_unstorable
from differential.stored import load_json

COLUMNS = {
    "s": ColumnType.STRING,
    "i": ColumnType.INTEGER,
    "f": ColumnType.FLOAT,
    "d": ColumnType.DECIMAL,
    "b": ColumnType.BOOLEAN,
    "day": ColumnType.DATE,
    "ts": ColumnType.TIMESTAMP,
    "u": ColumnType.UUID,
    "j": ColumnType.JSON,
}
DATASET = {
    "name": "jsonldiff",
    "primary_key": ["n"],
    "columns": [
        {"name": "n", "type": "integer", "nullable": False},
        *({"name": name, "type": ctype.value} for name, ctype in COLUMNS.items()),
    ],
}

#: JSON number literals, as written (the reference reads the text, as a user means it).
_NUMBERS = ["0", "-0", "7", "-12", "1.5", "1.50", "1e3", "1E-2", "1e400", "1e-400", "0.1"]
_NUMBERS += ["9223372036854775807", "9223372036854775808", "123456789012345678901234567890"]
_STRINGS = ["", " ", "abc", "Zoë 😀", "12", " 42 ", "1.25", "NaN", "-inf", "yes", "F", "2024-02-29"]
_STRINGS += ["2023-02-29", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05.123456+01:30"]
_STRINGS += ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2024-01-02T03:04"]
_STRINGS += ["5f0c6d7e-8a1b-4c2d-9e3f-0a1b2c3d4e5f", "{5F0C6D7E8A1B4C2D9E3F0A1B2C3D4E5F}"]
_STRINGS += ['{"a": 1}', "[1, 2]", "null", "line\nbreak", 'quote " and \\ slash', "\x00"]
_NESTED = ['{"a": [1, 2.5, null, true]}', "[]", "{}", '[{"x": "y"}]', '{"a": {"b": 1e400}}']


@dataclass(frozen=True)
class Value:
    """A JSON value as written on the line."""

    text: str
    kind: str  # "null", "bool", "number", "string", "nested"


_VALUES = st.one_of(
    st.just(Value("null", "null")),
    st.sampled_from([Value("true", "bool"), Value("false", "bool")]),
    st.sampled_from([Value(n, "number") for n in _NUMBERS]),
    st.builds(
        lambda s, ascii_only: Value(json.dumps(s, ensure_ascii=ascii_only), "string"),
        st.sampled_from(_STRINGS),
        st.booleans(),
    ),
    st.sampled_from([Value(n, "nested") for n in _NESTED]),
)


def _expect(ctype: ColumnType, value: Value) -> Expectation:
    """What a JSON value must become in a column of ``ctype`` (docs/data-rules.md)."""
    if value.kind == "null":
        return Exact(None)
    if ctype == ColumnType.JSON:
        decoded = load_json(value.text)
        return Reject("jsonb cannot hold it") if json_unstorable(decoded) else Exact(decoded)
    if value.kind == "nested":
        return Reject("an array or object is not a " + ctype.value)
    if value.kind == "string":
        return from_text(ctype, json.loads(value.text))
    if ctype == ColumnType.STRING:
        # Docs: JSON numbers keep the text they were sent as; a boolean is not documented.
        return Exact(value.text) if value.kind == "number" else Either.of(value.text)
    if value.kind == "bool":
        return Exact(value.text == "true") if ctype == ColumnType.BOOLEAN else Reject("bool")
    if ctype in (ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DECIMAL):
        return from_text(ctype, value.text)
    expectation = from_text(ctype, value.text)
    return Either.of(expectation.value) if isinstance(expectation, Exact) else expectation


@dataclass(frozen=True)
class JsonlCase:
    data: bytes
    records: list[Record]


@st.composite
def _line(draw: st.DrawFn, number: int) -> tuple[bytes, Record]:
    names = draw(st.lists(st.sampled_from(list(COLUMNS)), unique=True, max_size=5))
    values = {name: draw(_VALUES) for name in names}
    pairs = [f'"n":{number}', *(f"{json.dumps(k)}:{v.text}" for k, v in values.items())]
    fields: dict[str, Expectation] = {"n": Exact(number)}
    fields.update({k: _expect(COLUMNS[k], v) for k, v in values.items()})
    fields.update({k: Exact(None) for k in COLUMNS if k not in values})
    hostile = draw(st.integers(0, 19))
    if hostile == 0:
        return _rejected(b'{"n":' + str(number).encode() + b', "s": "\xff"}')
    if hostile == 1 and names:
        pairs.append(f"{json.dumps(names[0])}:null")  # a repeated key
        return _rejected(("{" + ",".join(pairs) + "}").encode())
    if hostile == 2:
        pairs.append('"unknown":1')
        return _rejected(("{" + ",".join(pairs) + "}").encode())
    if hostile == 3:
        broken = draw(st.sampled_from(["[1, 2]", '"text"', "42", "{", '{"n":1,}', "nul"]))
        return _rejected(broken.encode())
    spacing = draw(st.sampled_from([",", ", ", " ,\t"]))
    line = ("{" + spacing.join(pairs) + "}").encode()
    return line, Record(fields, sent=line.decode())


def _rejected(line: bytes) -> tuple[bytes, Record]:
    sent = line.decode("utf-8", "replace")
    return line, Record({"n": Reject("the line is refused as a whole")}, sent=sent)


@st.composite
def jsonl_cases(draw: st.DrawFn, max_records: int = 10) -> JsonlCase:
    """A JSON Lines file (maybe gzip'd) and what each of its records must become."""
    count = draw(st.integers(0, max_records))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    out = bytearray()
    records: list[Record] = []
    for number in range(1, count + 1):
        line, record = draw(_line(number))
        if draw(st.integers(0, 9)) == 0:
            out += ending  # a blank line
        out += line + ending
        records.append(record)
    data = bytes(out if not out or draw(st.booleans()) else out[: -len(ending)])
    _check_reference(data, records)
    payload = gzip.compress(data, mtime=0) if draw(st.booleans()) else data
    return JsonlCase(payload, records)


def _check_reference(data: bytes, records: list[Record]) -> None:
    """The json module reads the file as the generator meant it: one object per good line."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        if record.must_fail:
            continue
        decoded: dict[str, Any] = json.loads(
            line, object_pairs_hook=_unique, parse_float=decimal.Decimal
        )
        for name, expectation in record.fields.items():
            if isinstance(expectation, Exact) and COLUMNS.get(name) == ColumnType.JSON:
                assert decoded.get(name) == expectation.value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)
