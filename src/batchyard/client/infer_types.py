"""Which column type a sampled field's values fit, judged the way the import will judge them.

One rule for text, whatever the format: a CSV field, a JSON string and a Parquet string
holding ``2009-06-01`` are all a date. Only types the import accepts for *every* sampled value
are chosen, and never one that would change a value: ``00501`` keeps its leading zero as a
string, ``12.50`` is an exact decimal, not a float. Parquet's own types are kept as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from batchyard.client.infer_sample import JsonNumber

MAX_DECIMAL_PRECISION = 38
#: Precision of an inferred decimal when its sampled values need less: room for larger amounts.
DEFAULT_DECIMAL_PRECISION = 18
#: Texts that stand for a missing value in files written by R, pandas, spreadsheets and
#: databases. One of them is taken as a null marker only where it sits among values of
#: another type (``NA`` in a column of numbers), never because a text column holds it:
#: ``NA`` is also Namibia's country code.
NULL_MARKER_CANDIDATES = ("NA", "N/A", "n/a", "#N/A", "<NA>", "NULL", "null", "None", "NaN", "nan")

_INT64 = 2**63
_INTEGER = re.compile(r"[+-]?(\d+)")
#: A fixed-point amount with two decimals: what money looks like in a file.
_AMOUNT = re.compile(r"[+-]?(\d+)\.(\d\d)")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INFINITY = re.compile(r"[+-]?(inf|infinity)", re.IGNORECASE)
#: A number whose integer part starts with a zero and goes on: a code, not a quantity.
_LEADING_ZERO = re.compile(r"[+-]?0\d+(\.\d*)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no"})


@dataclass(frozen=True, slots=True)
class Guess:
    """A column type, and why it is not the obvious one when a user would want to know."""

    type: str
    precision: int | None = None
    scale: int | None = None
    note: str | None = None


def guess_texts(texts: Iterable[str]) -> Guess:
    """The narrowest type every text parses as, exactly, by the import's rules."""
    distinct = set(texts)
    if not distinct:
        return Guess("string")
    stripped = {text.strip() for text in distinct}
    if "" in stripped:  # whitespace only: the import refuses it for every type but string
        return Guess("string")
    return _numeric(stripped) or _other(stripped) or _string(stripped)


def _numeric(values: set[str]) -> Guess | None:
    if any(_LEADING_ZERO.fullmatch(value) for value in values):
        return None
    if all(_INTEGER.fullmatch(value) for value in values):
        if all(abs(int(value)) < _INT64 for value in values):
            return Guess("integer")
        return _decimal(values)  # too long for 64 bits: exact, or a string, never a float
    decimal = _decimal(values)
    if decimal is not None:
        return decimal
    if all(_is_float(value) for value in values):
        return Guess("float")
    return None


def _decimal(values: set[str]) -> Guess | None:
    """Amounts (``12.50``) and integers beyond 64 bits, as an exact decimal that holds them."""
    digits = 0
    scale = 0
    for value in values:
        amount = _AMOUNT.fullmatch(value)
        integer = _INTEGER.fullmatch(value)
        if amount is not None:
            digits, scale = max(digits, len(amount.group(1).lstrip("0"))), 2
        elif integer is not None:
            digits = max(digits, len(integer.group(1).lstrip("0")))
        else:
            return None
    if digits + scale > MAX_DECIMAL_PRECISION:
        return None
    precision = max(DEFAULT_DECIMAL_PRECISION, digits + scale)
    return Guess("decimal", precision=precision, scale=scale)


def _is_float(value: str) -> bool:
    if _INFINITY.fullmatch(value):
        return True
    if not _FLOAT.fullmatch(value):
        return False
    number = float(value)
    zero_digits = not value.lstrip("+-").split("e")[0].split("E")[0].strip("0.")
    # 1e400 would become infinity and 1e-400 zero: the import refuses both as not exact.
    return number not in (float("inf"), float("-inf")) and (number != 0 or zero_digits)


def _other(values: set[str]) -> Guess | None:
    if all(value.lower() in _BOOLEANS for value in values):
        return Guess("boolean")
    dates = [_is_date(value) for value in values]
    if all(dates):
        return Guess("date")
    if all(date or _is_timestamp(value) for date, value in zip(dates, values, strict=True)):
        return Guess("timestamp")
    if all(_UUID.fullmatch(value) for value in values):
        return Guess("uuid")
    return None


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_timestamp(value: str) -> bool:
    match = _TIMESTAMP.fullmatch(value)
    if match is None or not _is_date(match.group(1)):
        return False
    hour, minute, second = int(match.group(2)), int(match.group(3)), int(match.group(4) or 0)
    return hour < 24 and minute < 60 and second < 60


def _string(values: set[str]) -> Guess:
    coded = sorted(value for value in values if _LEADING_ZERO.fullmatch(value))
    if coded and all(_LEADING_ZERO.fullmatch(v) or _is_float(v) for v in values):
        return Guess(
            "string",
            note=f"kept as text: {coded[0]!r} has a leading zero that a number would drop",
        )
    return Guess("string")


def guess_json(values: Sequence[Any]) -> Guess:
    """A JSON Lines field: its strings by the text rule; mixed kinds widen to string."""
    present = [value for value in values if value is not None]
    if any(isinstance(value, dict | list) for value in present):
        return Guess("json")
    kinds = {_json_kind(value) for value in present}
    if kinds == {"boolean"}:
        return Guess("boolean")
    guess = guess_texts(_json_text(value) for value in present)
    if len(kinds) > 1 and guess.type == "string":
        shown = ", ".join(sorted(kinds))
        return Guess("string", note=f"holds JSON values of several kinds ({shown}): string")
    return guess


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, JsonNumber) else "string"


def _json_text(value: Any) -> str:
    """The text the import judges a JSON value by: a number's digits, ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def guess_arrow(kind: pa.DataType, values: Sequence[Any]) -> Guess:
    """A Parquet field: its own type where batchyard has one, strings by the text rule."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return guess_texts(value for value in values if value is not None)
    simple = _ARROW_KINDS.get(_arrow_family(kind))
    if simple is not None:
        return Guess(simple)
    if pa.types.is_decimal(kind):
        precision = min(int(kind.precision), MAX_DECIMAL_PRECISION)
        return Guess("decimal", precision=precision, scale=min(int(kind.scale), precision))
    if pa.types.is_fixed_size_binary(kind) and kind.byte_width == 16:
        return Guess("uuid")
    return Guess("string")


def _arrow_family(kind: pa.DataType) -> str:
    checks = (
        ("boolean", pa.types.is_boolean),
        ("integer", pa.types.is_integer),
        ("floating", pa.types.is_floating),
        ("date", pa.types.is_date),
        ("timestamp", pa.types.is_timestamp),
        ("nested", pa.types.is_nested),
    )
    return next((family for family, check in checks if check(kind)), "other")


_ARROW_KINDS = {
    "boolean": "boolean",
    "integer": "integer",
    "floating": "float",
    "date": "date",
    "timestamp": "timestamp",
    "nested": "json",
}
