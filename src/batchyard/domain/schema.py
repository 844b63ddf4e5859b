"""Dataset schemas: column types, constraints and the rules a schema must follow.

A dataset is a target table; its schema is what every record is validated against.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from batchyard.domain.errors import InvalidSchema

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MAX_DECIMAL_PRECISION = 38
#: Longest ``max_length`` a string column may declare: PostgreSQL's varchar limit.
MAX_STRING_LENGTH = 10_485_760
#: Longest input field name a column may read from (``from``, ``options.columns``).
MAX_FIELD_NAME = 1024
#: Most null markers a dataset or batch may name, and the longest one.
MAX_NULL_MARKERS, MAX_NULL_MARKER_LENGTH = 64, 256
#: The null markers when neither the dataset nor the batch names any: an empty CSV field.
DEFAULT_NULL_MARKERS = ("",)
#: Names the pipeline gives its own columns beside the input's fields: no input field may
#: be read under them.
RESERVED_FIELDS = frozenset({"__record_number"})


class ColumnType(enum.StrEnum):
    """The value types a column can hold."""

    STRING = "string"
    INTEGER = "integer"  #: 64-bit signed
    FLOAT = "float"  #: 64-bit IEEE 754
    DECIMAL = "decimal"  #: exact, with precision and scale
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"  #: stored in UTC; naive input is taken as UTC
    UUID = "uuid"
    JSON = "json"


#: Types whose values can be ordered, so ``min``/``max`` apply.
ORDERED_TYPES = frozenset(
    {
        ColumnType.INTEGER,
        ColumnType.FLOAT,
        ColumnType.DECIMAL,
        ColumnType.DATE,
        ColumnType.TIMESTAMP,
    }
)


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a safe SQL identifier, else raise InvalidSchema."""
    # fullmatch: "$" would let a name end in a newline, which breaks every later use of it.
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise InvalidSchema(
            f"{what} name {name!r} must match ^{IDENTIFIER.pattern}$",
            details={"field": what, "value": name},
        )
    return name


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a dataset: its type, nullability and constraints."""

    name: str
    type: ColumnType
    nullable: bool = True
    max_length: int | None = None
    pattern: str | None = None
    min: Any = None
    max: Any = None
    enum: tuple[str, ...] | None = None
    precision: int | None = None
    scale: int | None = None
    #: The input field (CSV header, JSON key, Parquet column) the column is read from; None:
    #: the field of the column's own name (the API's ``from``).
    input_field: str | None = None
    #: The value (as JSON gives it) a column takes when the input has no such field at all;
    #: None: no default. Whether it is a valid value is checked by the pipeline's own checks.
    default: Any = None

    def __post_init__(self) -> None:
        check_identifier(self.name, "column")
        if self.input_field is not None:
            check_field_name(self.input_field, f"column {self.name!r}: from")
        _check_column(self)

    @property
    def field(self) -> str:
        """The input field the column reads unless a batch says otherwise."""
        return self.input_field if self.input_field is not None else self.name

    def to_dict(self) -> dict[str, Any]:
        """The column as in the API body, omitting unset constraints."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "nullable": self.nullable,
        }
        for key in ("max_length", "pattern", "min", "max", "precision", "scale"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.input_field is not None:
            out["from"] = self.input_field
        if self.default is not None:
            out["default"] = self.default
        return out


def check_field_name(name: object, what: str) -> str:
    """An input field name a column may be read from, else InvalidSchema.

    Any text a header can hold (spaces, capitals, digits first), but not empty, not longer than
    MAX_FIELD_NAME, and none of the pipeline's own names.
    """
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_FIELD_NAME:
        raise InvalidSchema(
            f"{what} must be a field name of 1 to {MAX_FIELD_NAME} characters",
            details={"field": what},
        )
    if name in RESERVED_FIELDS or "\0" in name:
        raise InvalidSchema(
            f"{what} {name!r} is a name batchyard keeps for itself", details={"field": what}
        )
    return name


def check_reserved_names(dataset: Dataset) -> None:
    """InvalidSchema for a column named as the pipeline's own columns (``__record_number``).

    Checked when a dataset is declared, not when one is loaded: a dataset stored before this
    check still loads (and can be deleted).
    """
    for column in dataset.columns:
        if column.name in RESERVED_FIELDS:
            raise InvalidSchema(
                f"column name {column.name!r} is a name batchyard keeps for itself",
                details={"column": column.name},
            )


def check_null_markers(markers: object, what: str) -> tuple[str, ...]:
    """The null markers as a tuple, else InvalidSchema (``what`` names them in the message)."""
    if not isinstance(markers, list | tuple) or len(markers) > MAX_NULL_MARKERS:
        raise InvalidSchema(f"{what} must be a list of at most {MAX_NULL_MARKERS} texts")
    for marker in markers:
        if not isinstance(marker, str) or len(marker) > MAX_NULL_MARKER_LENGTH:
            raise InvalidSchema(
                f"{what}: each marker must be a text of at most {MAX_NULL_MARKER_LENGTH} characters"
            )
    return tuple(markers)


def _check_column(column: Column) -> None:
    _check_string_constraints(column)
    _check_numeric_constraints(column)


def _column_error(column: Column, message: str) -> InvalidSchema:
    return InvalidSchema(f"column {column.name!r}: {message}", details={"column": column.name})


def _check_string_constraints(column: Column) -> None:
    ctype = column.type

    if column.max_length is not None and (
        ctype != ColumnType.STRING
        or not isinstance(column.max_length, int)
        or not 1 <= column.max_length <= MAX_STRING_LENGTH
    ):
        raise _column_error(
            column,
            f"max_length applies to string columns and must be from 1 to {MAX_STRING_LENGTH}",
        )
    # A pattern's syntax is RE2's, checked by the engine that runs it when a dataset is
    # declared (pipeline.patterns): a dataset stored before then must still load.
    if column.pattern is not None and ctype != ColumnType.STRING:
        raise _column_error(column, "pattern applies to string columns only")
    if column.enum is not None and (ctype != ColumnType.STRING or not column.enum):
        raise _column_error(column, "enum applies to string columns and needs at least one value")


def _check_numeric_constraints(column: Column) -> None:
    ctype = column.type

    if (column.min is not None or column.max is not None) and ctype not in ORDERED_TYPES:
        raise _column_error(
            column, "min/max apply to integer, float, decimal, date and timestamp columns only"
        )
    for bound in (column.min, column.max):
        if bound is not None and not _bound_fits(ctype, bound):
            raise _column_error(column, f"bound {bound!r} is not {_BOUND_FORMS[ctype]}")
    if ctype == ColumnType.DECIMAL:
        precision = column.precision if column.precision is not None else MAX_DECIMAL_PRECISION
        scale = column.scale if column.scale is not None else 0
        if not 1 <= precision <= MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
            raise _column_error(
                column,
                f"decimal needs 1 <= precision <= {MAX_DECIMAL_PRECISION}"
                " and 0 <= scale <= precision",
            )
    elif column.precision is not None or column.scale is not None:
        raise _column_error(column, "precision/scale apply to decimal columns only")


_BOUND_FORMS = {
    ColumnType.INTEGER: "a finite number",
    ColumnType.FLOAT: "a finite number",
    ColumnType.DECIMAL: "a finite number",
    ColumnType.DATE: "a date (YYYY-MM-DD)",
    ColumnType.TIMESTAMP: "a timestamp (YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH:MM])",
}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?"
)


