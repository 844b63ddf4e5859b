"""Stored values read back as plain Python values, the same whichever target holds them.

SQLite keeps decimals, dates, timestamps and JSON as text and booleans as integers; PostgreSQL
has its own types. Both are brought to one form (Decimal, date, aware UTC datetime, parsed
JSON, …), so a stored value compares with the reference's, and SQLite's with PostgreSQL's.
A text that does not read back as its type is kept as ``Unreadable`` and compares unequal.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchyard.domain.schema import ColumnType, Dataset


@dataclass(frozen=True)
class Unreadable:
    """A stored value that is not a value of its column's type."""

    raw: Any


def _decimal(value: Any) -> decimal.Decimal:
    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        if not value.endswith("Z"):
            raise ValueError(value)
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError(value)
    return value.astimezone(dt.UTC)


def load_json(text: str | bytes) -> Any:
    """JSON with its numbers exact (1e400 is not infinity), as both targets keep them."""
    return json.loads(text, parse_float=decimal.Decimal)


def _json(value: Any) -> Any:
    return load_json(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    raise ValueError(value)


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(value)


def _uuid(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _exact(kind: type) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(value)
        return value

    return read


_READERS: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.STRING: _exact(str),
    ColumnType.INTEGER: _exact(int),
    ColumnType.FLOAT: _float,
    ColumnType.DECIMAL: _decimal,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: _timestamp,
    ColumnType.UUID: _uuid,
    ColumnType.JSON: _json,
}


def normalize(row: dict[str, Any], dataset: Dataset, backend: str) -> dict[str, Any]:
    """``row`` as read from ``backend`` with each value in its type's one Python form."""
    out: dict[str, Any] = {}
    for column in dataset.columns:
        value = row[column.name]
        if value is None:
            out[column.name] = None
            continue
        if column.type == ColumnType.JSON and backend == "postgresql":
            out[column.name] = value  # psycopg has read the jsonb (with load_json)
            continue
        try:
            out[column.name] = _READERS[column.type](value)
        except (ValueError, TypeError, ArithmeticError):
            out[column.name] = Unreadable(value)
    return out
