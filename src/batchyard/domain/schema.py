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

    def __post_init__(self) -> None:
        check_identifier(self.name, "column")
        _check_column(self)

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
        return out


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
        return {
            "name": self.name,
            "primary_key": list(self.primary_key),
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any], **extra: Any) -> Dataset:
        """Build a dataset from the API body, raising InvalidSchema on any mistake."""
        try:
            columns = tuple(_column_from_dict(c) for c in body["columns"])
            primary_key = tuple(body.get("primary_key") or ())
            return cls(name=body["name"], columns=columns, primary_key=primary_key, **extra)
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
    )