def _bound_fits(ctype: ColumnType, bound: Any) -> bool:
    """Whether a min/max can be compared with the column's values (checked now, not per batch)."""
    if ctype in (ColumnType.DATE, ColumnType.TIMESTAMP):
        return isinstance(bound, str) and _is_moment(ctype, bound)
    if isinstance(bound, bool):
        return False
    if isinstance(bound, str) and not _NUMBER.fullmatch(bound.strip()):
        return False
    if not isinstance(bound, int | float | str):
        return False
    try:
        return math.isfinite(float(bound))
    except (OverflowError, ValueError):
        return False


def _is_moment(ctype: ColumnType, text: str) -> bool:
    try:
        if ctype == ColumnType.DATE:
            return bool(_DATE.fullmatch(text)) and bool(date.fromisoformat(text))
        if not _TIMESTAMP.fullmatch(text):
            return False
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named target table with a declared schema."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    created_ts: float | None = None
    owner_id: str | None = None
    #: The CSV texts read as null (None: DEFAULT_NULL_MARKERS); a batch may name its own.
    null_markers: tuple[str, ...] | None = None
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Any identifier: batchyard's own tables are where no dataset's table can be.
        check_identifier(self.name, "dataset")
        if not self.columns:
            raise InvalidSchema("a dataset needs at least one column")
        by_name: dict[str, Column] = {}
        for column in self.columns:
            if column.name in by_name:
                raise InvalidSchema(f"column {column.name!r} is declared twice")
            by_name[column.name] = column
        object.__setattr__(self, "_by_name", by_name)
        _check_fields_read_once(self.columns)
        if self.null_markers is not None:
            check_null_markers(self.null_markers, "null_markers")
        for key in self.primary_key:
            if key not in by_name:
                raise InvalidSchema(f"primary key column {key!r} is not a column")
            if by_name[key].nullable:
                raise InvalidSchema(f"primary key column {key!r} must be declared nullable: false")
        if len(set(self.primary_key)) != len(self.primary_key):
            raise InvalidSchema("primary key names a column twice")

    def column(self, name: str) -> Column | None:
        """The column called ``name``, or None."""
        return self._by_name.get(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        """The schema as in the API body."""
        out: dict[str, Any] = {
            "name": self.name,
            "primary_key": list(self.primary_key),
            "columns": [c.to_dict() for c in self.columns],
        }
        if self.null_markers is not None:
            out["null_markers"] = list(self.null_markers)
        return out

    @classmethod
    def from_dict(cls, body: dict[str, Any], **extra: Any) -> Dataset:
        """Build a dataset from the API body, raising InvalidSchema on any mistake."""
        try:
            columns = tuple(_column_from_dict(c) for c in body["columns"])
            primary_key = tuple(body.get("primary_key") or ())
            markers = body.get("null_markers")
            if markers is not None:
                markers = check_null_markers(markers, "null_markers")
            return cls(
                name=body["name"],
                columns=columns,
                primary_key=primary_key,
                null_markers=markers,
                **extra,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidSchema):
                raise
            raise InvalidSchema(f"dataset body is malformed: {exc}") from exc


def _column_from_dict(body: dict[str, Any]) -> Column:
    try:
        ctype = ColumnType(body["type"])
    except ValueError:
        allowed = ", ".join(t.value for t in ColumnType)
        raise InvalidSchema(
            f"column {body.get('name')!r}: unknown type {body['type']!r} (one of {allowed})"
        ) from None
    enum_values = body.get("enum")
    return Column(
        name=body["name"],
        type=ctype,
        nullable=bool(body.get("nullable", True)),
        max_length=body.get("max_length"),
        pattern=body.get("pattern"),
        min=body.get("min"),
        max=body.get("max"),
        enum=tuple(str(v) for v in enum_values) if enum_values is not None else None,
        precision=body.get("precision"),
        scale=body.get("scale"),
        input_field=body.get("from"),
        default=body.get("default"),
    )


def _check_fields_read_once(columns: tuple[Column, ...]) -> None:
    """Two columns may not read the same input field (which one would get it is a guess)."""
    readers: dict[str, str] = {}
    for column in columns:
        other = readers.setdefault(column.field, column.name)
        if other != column.name:
            raise InvalidSchema(
                f"columns {other!r} and {column.name!r} both read the input field "
                f"{column.field[:100]!r}",
                details={"column": column.name},
            )
