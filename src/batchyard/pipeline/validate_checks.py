"""One column's checks: its type, its nullability, its constraints, each as a vectorized mask.

A check yields a Failure: which records fail (a boolean mask) and how to say why for the failing
values. Messages are only built for failing values, so their cost is proportional to the bad
records; where a message needs Arrow's judgement of the value (dates, timestamps, floats), the
failing values are parsed together, not with one Arrow call each.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.errors import InvalidSchema
from batchyard.domain.records import RecordErrorCode as Code
from batchyard.domain.schema import MAX_DECIMAL_PRECISION, Column, ColumnType
from batchyard.pipeline.arrow_types import arrow_type
from batchyard.pipeline.formats_common import to_json
from batchyard.pipeline.patterns import anchored
from batchyard.pipeline.validate_text import FailedCasts, parse_text
from batchyard.pipeline.validate_types import (
    PARSERS,
    Arr,
    all_false,
    cast_each,
    json_error,
    mask,
    overflowed,
    refuse_unstorable,
)

_SHOWN = 100


#: Why each of a list of failing values fails, in order.
Explain = Callable[[list[Any]], list[str]]


@dataclass(frozen=True, slots=True)
class Failure:
    """Records failing one check: ``mask`` (no nulls), their code, and why they fail."""

    mask: Arr
    code: Code
    explain: Explain

    def reason(self, value: Any) -> str:
        """Why ``value`` fails this check."""
        return self.explain([value])[0]


def each(reason: Callable[[Any], str]) -> Explain:
    """An Explain from a reason for one value (for reasons that cost no Arrow call)."""
    return lambda values: [reason(value) for value in values]


def show(value: Any) -> str:
    """A value as quoted in a message, cut to about 100 characters."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def check_column(
    values: Arr | None, column: Column, length: int, failed: FailedCasts | None = None
) -> tuple[Arr, list[Failure]]:
    """The column typed as ``arrow_type(column)``, and every way its values fail, in order.

    ``failed``: the validation's columns whose whole cast failed on its last chunk.
    """
    target: Any = arrow_type(column)
    if values is None:
        typed: Arr = pa.nulls(length, target)
        return typed, [_missing(typed, column)] if not column.nullable else []
    typed, bad = convert(values, column, failed)
    failures = [Failure(bad, _TYPE_CODES[column.type], _type_reason(column))]
    failures.extend(_constraints(typed, column))
    named = [_named(failure, column.name) for failure in failures]
    # Bad values are null in ``typed`` too, but their type failure comes first.
    return typed, named if column.nullable else [*named[:1], _missing(typed, column), *named[1:]]


def _named(failure: Failure, name: str) -> Failure:
    explain = failure.explain
    return Failure(
        failure.mask,
        failure.code,
        lambda values: [f"column {name!r}: {reason}" for reason in explain(values)],
    )


def convert(values: Arr, column: Column, failed: FailedCasts | None = None) -> tuple[Arr, Arr]:
    """Typed values and the mask of values invalid for the type, whatever the input type."""
    if pa.types.is_dictionary(values.type):
        values = pc.cast(values, values.type.value_type)
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = pc.cast(values, pa.string())
    if pa.types.is_string(values.type):
        return parse_text(values, column, failed)
    return _convert_typed(values, column)


def _convert_typed(values: Arr, column: Column) -> tuple[Arr, Arr]:
    """Parquet inputs: a safe cast from a type of the same kind, else the values' text.

    Only the same kind is cast (integers and decimals to integer or decimal, numbers to float,
    dates and timestamps to timestamp, dates to date), so that Parquet takes what CSV and JSON
    Lines take: an int64 in a timestamp column is not read as microseconds since an epoch, a
    boolean is not an integer, a float (even 1.0) is not an integer.
    """
    if isinstance(values.type, pa.ExtensionType):  # e.g. arrow.uuid: its bytes
        values = values.storage
    if pa.types.is_nested(values.type):
        return _convert_nested(values, column)
    if _is_bytes(values.type):
        return _convert_bytes(values, column)
    if pa.types.is_timestamp(values.type) and values.type.tz is None:
        values = values.cast(pa.timestamp(values.type.unit, tz="UTC"))  # naive means UTC
    kinds = _SAME_KIND.get(column.type, ())
    if column.type == ColumnType.TIMESTAMP and pa.types.is_timestamp(values.type):
        return _microseconds(values, column)
    if any(kind(values.type) for kind in kinds):
        typed = _safe_cast(values, column)
        if typed is not None:
            return refuse_unstorable(typed, all_false(len(values)), column)
    elif column.type == ColumnType.INTEGER and pa.types.is_floating(values.type):
        return _all_refused(values, column)
    try:
        text: Arr = pc.cast(values, pa.string())
    except pa.ArrowNotImplementedError:  # a type Arrow cannot write as text: its JSON
        text = pa.array([None if v is None else to_json(v) for v in values.to_pylist()])
    return parse_text(text, column)


