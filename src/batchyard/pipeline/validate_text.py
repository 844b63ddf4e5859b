"""Text columns to typed values: one cast of the whole column, the exact parsers only where needed.

The happy path casts a whole column at once (no Python per value). One bad value makes that
cast fail, and the exact parsers of validate_types (regex masks, bisection of failed casts) cost
many times as much per value; run over every value of a column with 1% bad records, they made
such a file several times slower to validate than a clean one. So a column whose cast fails is
split: the values that look like the type's plain form (a cheap regex, e.g. a month 01 to 12)
are cast at once, and only the others go the exact way. The regex decides how fast, never what:
a value it passes is judged by the same cast the happy path trusts for a whole column, and if
one of them fails that cast after all, the whole column takes the exact path as before.

A file's bad values are spread through it, so a column whose whole cast failed on one chunk
mostly fails it on the next, often only at its end: a whole cast's work for nothing. The
columns whose cast failed on the last chunk are remembered (``FailedCasts``, one per validation)
and the next chunk's go straight to the split; one found all plain there is cast whole, and
forgotten. The split is exact, so what is remembered decides how fast, never what.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.schema import Column, ColumnType
from batchyard.domain.uuid_text import all_canonical
from batchyard.pipeline.arrow_types import arrow_type
from batchyard.pipeline.plain_text import plain_calendar, plain_decimal, plain_uuid
from batchyard.pipeline.validate_types import (
    PARSERS,
    Arr,
    all_false,
    characters,
    mask,
    matches,
    overflowed,
    parse_string,
    refuse_unstorable,
)

__all__ = ["CAST_TYPES", "FailedCasts", "parse_text"]

#: A time of day followed by a zone: what an aware timestamp's text ends with.
_TIME_WITH_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]*)?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
#: How many leading values decide which cast is tried first, and are cast before the rest.
_SAMPLE = 1024
_TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
_UUID_CANONICAL = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
#: Years with a 29th of February: divisible by 4, centuries only if divisible by 400 (year 0
#: is left to the exact path, which refuses it).
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
#: A day that exists: in every year, or the 29th of February of a leap year (one in four years
#: has some 290 of them per 100,000 timestamps spread over the year).
_DAY = (
    r"^([0-9]{4}-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    rf"|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|{_LEAP_YEAR}-02-29)"
)
#: Texts in the plain form of each type, which the whole-column cast takes.
_PLAIN = {
    ColumnType.INTEGER: r"^-?[0-9]{1,18}$",
    ColumnType.FLOAT: _NUMBER,
    ColumnType.DATE: _DAY + "$",
    ColumnType.TIMESTAMP: _DAY
    + r"[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-][0-9]{2}:?[0-9]{2})?$",
}
#: Types whose Arrow cast from a whole typed or text column is tried first.
CAST_TYPES = frozenset(
    {
        ColumnType.INTEGER,
        ColumnType.FLOAT,
        ColumnType.DECIMAL,
        ColumnType.DATE,
        ColumnType.TIMESTAMP,
    }
)


class FailedCasts:
    """The columns whose whole cast failed on the last chunk of one validation, by name.

    Used by one thread at a time (a validation checks its chunks one after another).
    """

    def __init__(self) -> None:
        self._names: set[str] = set()

    def __contains__(self, column: Column) -> bool:
        return column.name in self._names

    def note(self, column: Column, failed: bool) -> None:
        """Remember whether ``column``'s values (the chunk's) were all cast whole."""
        if failed:
            self._names.add(column.name)
        else:
            self._names.discard(column.name)


def parse_text(values: Arr, column: Column, failed: FailedCasts | None = None) -> tuple[Arr, Arr]:
    """Typed values and the mask of values that are not valid for the column's type.

    ``failed``: the columns whose whole cast failed on the validation's last chunk (see
    the module's docstring); updated with this chunk's.
    """
    if column.type == ColumnType.STRING:
        return parse_string(values, pa.string())
    fast = _cast_fast(values, column, failed if failed is not None else FailedCasts())
    if fast is None:
        typed, bad = _parse_exact(values, column)
        return refuse_unstorable(typed, bad, column)
    typed, rest = fast
    bad = all_false(len(values))
    if rest is not None:
        few_typed, few_bad = _parse_each_once(values.filter(rest), column)
        typed = pc.replace_with_mask(typed, rest, few_typed)
        bad = pc.replace_with_mask(bad, rest, few_bad)
    return refuse_unstorable(typed, bad, column)


def _parse_each_once(values: Arr, column: Column) -> tuple[Arr, Arr]:
    """The exact parse of ``values`` (no nulls), each distinct text parsed once.

    Bad values repeat ("N/A", a wrong default), and each one that fails its cast costs a raised
    Arrow error; the exact parsers judge every value alone, so a repeat gets the same result.
    """
    distinct = pc.unique(values)
    if len(distinct) == len(values):
        return _parse_exact(values, column)
    typed, bad = _parse_exact(distinct, column)
    at = pc.index_in(values, value_set=distinct)
    return typed.take(at), bad.take(at)


def _parse_exact(values: Arr, column: Column) -> tuple[Arr, Arr]:
    # Whitespace around a value is trimmed; an empty text is left to fail the type's grammar.
    trimmed = pc.utf8_trim_whitespace(values)
    typed, bad = PARSERS[column.type](trimmed, arrow_type(column))
    return typed, mask(bad)


def _cast_fast(values: Arr, column: Column, failed: FailedCasts) -> tuple[Arr, Arr | None] | None:
    """What the fast path takes: (typed values, the mask of values it leaves to the exact path,
    None if none), or None if it cannot take the column.

    The whole column is cast first, unless that failed on the last chunk; if it fails (or was
    skipped), only its values in the plain form are cast.
    """
    if column.type == ColumnType.UUID:  # canonical text is kept as it is, value by value
        # The common case, checked as one block of bytes.
        if column not in failed and all_canonical(values):
            return values, None
        rest = _not_plain(values, _UUID_CANONICAL, pa.array(plain_uuid(values), pa.bool_()))
        some_rest = pc.any(rest).as_py()
        failed.note(column, some_rest)
        return values, rest if some_rest else None
    plain = _plain_form(column)
    skipped = plain is not None and column in failed
    if not skipped:
        typed = fast_cast(values, column)
        if typed is not None:
            return typed, None
    if plain is None:
        return None
    rest = _not_plain(values, plain, _surely_plain(values, column))
    if not pc.any(rest).as_py():
        failed.note(column, False)
        # All plain: the whole cast, if it was skipped, else the exact path (it failed).
        typed = fast_cast(values, column) if skipped else None
        return None if typed is None else (typed, None)
    failed.note(column, True)
    typed = fast_cast(pc.if_else(rest, pa.nulls(len(values), values.type), values), column)
    return None if typed is None else (typed, rest)


def _not_plain(values: Arr, plain: str, surely: Arr | None = None) -> Arr:
    """The values not in the ``plain`` form; the regex runs only where ``surely`` is not true.

    ``surely`` marks values a cheaper kernel proves plain (a subset of what the regex matches),
    so the mask is the regex's own, only found sooner.
    """
    unsure: Arr = pc.is_valid(values)
    if surely is not None:
        unsure = pc.and_(unsure, pc.invert(mask(surely)))
        if not pc.any(unsure).as_py():
            return unsure
        odd = pc.invert(matches(values.filter(unsure), plain))
        return pc.replace_with_mask(unsure, unsure, odd)
    not_plain: Arr = pc.and_(unsure, pc.invert(matches(values, plain)))
    return not_plain


def _surely_plain(values: Arr, column: Column) -> Arr | None:
    """Values a check far cheaper than the regex finds plain, where there is one: for an
    integer, 1 to 18 ASCII digits (one Arrow kernel); for dates, naive timestamps and unsigned
    decimals, their characters looked at with numpy (plain_text). The regex then runs on the
    others: the negative, the zoned, the odd ones."""
    if column.type == ColumnType.INTEGER:
        short = pc.less_equal(pc.binary_length(values), pa.scalar(18, pa.int32()))
        return pc.and_(pc.ascii_is_decimal(values), short)
    if column.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
        with_time = column.type == ColumnType.TIMESTAMP
        return pa.array(plain_calendar(values, with_time), pa.bool_())
    if column.type == ColumnType.DECIMAL:
        whole, scale = _decimal_digits(column)
        return pa.array(plain_decimal(values, whole, scale), pa.bool_())
    return None


def _decimal_digits(column: Column) -> tuple[int, int]:
    """The digits a decimal column holds before and after its point."""
    decimal: Any = arrow_type(column)
    scale: int = decimal.scale
    return decimal.precision - scale, scale


def _plain_form(column: Column) -> str | None:
    if column.type != ColumnType.DECIMAL:
        return _PLAIN.get(column.type)
    whole, scale = _decimal_digits(column)
    if whole < 1:
        return None
    fraction = rf"(\.[0-9]{{0,{scale}}})?" if scale else ""
    return rf"^[+-]?[0-9]{{1,{whole}}}{fraction}$"


def fast_cast(values: Arr, column: Column) -> Arr | None:
    """The whole column cast at once, if the cast accepts exactly what the type's grammar does."""
    ctype = column.type
    if ctype not in CAST_TYPES:
        return None
    if ctype == ColumnType.INTEGER and _has_x(values):
        return None  # arrow reads hex; we do not
    if ctype == ColumnType.TIMESTAMP:
        return _fast_timestamp(values)
    typed = _try_cast(values, arrow_type(column))
    if typed is None:
        return None
    if ctype == ColumnType.FLOAT and pc.any(overflowed(values, typed)).as_py():
        return None
    return typed


