"""Which column type a sampled field's values fit, judged the way the import will judge them.

One rule for text, whatever the format: a CSV field, a JSON string and a Parquet string
holding ``2009-06-01`` are all a date. Only types the import accepts for *every* sampled value
are chosen, and never one that would change a value: ``00501`` keeps its leading zero as a
string, ``12.50`` is an exact decimal, not a float. Parquet's own types are kept as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.client.infer_sample import JsonNumber

MAX_DECIMAL_PRECISION = 38
#: Precision of an inferred decimal when its sampled values need less: room for larger amounts.
DEFAULT_DECIMAL_PRECISION = 18
#: Texts that stand for a missing value in files written by R, pandas, spreadsheets and
#: databases. One of them is taken as a null marker only where it sits among values of
#: another type (``NA`` in a column of numbers), never because a text column holds it:
#: ``NA`` is also Namibia's country code.
NULL_MARKER_CANDIDATES = ("NA", "N/A", "n/a", "#N/A", "<NA>", "NULL", "null", "None", "NaN", "nan")

#: Digits an integer may have before it needs a closer look: every 18-digit number fits 64 bits.
_SAFE_DIGITS = 18
_INT64 = 2**63
#: Patterns over whole (trimmed) values, run by pyarrow (RE2) on a column's distinct texts.
_INTEGER = r"^[+-]?[0-9]+$"
#: A fixed-point amount with two decimals: what money looks like in a file.
_AMOUNT = r"^[+-]?[0-9]+\.[0-9][0-9]$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INFINITY = r"(?i)^[+-]?(inf|infinity)$"
#: A number whose digits are all zero: the only text that may read as a float zero.
_ZERO = r"^[+-]?(0+\.?0*|\.0+)([eE][+-]?[0-9]+)?$"
#: A number whose integer part starts with a zero and goes on: a code, not a quantity.
_LEADING_ZERO = r"^[+-]?0[0-9]+(\.[0-9]*)?$"
_DATE_OR_TIMESTAMP = (
    r"(?i)^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
_TIME = re.compile(r"[T ](\d{2}):(\d{2})(?::(\d{2}))?", re.IGNORECASE)
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_BOOLEANS = ("true", "false", "t", "f", "yes", "no")
#: A pyarrow array; compute functions are typed per array class in the stubs, so it is Any here.
Arr: TypeAlias = Any


@dataclass(frozen=True, slots=True)
class Guess:
    """A column type, and why it is not the obvious one when a user would want to know."""

    type: str
    precision: int | None = None
    scale: int | None = None
    note: str | None = None


def guess_texts(texts: Sequence[str | None]) -> Guess:
    """The narrowest type every text parses as, exactly, by the import's rules (None: missing)."""
    present: Arr = pc.drop_null(pa.array(texts, pa.string()))
    if not len(present):
        return Guess("string")
    values: Arr = pc.unique(pc.utf8_trim_whitespace(present))
    if _any(pc.equal(values, pa.scalar(""))):  # whitespace only: refused for all but string
        return Guess("string")
    return _numeric(values) or _other(values) or _string(values)


def _matches(values: Arr, pattern: str) -> Arr:
    return pc.match_substring_regex(values, pattern)


def _any(mask: Arr) -> bool:
    return bool(pc.any(mask).as_py())


def _all(mask: Arr) -> bool:
    return bool(pc.all(mask).as_py())


def _numeric(values: Arr) -> Guess | None:
    if _any(_matches(values, _LEADING_ZERO)):
        return None
    if _all(_matches(values, _INTEGER)):
        if _integer_digits(values) <= _SAFE_DIGITS or _fit_64_bits(values):
            return Guess("integer")
        return _decimal(values)  # too long for 64 bits: exact, or a string, never a float
    decimal = _decimal(values)
    if decimal is not None:
        return decimal
    return Guess("float") if _floats(values) else None


def _integer_digits(values: Arr) -> int:
    """The most digits before the point, leading zeros and sign left out."""
    whole = pc.replace_substring_regex(values, r"^[+-]?0*([0-9]*).*$", r"\1")
    return int(pc.max(pc.utf8_length(whole)).as_py() or 0)


def _fit_64_bits(values: Arr) -> bool:
    lengths: Arr = pc.utf8_length(values)
    longer: Arr = pc.greater(lengths, pa.scalar(_SAFE_DIGITS))
    long = pc.filter(values, longer)
    return all(abs(int(value)) < _INT64 for value in long.to_pylist())


def _decimal(values: Arr) -> Guess | None:
    """Amounts (``12.50``) and integers beyond 64 bits, as an exact decimal that holds them."""
    amounts = _matches(values, _AMOUNT)
    if not _all(pc.or_(amounts, _matches(values, _INTEGER))):
        return None
    scale = 2 if _any(amounts) else 0
    digits = _integer_digits(values)
    if digits + scale > MAX_DECIMAL_PRECISION:
        return None
    precision = max(DEFAULT_DECIMAL_PRECISION, digits + scale)
    return Guess("decimal", precision=precision, scale=scale)


def _floats(values: Arr) -> bool:
    """Numbers a 64-bit float holds: 1e400 (infinity) and 1e-400 (zero) are refused at import."""
    infinite: Arr = _matches(values, _INFINITY)
    if not _all(pc.or_(infinite, _matches(values, _NUMBER))):
        return False
    keep: Arr = pc.invert(infinite)
    finite: Arr = pc.filter(values, keep)
    numbers: Arr = pc.cast(finite, pa.float64())
    zero = pc.and_(pc.equal(numbers, pa.scalar(0.0)), pc.invert(_matches(finite, _ZERO)))
    return not _any(pc.is_inf(numbers)) and not _any(zero)


def _other(values: Arr) -> Guess | None:
    if _all(pc.is_in(pc.utf8_lower(values), value_set=pa.array(_BOOLEANS))):
        return Guess("boolean")
    if _all(_matches(values, _DATE_OR_TIMESTAMP)):
        return _moment(values.to_pylist())
    if _all(_matches(values, _UUID)):
        return Guess("uuid")
    return None


def _moment(texts: list[str]) -> Guess | None:
    """Dates, or dates and timestamps, when every one is a real day and time of day."""
    if not all(_is_day(text[:10]) and _is_time(text[10:]) for text in texts):
        return None
    return Guess("timestamp") if any(len(text) > 10 for text in texts) else Guess("date")


def _is_day(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_time(rest: str) -> bool:
    """A valid time of day (``T10:00:00Z``), or nothing (a bare date)."""
    match = _TIME.match(rest)
    if match is None:
        return not rest
    hour, minute, second = (int(part or 0) for part in match.groups())
    return hour < 24 and minute < 60 and second < 60


def _string(values: Arr) -> Guess:
    coded = pc.filter(values, _matches(values, _LEADING_ZERO))
    numeric = pc.or_(_matches(values, _LEADING_ZERO), _matches(values, _NUMBER))
    if len(coded) and _all(numeric):
        first = min(coded.to_pylist())
        return Guess(
            "string", note=f"kept as text: {first!r} has a leading zero that a number would drop"
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
    guess = guess_texts([_json_text(value) for value in present])
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
        return guess_texts(values)
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
