"""Arrow tables as PostgreSQL's binary COPY rows, built a column at a time (numpy and Arrow).

ADBC's COPY writer (adbc-driver-postgresql 1.13) writes every field of every record through a
chain of virtual calls and buffer checks, about 0.7 s of CPU per million orders records, a
third of it in the one decimal column. Here each column becomes its fields for all records at
once: fixed-width columns without nulls are laid side by side in one byte matrix (a record's
field count, then each field's length and big-endian value), and the variable-width ones
(text, jsonb, and fixed-width columns holding nulls) are appended to each record with one Arrow
``binary_join_element_wise`` call. The fields go in the order ``encode`` returns, which the
COPY statement names, so the fixed-width ones come first whatever the table's order.

Values are what binary COPY's receive functions read: ``numeric`` as base-10000 digits at the
column's scale (leading zero digits included, which PostgreSQL strips, so the stored value is
the same as from the shortest form), ``timestamptz`` and ``date`` from PostgreSQL's 2000-01-01
epoch, ``uuid`` as its 16 bytes, ``jsonb`` as the version byte and text (targets/values.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.errors import PipelineError

#: Binary COPY's signature, flags and header extension length.
HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: The field count -1 that ends the data.
TRAILER = b"\xff\xff"
#: Microseconds and days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
_EPOCH_MICROS = 946_684_800_000_000
_EPOCH_DAYS = 10_957
_NULL_LENGTH = -1
_NUMERIC_NEGATIVE = 0x4000
_NBASE_DIGITS = 4

Bytes = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Rows:
    """Binary COPY rows (no header, no trailer) and the columns their fields are, in order."""

    columns: list[str]
    data: pa.Buffer


def encode(table: pa.Table) -> Rows:
    """``table``'s records as binary COPY rows; its columns in the form ``values.for_postgres``
    gives (int64, float64, bool, decimal128, date32, timestamp, text, binary, uuid bytes)."""
    count = table.num_rows
    fixed: list[tuple[str, Bytes]] = []
    variable: list[tuple[str, pa.Array[Any], pa.Array[Any]]] = []
    for name in table.column_names:
        values = _single(table.column(name))
        payload = _fixed_payload(values)
        if payload is not None and values.null_count == 0:
            fixed.append((name, payload))
        else:
            variable.append((name, *_variable_field(values, payload)))
    width = 2 + sum(4 + payload.shape[1] for _, payload in fixed)
    block = np.empty((count, width), np.uint8)
    block[:, :2] = np.frombuffer(np.array(len(table.column_names), ">i2").tobytes(), np.uint8)
    position = 2
    for _, payload in fixed:
        size = payload.shape[1]
        block[:, position : position + 4] = _big_endian_int32(size)
        block[:, position + 4 : position + 4 + size] = payload
        position += 4 + size
    columns = [name for name, _ in fixed] + [name for name, _, _ in variable]
    if not variable:
        return Rows(columns, _buffer_of(block))
    parts: list[pa.Array[Any]] = [_as_binary(block)]
    for _, lengths, fields in variable:
        parts.extend((lengths, fields))
    join: Any = pc.binary_join_element_wise
    rows = cast("pa.Array[Any]", join(*parts, b""))
    offsets = np.frombuffer(_buffer(rows, 1), np.int32, count + 1, 4 * rows.offset)
    start, end = int(offsets[0]), int(offsets[-1])
    return Rows(columns, _buffer(rows, 2).slice(start, end - start))


def _single(values: pa.Array[Any] | pa.ChunkedArray[Any]) -> pa.Array[Any]:
    """One array; a column of one chunk (every validated one) is used as it is, not copied."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunks[0]
        return values.combine_chunks()
    return values


def _buffer(values: pa.Array[Any], index: int) -> Any:
    """One of the array's buffers (validity 0, then data or offsets and data)."""
    return values.buffers()[index]


def _buffer_of(array: npt.NDArray[Any]) -> pa.Buffer:
    """A contiguous numpy array's memory as an Arrow buffer, not copied."""
    return pa.py_buffer(np.ascontiguousarray(array).data)


def _big_endian_int32(value: int) -> Bytes:
    return np.frombuffer(np.array(value, ">i4").tobytes(), np.uint8)


def _as_binary(matrix: Bytes) -> pa.Array[Any]:
    """A records-by-width byte matrix as a binary array of one width-byte value per record."""
    count, width = matrix.shape
    offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.binary(), count, [None, _buffer_of(offsets), _buffer_of(matrix)]
    )


def _numbers(values: pa.Array[Any], dtype: str) -> npt.NDArray[Any]:
    """The array's data buffer as numpy values (nulls hold whatever the buffer holds)."""
    item = np.dtype(dtype).itemsize
    numbers: npt.NDArray[Any] = np.frombuffer(
        _buffer(values, 1), dtype, len(values), item * values.offset
    )
    return numbers


def _matrix(numbers: npt.NDArray[Any], big_endian: str) -> Bytes:
    """Each value as its big-endian bytes, one row per value."""
    swapped = numbers.astype(big_endian)
    return swapped.view(np.uint8).reshape(len(numbers), swapped.dtype.itemsize)