def _convert_bytes(values: Arr, column: Column) -> tuple[Arr, Arr]:
    """16 bytes into a uuid column are the UUID (Parquet's UUID type); other bytes are text."""
    if column.type == ColumnType.UUID and values.type == pa.binary(16):
        texts = [None if b is None else str(uuid.UUID(bytes=b)) for b in values.to_pylist()]
        return pa.array(texts, pa.string()), all_false(len(values))
    try:
        return parse_text(pc.cast(values, pa.string()), column)
    except pa.ArrowInvalid:  # bytes that are not UTF-8 text
        return _all_refused(values, column)


def _is_bytes(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(dtype)
        or pa.types.is_large_binary(dtype)
        or pa.types.is_fixed_size_binary(dtype)
        or pa.types.is_binary_view(dtype)
    )


def _microseconds(values: Arr, column: Column) -> tuple[Arr, Arr]:
    """Timestamps of any unit in microseconds; those with a finer part are refused, never
    truncated (each alone: the others are kept)."""
    utc = pa.timestamp("us", tz="UTC")
    try:
        typed: Arr = pc.cast(values, utc)
        return refuse_unstorable(typed, all_false(len(values)), column)
    except pa.ArrowInvalid:
        typed = pc.cast(values, utc, safe=False)
    lost = mask(pc.not_equal(pc.cast(typed, values.type, safe=False), values))
    return refuse_unstorable(pc.if_else(lost, pa.nulls(len(values), utc), typed), lost, column)


def _convert_nested(values: Arr, column: Column) -> tuple[Arr, Arr]:
    """Lists and structs: JSON text for a json column, refused by any other."""
    if column.type != ColumnType.JSON:
        return _all_refused(values, column)
    texts = [None if v is None else to_json(v) for v in values.to_pylist()]
    return pa.array(texts, pa.string()), all_false(len(values))


def _all_refused(values: Arr, column: Column) -> tuple[Arr, Arr]:
    target: Any = arrow_type(column)
    typed: Arr = pa.nulls(len(values), target)
    return typed, pc.is_valid(values)


def _safe_cast(values: Arr, column: Column) -> Arr | None:
    """The values cast to the column's type, or None if some would change (or overflow)."""
    try:
        typed: Arr = pc.cast(values, arrow_type(column))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if column.type == ColumnType.FLOAT and pc.any(pc.is_inf(typed)).as_py():
        return None  # decimals too large for float64: the text path says which
    return typed


_NUMBER_KINDS = (pa.types.is_integer, pa.types.is_decimal)
#: Which Parquet types a column casts from; others are read as text.
_SAME_KIND = {
    ColumnType.INTEGER: (pa.types.is_integer,),
    ColumnType.DECIMAL: _NUMBER_KINDS,
    ColumnType.FLOAT: (*_NUMBER_KINDS, pa.types.is_floating),
    ColumnType.DATE: (pa.types.is_date,),
    ColumnType.TIMESTAMP: (pa.types.is_date, pa.types.is_timestamp),
}


_TYPE_CODES = {
    ColumnType.STRING: Code.INVALID_STRING,
    ColumnType.INTEGER: Code.INVALID_INTEGER,
    ColumnType.FLOAT: Code.INVALID_FLOAT,
    ColumnType.DECIMAL: Code.INVALID_DECIMAL,
    ColumnType.BOOLEAN: Code.INVALID_BOOLEAN,
    ColumnType.DATE: Code.INVALID_DATE,
    ColumnType.TIMESTAMP: Code.INVALID_TIMESTAMP,
    ColumnType.UUID: Code.INVALID_UUID,
    ColumnType.JSON: Code.INVALID_JSON,
}

