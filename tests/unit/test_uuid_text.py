"""The block check and decode of uuid text give what a per-value check and Python's uuid give."""

from __future__ import annotations

import re
import uuid

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from batchyard.domain.uuid_text import all_canonical, canonical_octets
from batchyard.targets.values import uuid_bytes

CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _spoiled(text: str, at: int, char: str) -> str:
    return text[:at] + char + text[at + 1 :]


#: Canonical text, and near misses: one character replaced (a hyphen moved, upper case, a
#: multi-byte character, a NUL), braces, no hyphens, one character too many or too few.
_uuids = st.uuids().map(str)
_near_misses = st.one_of(
    st.builds(
        _spoiled,
        _uuids,
        st.integers(0, 35),
        st.sampled_from(["-", "A", "F", "g", "é", "\x00", " ", "0", "{"]),
    ),
    _uuids.map(lambda u: "{" + u + "}"),
    _uuids.map(lambda u: u.replace("-", "")),
    _uuids.map(str.upper),
    _uuids.map(lambda u: u + "0"),
    _uuids.map(lambda u: u[1:]),
    st.text(max_size=40),
)
_values = st.lists(
    st.one_of(_uuids, _uuids, _uuids, st.none(), _near_misses), min_size=0, max_size=40
)


def _expected_canonical(values: list[str | None]) -> bool:
    return all(v is None or CANONICAL.fullmatch(v) is not None for v in values)


@given(_values, st.integers(0, 5), st.integers(0, 5))
def test_block_check_and_decode_agree_with_each_value(
    values: list[str | None], head: int, tail: int
) -> None:
    whole = pa.array(values, pa.string())
    # A slice whose offsets do not start at zero, as a chunk of a larger column.
    start = min(head, len(values))
    sliced = whole.slice(start, max(0, len(values) - start - tail))
    for array in (whole, sliced):
        expected = array.to_pylist()
        canonical = _expected_canonical(expected)

        assert all_canonical(array) is canonical
        octets = canonical_octets(array)
        if not canonical:
            assert octets is None
            continue
        assert octets is not None
        assert octets.type == pa.binary(16)
        assert octets.to_pylist() == [None if v is None else uuid.UUID(v).bytes for v in expected]
        assert uuid_bytes(array).to_pylist() == octets.to_pylist()


def test_a_null_with_characters_behind_it_is_left_to_the_exact_path() -> None:
    """Arrow lets a null slot span bytes; they must not be read as part of the next value."""
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    data = (first + "x" * 36 + second).encode()
    offsets = pa.array([0, 36, 72, 108], pa.int32()).buffers()[1]
    validity = pa.array([True, False, True]).buffers()[1]
    values = pa.Array.from_buffers(
        pa.string(), 3, [validity, offsets, pa.py_buffer(data)], null_count=1
    )

    assert values.to_pylist() == [first, None, second]
    assert all_canonical(values) is False
    assert canonical_octets(values) is None
    assert uuid_bytes(values).to_pylist() == [uuid.UUID(first).bytes, None, uuid.UUID(second).bytes]


def test_text_the_exact_path_accepts_is_still_decoded_there() -> None:
    """Upper case is not canonical: the block decode declines, the per-value decode takes it."""
    text = str(uuid.uuid4())
    values = pa.array([text.upper(), None], pa.string())

    assert canonical_octets(values) is None
    assert uuid_bytes(values).to_pylist() == [uuid.UUID(text).bytes, None]
