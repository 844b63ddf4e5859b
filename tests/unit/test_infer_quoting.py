"""Which fields of a CSV sample were quoted, read exactly as Python's csv module reads the
records: the import reads a quoted ``""`` or ``"NA"`` as text, so inference must know."""

from __future__ import annotations

import csv
import io

from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from batchyard.client.infer_quoting import QuotedText, mark_quoted, quoted_records

DELIMITERS = st.sampled_from([",", "\t", ";", "|"])
#: Texts made of what CSV syntax is made of, and of markers.
PIECES = st.sampled_from(['"', '""', ",", ";", "\t", "|", "\r", "\n", "\r\n", " ", "NA", "x", "é"])


def csv_rows(text: str, delimiter: str) -> list[list[str]]:
    """The reference: the csv module's non-blank records."""
    return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40), delimiter=DELIMITERS)
@example(pieces=["\n", "\r"], delimiter=",")  # a blank line before a last lone "\r"
def test_any_text_is_cut_into_the_records_and_fields_the_csv_module_reads(
    pieces: list[str], delimiter: str
) -> None:
    text = "".join(pieces)
    note(repr(text))
    assert [fields for fields, _ in quoted_records(text, delimiter)] == csv_rows(text, delimiter)


FIELDS = st.text(st.sampled_from(['"', ",", ";", "\t", "\r", "\n", " ", "N", "A", "1"]), max_size=4)


@st.composite
def written(draw: st.DrawFn) -> tuple[str, str, list[list[tuple[str, bool]]]]:
    """A CSV text written field by field, each quoted or not (quoted wherever it must be)."""
    delimiter = draw(DELIMITERS)
    width = draw(st.integers(1, 4))
    records = draw(
        st.lists(st.lists(st.tuples(FIELDS, st.booleans()), min_size=width, max_size=width))
    )
    lines = []
    kept = []
    for record in records:
        fields = []
        for value, quote in record:
            # Unquoted, a field cannot hold the delimiter or a line break nor start with a quote.
            must = value.startswith('"') or any(c in value for c in (delimiter, "\r", "\n"))
            fields.append((value, quote or must))
        if fields == [("", False)]:
            continue  # a blank line: no record, for the csv module as for the import
        kept.append(fields)
        lines.append(
            delimiter.join('"' + v.replace('"', '""') + '"' if q else v for v, q in fields)
        )
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return delimiter, "".join(line + ending for line in lines), kept


@settings(max_examples=500, deadline=None)
@given(case=written())
def test_the_quoted_fields_are_those_written_quoted(
    case: tuple[str, str, list[list[tuple[str, bool]]]],
) -> None:
    delimiter, text, records = case
    note(repr(text))
    rows = list(mark_quoted(csv_rows(text, delimiter), text, delimiter))
    assert rows == [[value for value, _ in record] for record in records]
    flags = [[isinstance(field, QuotedText) for field in row] for row in rows]
    assert flags == [[quoted for _, quoted in record] for record in records]