_TYPE_REASONS = {
    ColumnType.STRING: "is not text every target can store (an object, a list, or a NUL character)",
    ColumnType.BOOLEAN: "is not a boolean (true/false, t/f, 1/0, yes/no)",
    ColumnType.DATE: "is not a date (YYYY-MM-DD)",
    ColumnType.TIMESTAMP: "is not an ISO 8601 timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM])",
    ColumnType.UUID: "is not a UUID (32 hex digits)",
}
_YEARS = "is outside the years 1 to 9999 (in UTC), which not every target can store"


def _type_reason(column: Column) -> Explain:
    if column.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
        return lambda values: _calendar_reasons(values, column)
    if column.type == ColumnType.INTEGER:
        return each(_integer_reason)
    if column.type == ColumnType.FLOAT:
        return _float_reasons
    if column.type == ColumnType.DECIMAL:
        return each(lambda value: decimal_reason(value, column))
    if column.type == ColumnType.JSON:
        return each(lambda value: f"{show(value)} is not valid JSON ({json_error(str(value))})")
    reason = _TYPE_REASONS.get(column.type, "is not valid")
    return each(lambda value: f"{show(value)} {reason}")


def _integer_reason(value: Any) -> str:
    if re.fullmatch(r"\s*[+-]?[0-9]+\s*", str(value)):
        return f"{show(value)} is out of range for a 64-bit integer"
    return f"{show(value)} is not an integer"


#: The years whose values may parse yet fall outside the years 1 to 9999 in UTC: year 0, and
#: years 1 and 9999 moved across the edge by a zone offset (at most a few days).
_EDGE_YEAR = re.compile(r"(0000|0001|9999)-")


def _calendar_reasons(values: list[Any], column: Column) -> list[str]:
    """Out of the years 1 to 9999, or not a date/timestamp at all; the texts parsed together.

    Only texts starting with an edge year are parsed: a failing value of any other year (every
    grammar starts with four digits) either does not parse or lies inside the years, so it
    fails for being no date/timestamp, and a failed parse costs a raised Arrow error each.
    """
    texts = [str(value).strip() for value in values]
    edge = [at for at, text in enumerate(texts) if _EDGE_YEAR.match(text)]
    parsed = [False] * len(texts)
    if edge:
        candidates = pa.array([texts[at] for at in edge], pa.string())
        typed, bad = PARSERS[column.type](candidates, arrow_type(column))
        ok: Arr = pc.and_(pc.is_valid(typed), pc.invert(mask(bad)))
        for at, flag in zip(edge, ok.to_pylist(), strict=True):
            parsed[at] = flag
    return [
        _calendar_reason(value, text, flag, column)
        for value, text, flag in zip(values, texts, parsed, strict=True)
    ]


def _calendar_reason(value: Any, text: str, parsed: bool, column: Column) -> str:
    """Why ``value`` (``text`` once trimmed, which ``parsed`` or not) is no date/timestamp."""
    beyond = re.match(r"^[+-]?[0-9]{5,}-", text) or re.fullmatch(
        r"-?[0-9]+ (?:s|ms|us) since the epoch", text
    )
    if beyond or parsed:
        return f"{show(value)} {_YEARS}"
    if re.search(r":[0-9]{2}\.[0-9]{7,}", text):
        return f"{show(value)} has more than 6 fractional digits (never rounded)"
    if column.type == ColumnType.TIMESTAMP and re.fullmatch(r"[+-]?[0-9]+(\.[0-9]*)?", text):
        return f"{show(value)} is a number, not a timestamp (no epoch or unit is assumed)"
    return f"{show(value)} {_TYPE_REASONS[column.type]}"


def _float_reasons(values: list[Any]) -> list[str]:
    """NaN, out of float64's range, or not a number; the texts cast together."""
    texts = pa.array([str(value).strip() for value in values], pa.string())
    typed, _ = cast_each(texts, pa.float64())
    too_large = overflowed(texts, typed).to_pylist()
    return [_float_reason(value, over) for value, over in zip(values, too_large, strict=True)]


