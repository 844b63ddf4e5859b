"""The flags that say how an input file is read: --delimiter, --null-marker, --column.

Shared by ``import`` (they become batch options) and ``datasets create --from-sample`` (the
delimiter reaches inference), so both spell and check them alike.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

#: Delimiters the server accepts, by the names a shell makes easy to type.
DELIMITERS = {",": ",", "comma": ",", "\t": "\t", "\\t": "\t", "tab": "\t", ";": ";"}
DELIMITERS.update({"semicolon": ";", "|": "|", "pipe": "|"})

Delimiter = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="CSV field separator: ',' (default), tab (also '\\t'), ';' or '|'.",
        show_default=False,
    ),
]
NullMarkers = Annotated[
    list[str] | None,
    typer.Option(
        "--null-marker",
        metavar="TEXT",
        help="A CSV text read as null (repeat it; include '' to keep empty fields null). "
        "Default: the dataset's markers.",
        show_default=False,
    ),
]
ColumnMap = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        metavar="FIELD=COLUMN",
        help="Read the input field FIELD into COLUMN for this batch (repeat it); "
        "overrides the dataset's from.",
        show_default=False,
    ),
]


def parse_delimiter(value: str | None) -> str | None:
    """The delimiter character a --delimiter value names, or a usage error."""
    if value is None:
        return None
    found = DELIMITERS.get(value) or DELIMITERS.get(value.lower())
    if found is None:
        raise typer.BadParameter(
            f"{value!r} is not one of ',', tab ('\\t'), ';', '|'", param_hint="--delimiter"
        )
    return found


def _column_map(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.rpartition("=")
        if not sep or not field or not column:
            raise typer.BadParameter(f"{pair!r} is not FIELD=COLUMN", param_hint="--column")
        mapping[field] = column
    return mapping


def with_reading_options(
    options: dict[str, Any] | None,
    delimiter: str | None,
    null_markers: list[str] | None,
    columns: list[str] | None,
) -> dict[str, Any] | None:
    """``options`` (from --options) with the reading flags set; the flags win."""
    merged = dict(options or {})
    if (chosen := parse_delimiter(delimiter)) is not None:
        merged["delimiter"] = chosen
    if null_markers:
        merged["null_markers"] = list(null_markers)
    if columns:
        merged["columns"] = _column_map(columns)
    return merged or None
