"""docs/data-rules.md as a reference model: what a field's text must become in each column type.

Written from the documentation, not from the code: where the docs say a value is accepted it
is ``Exact``; where they say it is refused, ``Reject``; where they leave room (surrounding
whitespace), ``Either``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable

from batchyard.domain.schema import ColumnType
from differential.expect import Either, Exact, Expectation, Reject
from differential.stored import load_json

_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)")
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
        return Exact(float(text.lower().replace("infinity", "inf")))
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
        if not _PLAIN_DECIMAL.fullmatch(text):
            return Reject("not plain decimal notation")
        value = decimal.Decimal(text)
        exponent = int(value.as_tuple().exponent)
        digits = len(value.as_tuple().digits)
        fraction = max(0, -exponent)
        whole = max(0, digits + exponent) if value else 0
        if fraction > scale and value != value.quantize(decimal.Decimal(1).scaleb(-scale)):
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
        return Exact(load_json(text))
    except ValueError:
        return Reject("not JSON")


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


def from_text(ctype: ColumnType, text: str | None) -> Expectation:
    """What a field's text (None: a missing value) must become in a nullable column."""
    if text is None or ctype == ColumnType.STRING:
        return Exact(text)
    stripped = text.strip()
    if not stripped:
        # Docs: an empty field is a missing value. Whitespace alone is not empty.
        return Exact(None) if not text else Reject("whitespace is not a value")
    expectation = _RULES[ctype](stripped)
    if stripped != text and isinstance(expectation, Exact):
        return Either.of(expectation.value)  # surrounding whitespace: the docs do not say
    return expectation