def _float_reason(value: Any, too_large: bool) -> str:
    if re.fullmatch(r"(?i)\s*[+-]?nan\s*", str(value)):
        return f"{show(value)} is refused: NaN is not stored (SQLite cannot hold it)"
    if too_large:
        return f"{show(value)} is out of range for a 64-bit float"
    return f"{show(value)} is not a number"


def decimal_reason(value: Any, column: Column) -> str:
    """Why a value does not fit decimal(precision, scale): never rounded, so say which limit."""
    precision = column.precision if column.precision is not None else MAX_DECIMAL_PRECISION
    scale = column.scale or 0
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return f"{show(value)} is not a decimal number"
    if not number.is_finite():
        return f"{show(value)} is not a finite decimal number"
    exponent = int(number.normalize().as_tuple().exponent)
    if -exponent > scale:
        return f"{show(value)} has more than {scale} decimal places"
    whole = precision - scale
    return f"{show(value)} has more than {whole} digits before the decimal point"


def _missing(typed: Arr, column: Column) -> Failure:
    return Failure(
        mask(pc.is_null(typed)),
        Code.MISSING_VALUE,
        each(lambda _: f"column {column.name!r} is required"),
    )


def _constraints(typed: Arr, column: Column) -> Iterator[Failure]:
    if column.max_length is not None:
        limit = column.max_length
        text: Any = typed  # a string column (the schema allows max_length on strings only)
        # A text has at least as many bytes as characters: most columns are decided by their
        # longest byte length, without counting characters.
        longest = pc.max(pc.binary_length(text)).as_py()
        too_long = (
            all_false(len(text))
            if longest is None or longest <= limit
            else mask(pc.greater(pc.utf8_length(text), pa.scalar(limit)))
        )
        yield Failure(
            too_long, Code.TOO_LONG, each(lambda v: f"{show(v)} is longer than {limit} characters")
        )
    if column.pattern is not None:
        pattern = column.pattern
        mismatch = pc.and_(pc.is_valid(typed), pc.invert(pattern_matches(typed, pattern)))
        yield Failure(
            mismatch, Code.PATTERN_MISMATCH, each(lambda v: f"{show(v)} does not match {pattern!r}")
        )
    if column.enum is not None:
        allowed = pa.array(column.enum, pa.string())
        outside = pc.and_(pc.is_valid(typed), pc.invert(pc.is_in(typed, value_set=allowed)))
        listed = ", ".join(column.enum)
        yield Failure(
            outside, Code.NOT_IN_ENUM, each(lambda v: f"{show(v)} is not one of: {listed}")
        )
    yield from _bounds(typed, column)


def pattern_matches(values: Arr, pattern: str) -> Arr:
    """Whether each value matches the whole ``pattern`` (RE2, vectorised, off the GIL).

    Validation checks first that the dataset's patterns compile (``require_runnable_patterns``);
    nothing falls back to a backtracking engine, whose run time a value could make explode.
    """
    return mask(pc.match_substring_regex(values, anchored(pattern)))


def _bounds(typed: Arr, column: Column) -> Iterator[Failure]:
    if column.min is not None:
        left, low = _comparable(typed, column.min, column)
        below = mask(pc.less(left, low))
        yield Failure(below, Code.BELOW_MINIMUM, _bound_reason("below the minimum", column.min))
    if column.max is not None:
        left, high = _comparable(typed, column.max, column)
        above = mask(pc.greater(left, high))
        yield Failure(above, Code.ABOVE_MAXIMUM, _bound_reason("above the maximum", column.max))


def _bound_reason(where: str, bound: Any) -> Explain:
    return each(lambda value: f"{show(value)} is {where} {bound}")


def _comparable(typed: Arr, bound: Any, column: Column) -> tuple[Arr, pa.Scalar[Any]]:
    """``typed`` and the bound in one Arrow type: the column's, or float64 if the bound is not."""
    parsed, bad = parse_text(pa.array([str(bound)], pa.string()), column)
    if not pc.any(bad).as_py() and parsed.null_count == 0:
        return typed, parsed[0]
    if column.type in (ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.FLOAT):
        try:
            return pc.cast(typed, pa.float64()), pa.scalar(float(bound), pa.float64())
        except (TypeError, ValueError):
            pass
    raise InvalidSchema(f"column {column.name!r}: bound {bound!r} is not a {column.type.value}")
