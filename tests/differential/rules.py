"""docs/data-rules.md as a reference model: what a field's text must become in each column type.

Written from the documentation, not from the code: where the docs say a value is accepted it
is ``Exact``; where they say it is refused, ``Reject``; where they leave room (a boolean sent
as a JSON number, say), ``Either``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

from batchyard.domain.schema import ColumnType
from differential.expect import Either, Exact, Expectation, Reject
from differential.stored import load_json

_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SPECIAL = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)
_TRUE = {"true", "t", "1", "yes"}
_FALSE = {"false", "f", "0", "no"}
_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_UUID = re.compile(r"\{?([0-9a-f-]{32,36})\}?", re.I)
_UUID_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _integer(text: str) -> Expectation:
    if not _INTEGER.fullmatch(text):
        return Reject("not an integer")
    value = int(text)
    return Exact(value) if _INT64[0] <= value <= _INT64[1] else Reject("out of range")


def _float(text: str) -> Expectation:
    if _SPECIAL.fullmatch(text):
        value = float(text.lower().replace("infinity", "inf"))
        return Reject("NaN cannot be stored on SQLite") if math.isnan(value) else Exact(value)
    if not _NUMBER.fullmatch(text):
        return Reject("not a number")
    value = float(text)
    if math.isinf(value):
        return Reject("out of range for float64")
    if value == 0.0 and any(c in "123456789" for c in text.split("e")[0].split("E")[0]):
        return Reject("underflows to zero")
    return Exact(value)


def decimal_rule(scale: int, precision: int) -> Callable[[str], Expectation]:
    def rule(text: str) -> Expectation:
        if not _NUMBER.fullmatch(text):
            return Reject("not decimal or exponent notation")
        value = decimal.Decimal(text)
        if not value:
            return Exact(value)
        normal = value.normalize()
        exponent = int(normal.as_tuple().exponent)
        whole = len(normal.as_tuple().digits) + exponent
        if -exponent > scale:
            return Reject("more fractional digits than the scale")
        if whole > precision - scale:
            return Reject("too many digits")
        return Exact(value)

    return rule


def _boolean(text: str) -> Expectation:
    lower = text.lower()
    if lower in _TRUE:
        return Exact(True)
    return Exact(False) if lower in _FALSE else Reject("not a boolean")


def _date(text: str) -> Expectation:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return Reject("not YYYY-MM-DD")
    try:
        return Exact(dt.date.fromisoformat(text))
    except ValueError:
        return Reject("no such day")


def _timestamp(text: str) -> Expectation:
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return Reject("not an ISO 8601 timestamp")
    day, hour, minute, second, fraction, zone = match.groups()
    try:
        micros = (fraction or "").ljust(6, "0")
        moment = dt.datetime.fromisoformat(
            f"{day}T{hour or '00'}:{minute or '00'}:{second or '00'}.{micros}"
        )
        offset = _offset(zone)
        return (
            Exact((moment - offset).replace(tzinfo=dt.UTC))
            if _storable(moment - offset)
            else (Reject("outside years 1-9999 in UTC"))
        )
    except (ValueError, OverflowError):
        return Reject("no such moment")


def _storable(moment: dt.datetime) -> bool:
    return 1 <= moment.year <= 9999


def _offset(zone: str | None) -> dt.timedelta:
    if zone is None or zone.upper() == "Z":
        return dt.timedelta(0)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if minutes >= 60:
        raise ValueError(zone)
    return sign * dt.timedelta(hours=hours, minutes=minutes)


def _uuid(text: str) -> Expectation:
    match = _UUID.fullmatch(text)
    braced = text.startswith("{") == text.endswith("}")
    if not match or not braced or len(match.group(1).replace("-", "")) != 32:
        return Reject("not a uuid")
    hyphens = match.group(1).count("-")
    if hyphens and not _UUID_CANONICAL.fullmatch(match.group(1)):
        return Either.of(str(uuid.UUID(match.group(1).replace("-", ""))))
    return Exact(str(uuid.UUID(match.group(1).replace("-", ""))))


def _json(text: str) -> Expectation:
    try:
        value = load_json(text)
    except ValueError:
        return Reject("not JSON")
    return Reject("jsonb cannot hold it") if json_unstorable(value) else Exact(value)


def json_unstorable(value: Any) -> bool:
    """Whether a JSON value holds a NUL or a lone surrogate, which PostgreSQL's jsonb refuses."""
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(json_unstorable(k) or json_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(json_unstorable(v) for v in value)
    return False


_RULES: dict[ColumnType, Callable[[str], Expectation]] = {
    ColumnType.STRING: Exact,
    ColumnType.INTEGER: _integer,
    ColumnType.FLOAT: _float,
    ColumnType.DECIMAL: decimal_rule(0, 38),
    ColumnType.BOOLEAN: _boolean,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: _timestamp,
    ColumnType.UUID: _uuid,
    ColumnType.JSON: _json,
}


def from_text(
    ctype: ColumnType, text: str | None, rule: Callable[[str], Expectation] | None = None
) -> Expectation:
    """What a field's text (None: a missing value) must become in a nullable column.

    Docs: only an unquoted empty CSV field (None here) is missing; an empty or whitespace-only
    text is not a number, date, …; whitespace around other values is trimmed. ``rule`` stands
    for the type's own (a decimal's scale and precision).
    """
    if text is None:
        return Exact(None)
    if ctype == ColumnType.STRING:
        return Reject("NUL cannot be stored on PostgreSQL") if "\x00" in text else Exact(text)
    stripped = text.strip()
    if not stripped:
        return Reject("an empty text is not a value")
    return (rule or _RULES[ctype])(stripped)