def _has_x(values: Arr) -> bool:
    """Whether a value holds an "x" or "X": two searches of the column's characters as one
    block (0.5 ms for a million ids, where Arrow's two per-value searches took 21 ms)."""
    block = characters(values)  # None (not plain string storage): the exact path judges
    return block is None or b"x" in block or b"X" in block


def _fast_timestamp(values: Arr) -> Arr | None:
    """All with an offset, or all naive (taken as UTC); a mix goes the slow way.

    The kind the first values show is tried first: naive text no longer pays for a failed
    aware cast on every chunk. Arrow casts a text as naive or as zoned, never both, so once a
    value casts as the first kind the column cannot be all of the other: a column with a bad
    value does not pay for that second failed cast either.
    """
    head = values.slice(0, _SAMPLE)
    aware_first = pc.any(pc.match_substring_regex(head, _TIME_WITH_OFFSET)).as_py()
    first = head.drop_null().slice(0, 1)
    order = (_TIMESTAMP_UTC, pa.timestamp("us"))
    for target in order if aware_first else reversed(order):
        typed = _try_cast(values, target)
        if typed is not None:
            return typed if target == _TIMESTAMP_UTC else pc.cast(typed, _TIMESTAMP_UTC)
        if len(first) and _try_cast(first, target) is not None:
            return None  # a value of this kind: the other kind cannot take them all
    return None


def _try_cast(values: Arr, target: pa.DataType) -> Arr | None:
    """The cast, or None if a value fails it.

    The first values are cast alone first: a cast that fails may only say so once it has
    parsed every value (naive text cast to a zoned timestamp does), at the cost of a whole cast.
    """
    try:
        if len(values) > _SAMPLE:
            pc.cast(values.slice(0, _SAMPLE), target)
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