def _fixed_payload(values: pa.Array[Any]) -> Bytes | None:
    """Every value's field bytes, one row each, for fixed-width types; None for the others."""
    kind = values.type
    if pa.types.is_int64(kind):
        return _matrix(_numbers(values, "<i8"), ">i8")
    if pa.types.is_float64(kind):
        return _matrix(_numbers(values, "<f8"), ">f8")
    if pa.types.is_boolean(kind):
        flags = values.fill_null(False).to_numpy(zero_copy_only=False)
        return np.asarray(flags, np.uint8).reshape(len(values), 1)
    if pa.types.is_date32(kind):
        return _matrix(_numbers(values, "<i4").astype(np.int64) - _EPOCH_DAYS, ">i4")
    if pa.types.is_timestamp(kind):
        micros = values.cast(pa.timestamp("us", kind.tz)) if kind.unit != "us" else values
        return _matrix(_numbers(micros, "<i8") - _EPOCH_MICROS, ">i8")
    if pa.types.is_fixed_size_binary(kind):
        width = kind.byte_width
        raw = np.frombuffer(
            _buffer(values, 1), np.uint8, width * len(values), width * values.offset
        )
        return raw.reshape(len(values), width)
    if pa.types.is_decimal128(kind):
        return numeric_fields(values)
    return None


def _variable_field(
    values: pa.Array[Any], payload: Bytes | None
) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """(each record's 4-byte field length, -1 for null; each record's field bytes)."""
    valid = (
        np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
        if values.null_count
        else None
    )
    if payload is not None:
        width = payload.shape[1]
        kept = payload if valid is None else payload[valid]
        sizes = np.full(len(values), width, np.int32) if valid is None else valid * width
        offsets = np.zeros(len(values) + 1, np.int32)
        np.cumsum(sizes, out=offsets[1:])
        data = pa.Array.from_buffers(
            pa.binary(),
            len(values),
            [None, _buffer_of(offsets), _buffer_of(kept)],
        )
        lengths = sizes.astype(np.int32)
    elif pa.types.is_null(values.type):
        empty = np.zeros(len(values) + 1, np.int32)
        data = pa.Array.from_buffers(
            pa.binary(), len(values), [None, _buffer_of(empty), pa.py_buffer(b"")]
        )
        lengths = np.full(len(values), _NULL_LENGTH, np.int32)
    else:
        data = values.cast(pa.binary())  # text as its UTF-8 bytes, not copied
        if values.null_count:
            fill_null: Any = pc.fill_null
            data = cast("pa.Array[Any]", fill_null(data, b""))
        length: Any = pc.binary_length
        lengths = np.asarray(length(data).to_numpy(zero_copy_only=False), np.int32)
    if valid is not None:
        lengths = np.where(valid, lengths, _NULL_LENGTH).astype(np.int32)
    return _as_binary(_matrix(lengths, ">i4")), data


def numeric_fields(values: pa.Array[Any]) -> Bytes:
    """decimal128 values as ``numeric`` fields of one width: header and base-10000 digits.

    The digits are aligned to the decimal point (the fraction padded to whole groups of four)
    and as many as the type's precision can need, found by long division of the 128-bit
    magnitudes held as four 32-bit limbs, all values at once.
    """
    kind = values.type
    precision, scale = kind.precision, kind.scale
    if scale < 0:
        raise PipelineError("a decimal with a negative scale cannot reach PostgreSQL")
    count = len(values)
    words = np.frombuffer(_buffer(values, 1), np.uint64, 2 * count, 16 * values.offset)
    low, high = words[0::2].copy(), words[1::2].copy()
    negative = (high >> np.uint64(63)).astype(bool)
    if negative.any():  # two's complement magnitude: invert and add one
        low = np.where(negative, ~low + np.uint64(1), low)
        carry = (low == 0) & negative
        high = np.where(negative, ~high + carry.astype(np.uint64), high)
    pad = -scale % _NBASE_DIGITS
    fraction_groups = (scale + pad) // _NBASE_DIGITS
    integer_groups = -(-(precision - scale) // _NBASE_DIGITS)
    groups = fraction_groups + integer_groups
    mask = np.uint64(0xFFFFFFFF)
    top = np.zeros(count, np.uint64)  # room for the padding's digits above 128 bits
    limbs = [top, high >> np.uint64(32), high & mask, low >> np.uint64(32), low & mask]
    limbs = _times_small(limbs, 10**pad)
    while len(limbs) > 1 and not limbs[0].any():  # small precisions: fewer divisions
        limbs.pop(0)
    digits = np.empty((count, groups), ">i2")
    for group in range(groups - 1, -1, -1):
        remainder = np.zeros(count, np.uint64)
        for index, limb in enumerate(limbs):
            current = (remainder << np.uint64(32)) | limb
            quotient = current // np.uint64(10_000)
            remainder = current - quotient * np.uint64(10_000)
            limbs[index] = quotient
        digits[:, group] = remainder
    header = np.empty((count, 4), ">i2")
    header[:, 0] = groups
    header[:, 1] = integer_groups - 1
    header[:, 2] = np.where(negative, _NUMERIC_NEGATIVE, 0)
    header[:, 3] = scale
    return np.concatenate(
        [header.view(np.uint8).reshape(count, 8), digits.view(np.uint8).reshape(count, 2 * groups)],
        axis=1,
    )


def _times_small(limbs: list[npt.NDArray[np.uint64]], factor: int) -> list[npt.NDArray[Any]]:
    """32-bit limbs (most significant first) times ``factor`` < 2**32, the top limb left room."""
    if factor == 1:
        return limbs
    mask = np.uint64(0xFFFFFFFF)
    carry = np.zeros_like(limbs[0])
    out: list[npt.NDArray[Any]] = [carry] * len(limbs)
    for index in range(len(limbs) - 1, -1, -1):
        product = limbs[index] * np.uint64(factor) + carry
        out[index] = product & mask
        carry = product >> np.uint64(32)
    return out
