"""Text to typed Arrow values, whole columns at a time: the exact (slow) path of each type.

validate_text tries one vectorized cast first and sends here only what that cast cannot take.
Each parser trims whitespace, picks out bad values with vectorized regex masks, and casts the
rest; values that still fail are found by bisection, O(k log n) casts for k bad values, never a
Python loop over the whole column.

Decisions (docs/data-rules.md has them all, with examples): a value is never silently changed.
Floats accept "inf", "infinity" (any case, signed) but refuse "nan" (SQLite cannot hold NaN, and
both targets must store the same values) and finite-looking numbers that float64 cannot hold, too
large ("1e400") or too small ("1e-400", which would become 0); -0 is stored as 0, as SQLite
does. Booleans accept true/false, t/f, 1/0, yes/no in any case. Integers refuse hex ("0x10").
Timestamps accept "YYYY-MM-DD[T| ]HH:MM[:SS[.ffffff]][Z|±HH[:MM]]" and a bare date (midnight);
naive values are UTC; more than 6 fractional digits is refused rather than truncated. Dates and
timestamps must fall in the years 1 to 9999 once in UTC. Surrounding whitespace is trimmed, but
an empty or whitespace-only text is not a value of any type but string: it is refused, never
taken for a missing value (only a CSV field left empty, a JSON null or a Parquet null is one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeAlias

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Column, ColumnType
from batchyard.pipeline.validate_json import unstorable_json

#: A pyarrow array of any type. The stubs type compute functions per concrete array class, which a
#: column's runtime type decides, so arrays here are Any to the type checker.
Arr: TypeAlias = Any
#: A parser: string values (trimmed, empty → null, in the slow path) → typed values + bad mask.
Parser = Callable[[Arr, pa.DataType], tuple[Arr, Arr]]

_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SPECIAL_FLOAT = r"(?i)^[+-]?(nan|inf|infinity)$"
#: A number whose digits are all zero: the only text that may parse to a float zero.
_ZERO = r"^[+-]?(0+\.?0*|\.0+)([eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
_OFFSET = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
_HEX = "[0-9a-f]"
_UUID_ANY = (
    rf"(?i)^\{{?({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|{_HEX}{{32}})\}}?$"
)
# Python values, made Arrow where used: converting any at import would bring pandas in
# (pipeline/arrow_runtime.py) for whoever imports the app.
TRUE_WORDS = ("true", "t", "1", "yes")
FALSE_WORDS = ("false", "f", "0", "no")
_TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
#: The instants every target stores: years 1 to 9999 in UTC (SQLite's text has four-digit years).
_FIRST_INSTANT = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_LAST_INSTANT = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)
_FIRST_DAY = dt.date(1, 1, 1)
_LAST_DAY = dt.date(9999, 12, 31)


def all_false(n: int) -> Arr:
    """An all-false mask of length ``n``."""
    return pc.is_valid(pa.nulls(n))


def mask(condition: Arr) -> Arr:
    """A boolean mask without nulls (null counts as false)."""
    return pc.fill_null(condition, False)


def matches(values: Arr, pattern: str) -> Arr:
    return mask(pc.match_substring_regex(values, pattern))


#: Failing pieces this short are cast value by value: halving them costs about two casts per
#: value when most of them fail (as among the values a column's plain form leaves out).
_ONE_BY_ONE = 16


def cast_each(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    """Cast ``values``; those that cannot be cast become null and are flagged in the mask."""
    failed: list[int] = []
    parts = _cast_parts(values, target, 0, failed)
    typed = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
    if not failed:
        return typed, all_false(len(values))
    arange: Any = getattr(pa, "arange")  # noqa: B009
    bad = pc.is_in(arange(0, len(values)), value_set=pa.array(failed, pa.int64()))
    return typed, bad


def _cast_parts(values: Arr, target: Any, offset: int, failed: list[int]) -> list[Arr]:
    try:
        return [pc.cast(values, target)]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            failed.append(offset)
            return [pa.nulls(1, target)]
    if len(values) <= _ONE_BY_ONE:
        return [
            part
            for at in range(len(values))
            for part in _cast_parts(values.slice(at, 1), target, offset + at, failed)
        ]
    half = len(values) // 2
    return _cast_parts(values.slice(0, half), target, offset, failed) + _cast_parts(
        values.slice(half), target, offset + half, failed
    )


def _only(values: Arr, ok: Arr) -> Arr:
    """``values`` where ``ok``, else null."""
    return pc.if_else(ok, values, pa.nulls(len(values), values.type))


def _checked_cast(values: Arr, target: pa.DataType, syntax: Arr) -> tuple[Arr, Arr]:
    """Cast the values that pass ``syntax``; flag the non-null ones that fail either step."""
    typed, failed = cast_each(_only(values, syntax), target)
    bad = pc.or_(pc.and_(pc.is_valid(values), pc.invert(syntax)), failed)
    return typed, bad


def parse_integer(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    syntax = matches(values, r"^[+-]?[0-9]+$")
    unsigned = pc.replace_substring_regex(values, r"^\+", "")
    return _checked_cast(unsigned, target, syntax)


def parse_float(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    syntax = pc.or_(matches(values, _NUMBER), matches(values, _SPECIAL_FLOAT))
    typed, bad = _checked_cast(values, target, syntax)
    return typed, pc.or_(bad, overflowed(values, typed))


def overflowed(values: Arr, typed: Arr) -> Arr:
    """Numbers float64 cannot hold: infinities not written as such (``1e400``) and non-zero
    numbers that became zero (``1e-400``)."""
    infinite = mask(pc.is_inf(typed))
    zero = mask(pc.equal(typed, pa.scalar(0.0)))
    # The texts are looked at only when there is an infinity or a zero to explain.
    if pc.any(infinite).as_py():
        infinite = pc.and_(infinite, pc.invert(matches(values, _SPECIAL_FLOAT)))
    if pc.any(zero).as_py():
        zero = pc.and_(zero, pc.invert(matches(values, _ZERO)))
    return pc.or_(infinite, zero)


def parse_decimal(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    return _checked_cast(values, target, matches(values, _NUMBER))


def parse_boolean(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    lower = pc.utf8_lower(values)
    truthy = pc.is_in(lower, value_set=pa.array(TRUE_WORDS))
    known = pc.or_(truthy, pc.is_in(lower, value_set=pa.array(FALSE_WORDS)))
    bad = pc.and_(pc.is_valid(values), pc.invert(known))
    return _only(truthy, known), bad


def parse_date(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    return _checked_cast(values, target, matches(values, _DATE))


def parse_timestamp(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    upper = pc.utf8_upper(values)
    syntax = matches(upper, _TIMESTAMP)
    text = pc.replace_substring_regex(upper, r"^([0-9-]{10})$", r"\1T00:00:00")
    text = pc.replace_substring_regex(text, r"^(.{10}[T ][0-9]{2}:[0-9]{2})($|Z|[+-])", r"\1:00\2")
    text = pc.replace_substring_regex(text, r"([+-][0-9]{2})$", r"\1:00")
    aware = matches(text, _OFFSET)
    with_zone, bad_zone = _checked_cast(text, _TIMESTAMP_UTC, pc.and_(syntax, aware))
    naive, bad_naive = _checked_cast(text, pa.timestamp("us"), pc.and_(syntax, pc.invert(aware)))
    typed = pc.if_else(aware, with_zone, pc.cast(naive, _TIMESTAMP_UTC))
    either = pc.or_(pc.and_(aware, bad_zone), pc.and_(pc.invert(aware), bad_naive))
    return typed, either


def parse_uuid(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    """Canonical lower-case 8-4-4-4-12 text, braces and hyphens optional on input."""
    braced = pc.equal(pc.starts_with(values, "{"), pc.ends_with(values, "}"))
    ok = pc.and_(matches(values, _UUID_ANY), mask(braced))
    digits = values
    for char in "{}-":
        digits = pc.replace_substring(digits, char, "")
    digits = pc.utf8_lower(digits)
    pieces = [pc.utf8_slice_codeunits(digits, a, b) for a, b in _UUID_GROUPS]
    canonical = pc.binary_join_element_wise(*pieces, "-")
    return _only(canonical, ok), pc.and_(pc.is_valid(values), pc.invert(ok))


_UUID_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def parse_json(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    """Valid JSON texts are kept as given; checked in one decode when possible."""
    if _all_json(values):
        bad = unstorable_json(values)
        return _only(values, pc.invert(bad)), bad
    flags = [text is not None and json_error(text) is not None for text in values.to_pylist()]
    bad = pc.or_(pa.array(flags, pa.bool_()), unstorable_json(values))
    return _only(values, pc.invert(bad)), bad


def _all_json(values: Arr) -> bool:
    """True if every value is one JSON text: all decoded as one array, each spanning its text.

    Checking each element's span against its value's length rules out values that only parse
    once joined (``[1`` followed by ``2]``).
    """
    present = pc.utf8_trim(values.drop_null(), " \t\r\n")
    if not len(present):
        return True
    joined = "[" + ",".join(present.to_pylist()) + "]"
    try:
        items = _RAW_LIST.decode(joined.encode("utf-8"))
    except msgspec.DecodeError:
        return False
    if len(items) != len(present):
        return False
    lengths = pa.array([len(item) for item in items], pa.int64())
    return bool(pc.all(pc.equal(lengths, pc.cast(pc.binary_length(present), pa.int64()))).as_py())


def json_error(text: str) -> str | None:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        return str(exc)
    return None


def parse_string(values: Arr, target: pa.DataType) -> tuple[Arr, Arr]:
    """Any text but one with a NUL character, which PostgreSQL cannot store."""
    if not _holds_nul(values):
        return values, all_false(len(values))
    nul = mask(pc.match_substring(values, "\x00"))
    return _only(values, pc.invert(nul)), nul


def characters(values: Arr) -> bytes | None:
    """The characters behind a string array's values, copied as one ``bytes`` (a null's too,
    where it has any); None for an array of another type.

    A search of this block with ``in`` (memchr) answers "does any value hold this byte" about
    forty times faster than Arrow's per-value substring search over the same values.
    """
    if not pa.types.is_string(values.type):
        return None
    if not len(values):
        return b""
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, 4 * values.offset)
    start, stop = int(offsets[0]), int(offsets[-1])
    data = values.buffers()[2]
    if data is None or stop == start:
        return b""
    block: bytes = data.slice(start, stop - start).to_pybytes()
    return block


def _holds_nul(values: Arr) -> bool:
    """Whether the characters behind a string array hold a NUL byte, or cannot be looked at.

    One count of non-zero bytes over the whole block (numpy, no copy), about thirty times
    cheaper than Arrow's per-value substring search; only a block holding a NUL pays for that.
    """
    if not pa.types.is_string(values.type) or not len(values):
        return not pa.types.is_string(values.type)
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, 4 * values.offset)
    start, size = int(offsets[0]), int(offsets[-1]) - int(offsets[0])
    data = values.buffers()[2]
    if data is None or not size:
        return False
    return bool(np.count_nonzero(np.frombuffer(data, np.uint8, size, start)) != size)


PARSERS: dict[ColumnType, Parser] = {
    ColumnType.STRING: parse_string,
    ColumnType.INTEGER: parse_integer,
    ColumnType.FLOAT: parse_float,
    ColumnType.DECIMAL: parse_decimal,
    ColumnType.BOOLEAN: parse_boolean,
    ColumnType.DATE: parse_date,
    ColumnType.TIMESTAMP: parse_timestamp,
    ColumnType.UUID: parse_uuid,
    ColumnType.JSON: parse_json,
}


def refuse_unstorable(typed: Arr, bad: Arr, column: Column) -> tuple[Arr, Arr]:
    """Flag the values that parse but that not every target can store exactly.

    NaN (SQLite stores it as NULL), dates and timestamps outside the years 1 to 9999 in UTC
    (SQLite's text has four-digit years); -0.0 becomes 0.0, as SQLite stores it.
    """
    if column.type == ColumnType.FLOAT:
        unstorable = mask(pc.is_nan(typed))
        typed = pc.add(typed, pa.scalar(0.0))
    elif column.type == ColumnType.TIMESTAMP:
        unstorable = outside(
            typed,
            pa.scalar(_FIRST_INSTANT, _TIMESTAMP_UTC),
            pa.scalar(_LAST_INSTANT, _TIMESTAMP_UTC),
        )
    elif column.type == ColumnType.DATE:
        unstorable = outside(
            typed, pa.scalar(_FIRST_DAY, pa.date32()), pa.scalar(_LAST_DAY, pa.date32())
        )
    else:
        return typed, bad
    if not pc.any(unstorable).as_py():
        return typed, bad
    return _only(typed, pc.invert(unstorable)), pc.or_(bad, unstorable)


def outside(typed: Arr, first: pa.Scalar[Any], last: pa.Scalar[Any]) -> Arr:
    """Values before ``first`` or after ``last``."""
    return mask(pc.or_(pc.less(typed, first), pc.greater(typed, last)))
