"""Values of a text column proven to be in their type's plain form, from the column's bytes.

A column whose whole cast fails (a file with a few bad records) is split by validate_text: the
values in the type's plain form are cast at once, the others parsed the exact way. Telling them
apart with the plain form's regex is what made such a column several times dearer than a clean
one (a regex per value; 1.2 ms for the timestamps of a 2 MiB chunk, 1.7 ms for its uuids). Here
numpy looks at the characters instead: the values of the form's one width (uuids, dates,
naive timestamps) as rows of a byte matrix, each byte mapped to its class by one C translate;
for decimals, where each value's point and any other character are.
Each function proves a subset of what the regex matches, never more, so a value it passes is
one the regex passes; the regex still judges the values it leaves out (zoned timestamps, a 29th
of February, signed numbers, the bad ones), which decides how fast, never what.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["plain_calendar", "plain_decimal", "plain_uuid"]

#: Byte matrices and masks (numpy's stubs type them per dtype; the dtype is stated where made).
Bytes = Any

#: Where a canonical uuid has its hyphens; lower-case hex digits everywhere else.
_UUID_HYPHENS = (8, 13, 18, 23)
_UUID_WIDTH = 36
#: Each byte's class in a uuid: "h" for a lower-case hex digit, "-" for itself, "x" otherwise.
_UUID_CLASSES = bytes(
    ord("h") if b in b"0123456789abcdef" else ord("-") if b == ord("-") else ord("x")
    for b in range(256)
)
_UUID_LAYOUT = "".join("-" if at in _UUID_HYPHENS else "h" for at in range(_UUID_WIDTH)).encode()
#: Each byte's class in a date or timestamp: "d" for a digit, "T" for "T" or a space, the
#: separators "-" and ":" for themselves, "x" otherwise.
_CALENDAR_CLASSES = bytes(
    ord("d") if b in b"0123456789" else ord("T") if b in b"T " else b if b in b"-:" else ord("x")
    for b in range(256)
)
_DATE_LAYOUT = b"dddd-dd-dd"
_TIMESTAMP_LAYOUT = b"dddd-dd-ddTdd:dd:dd"
#: Each byte's class in a decimal: 0 for a digit, 1 for the point, 2 otherwise.
_DECIMAL_CLASSES = bytes(0 if b in b"0123456789" else 1 if b == ord(".") else 2 for b in range(256))
#: Days in each month (index 1 to 12) of a year without a 29th of February.
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int16)
#: Where the two digits of the month, day, hour, minute and second are, and each one's range.
_FIELD_DIGITS = [5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_FIELD_LOWEST = np.array([1, 1, 0, 0, 0], np.int16)
_FIELD_HIGHEST = np.array([12, 31, 23, 59, 59], np.int16)
#: What the ASCII codes of two digits add up to, the first counted ten times: "00" is 528.
_TWO_ZEROS = 11 * ord("0")


def _offsets(values: Any) -> Bytes:
    count = len(values)
    return np.frombuffer(values.buffers()[1], np.int32, count + 1, 4 * values.offset)


def _valid(values: Any) -> Bytes:
    if not values.null_count:
        return np.ones(len(values), bool)
    return np.asarray(pc.is_valid(values), dtype=bool)


def _byte_rows(values: Any, width: int) -> tuple[Bytes, Bytes]:
    """(the mask of non-null values exactly ``width`` bytes long, their bytes as rows)."""
    chosen = _valid(values) & (np.diff(_offsets(values)) == width)
    picked = values.filter(pa.array(chosen, pa.bool_()))
    if not len(picked):
        return chosen, np.zeros((0, width), np.uint8)
    start = int(_offsets(picked)[0])
    data = np.frombuffer(picked.buffers()[2], np.uint8, width * len(picked), start)
    return chosen, data.reshape(-1, width)


def _scatter(chosen: Bytes, passed: Bytes) -> Bytes:
    """A mask over the whole column: ``passed`` for the ``chosen`` values, false elsewhere."""
    whole = np.zeros(len(chosen), bool)
    whole[chosen] = passed
    return whole


def _like(rows: Bytes, classes: bytes, layout: bytes) -> Bytes:
    """Whether each row's characters, mapped to their ``classes``, spell ``layout``: one C
    translate of the block, one comparison of it with the layout repeated (the common case:
    the bad values are another width), and a comparison per row only if that one fails."""
    mapped = rows.tobytes().translate(classes)
    if mapped == layout * len(rows):
        return np.ones(len(rows), bool)
    return np.asarray(np.frombuffer(mapped, f"S{len(layout)}") == np.bytes_(layout))


def _fields(rows: Bytes, count: int) -> Bytes:
    """The first ``count`` two-digit fields (month, day, hour…) of each row, as numbers: all
    of them at once, the digits picked as one block (digits checked; a row that is not one
    gets some number, of no meaning)."""
    digits = rows[:, _FIELD_DIGITS[: 2 * count]].astype(np.int16)
    return digits[:, 0::2] * 10 + digits[:, 1::2] - _TWO_ZEROS


def plain_uuid(values: Any) -> Bytes:
    """Canonical uuid text: 8-4-4-4-12 lower-case hex digits, as the canonical regex says."""
    chosen, rows = _byte_rows(values, _UUID_WIDTH)
    return _scatter(chosen, _like(rows, _UUID_CLASSES, _UUID_LAYOUT))


def plain_calendar(values: Any, with_time: bool) -> Bytes:
    """``YYYY-MM-DD`` (``with_time``: then ``T`` or a space and ``HH:MM:SS``), a day that exists
    and a time of day from 00:00:00 to 23:59:59: the plain form, without fractions or a zone.

    The 29th of February is left to the regex (its leap years are the regex's to say).
    """
    layout = _TIMESTAMP_LAYOUT if with_time else _DATE_LAYOUT
    chosen, rows = _byte_rows(values, len(layout))
    ok = _like(rows, _CALENDAR_CLASSES, layout)
    count = 5 if with_time else 2
    fields = _fields(rows, count)
    ok &= ((fields >= _FIELD_LOWEST[:count]) & (fields <= _FIELD_HIGHEST[:count])).all(axis=1)
    ok &= fields[:, 1] <= _MONTH_DAYS[np.where(ok, fields[:, 0], 0)]
    return _scatter(chosen, ok)


def plain_decimal(values: Any, whole: int, scale: int) -> Bytes:
    """Unsigned: 1 to ``whole`` digits, then (if ``scale``) maybe a point and at most ``scale``
    digits. Where each value's point is comes from one Arrow search; the values holding other
    characters from where those few characters are."""
    offsets = _offsets(values).astype(np.int64)
    lengths = np.diff(offsets)
    ok = _valid(values) & (lengths >= 1)
    start, stop = int(offsets[0]), int(offsets[-1])
    if stop == start:
        return ok
    text: bytes = values.buffers()[2].slice(start, stop - start).to_pybytes()
    classes = np.frombuffer(text.translate(_DECIMAL_CLASSES), np.uint8)
    others = np.flatnonzero(classes == 2)
    ok[np.searchsorted(offsets - start, others, side="right") - 1] = False
    point = np.asarray(pc.fill_null(pc.find_substring(values, "."), -1), np.int64)
    if np.count_nonzero(classes == 1) != np.count_nonzero(point >= 0):
        return np.zeros(len(lengths), bool)  # a value with two points: all left to the regex
    if not scale:
        ok &= point < 0
    before = np.where(point >= 0, point, lengths)
    after = np.where(point >= 0, lengths - point - 1, 0)
    return ok & (before >= 1) & (before <= whole) & (after <= scale)
