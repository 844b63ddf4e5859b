"""The numpy checks of plain text pass only values the plain form's regex passes.

plain_text may leave a plain value to the regex (the 29th of February), never pass one the regex
refuses: a value it passes skips the regex and goes to the whole-column cast.
"""

from __future__ import annotations

import re
import string

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from batchyard.domain.schema import ColumnType
from batchyard.pipeline.plain_text import plain_calendar, plain_decimal, plain_uuid
from batchyard.pipeline.validate_text import _PLAIN, _UUID_CANONICAL

#: No per-example deadline: the first conversion of a numpy array in a test process makes pyarrow
#: import pandas (seconds on a loaded machine), and these properties are about which texts pass,
#: not how fast (benchmarks/ measure that).
_NO_DEADLINE = settings(deadline=None)

_DIGITS = st.text("0123456789", min_size=1, max_size=4)


def _spoiled(text: str, at: int, char: str) -> str:
    at = at % len(text)
    return text[:at] + char + text[at + 1 :]


def _near(plain: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Plain texts, and the same with one character replaced (a digit, a separator, a letter,
    a multi-byte character), cut short or made longer."""
    chars = st.sampled_from([*"0123456789", "-", ":", "T", " ", "t", "Z", "a", "F", "é", "\x00"])
    return st.one_of(
        plain,
        st.builds(_spoiled, plain, st.integers(0, 40), chars),
        plain.map(lambda t: t[:-1]),
        plain.map(lambda t: t + "0"),
        st.text(string.printable, max_size=20),
    )


_TIMESTAMPS = st.builds(
    "{}-{}-{}{}{}:{}:{}".format,
    _DIGITS.map(lambda d: d.zfill(4)),
    _DIGITS.map(lambda d: d[-2:].zfill(2)),
    _DIGITS.map(lambda d: d[-2:].zfill(2)),
    st.sampled_from(["T", " ", "t"]),
    _DIGITS.map(lambda d: d[-2:].zfill(2)),
    _DIGITS.map(lambda d: d[-2:].zfill(2)),
    _DIGITS.map(lambda d: d[-2:].zfill(2)),
)
_UUIDS = st.uuids().map(str)


def _column(texts: list[str | None], head: int) -> pa.Array:
    """The texts as a string array, sliced so that its offsets do not start at zero."""
    whole = pa.array(["x" * head, *texts], pa.string())
    return whole.slice(1)


def _agrees(passed: list[bool], texts: list[str | None], pattern: str) -> None:
    for ok, text in zip(passed, texts, strict=True):
        if ok:
            assert text is not None and re.search(pattern, text), text


@_NO_DEADLINE
@given(st.lists(st.one_of(_near(_TIMESTAMPS), st.none()), max_size=40), st.integers(0, 3))
def test_a_timestamp_passed_is_one_the_regex_passes(texts: list[str | None], head: int) -> None:
    passed = plain_calendar(_column(texts, head), with_time=True).tolist()
    _agrees(passed, texts, _PLAIN[ColumnType.TIMESTAMP])


@_NO_DEADLINE
@given(st.lists(st.one_of(_near(_TIMESTAMPS.map(lambda t: t[:10])), st.none()), max_size=40))
def test_a_date_passed_is_one_the_regex_passes(texts: list[str | None]) -> None:
    passed = plain_calendar(_column(texts, 1), with_time=False).tolist()
    _agrees(passed, texts, _PLAIN[ColumnType.DATE])


@_NO_DEADLINE
@given(st.lists(st.one_of(_near(_UUIDS), st.none()), max_size=40), st.integers(0, 3))
def test_a_uuid_passes_exactly_when_the_canonical_regex_does(
    texts: list[str | None], head: int
) -> None:
    passed = plain_uuid(_column(texts, head)).tolist()
    assert passed == [t is not None and re.search(_UUID_CANONICAL, t) is not None for t in texts]


def test_plain_days_and_times_pass_and_impossible_ones_do_not() -> None:
    texts = [
        "2024-01-31T23:59:59",
        "2023-04-30 00:00:00",
        "0000-12-01T12:30:00",
        "2024-04-31T00:00:00",
        "2024-13-01T00:00:00",
        "2024-00-10T00:00:00",
        "2024-01-00T00:00:00",
        "2024-01-05T24:00:00",
        "2024-01-05T10:60:00",
        "2024-01-05T10:00:60",
        "2024-01-05T10:00:00Z",
        "2024-02-29T12:00:00",
    ]
    passed = plain_calendar(pa.array(texts), with_time=True).tolist()
    assert passed == [True, True, True] + [False] * 9


_NUMBERS = st.builds(
    "{}{}{}".format,
    st.text("0123456789", max_size=12),
    st.sampled_from(["", ".", "..", "-", "+", "e"]),
    st.text("0123456789", max_size=4),
)


@_NO_DEADLINE
@given(
    st.lists(st.one_of(_near(_NUMBERS.filter(bool)), st.none()), max_size=40),
    st.integers(0, 3),
    st.integers(1, 12),
    st.integers(0, 4),
)
def test_a_decimal_passed_is_one_the_regex_passes(
    texts: list[str | None], head: int, whole: int, scale: int
) -> None:
    fraction = rf"(\.[0-9]{{0,{scale}}})?" if scale else ""
    passed = plain_decimal(_column(texts, head), whole, scale).tolist()
    _agrees(passed, texts, rf"^[+-]?[0-9]{{1,{whole}}}{fraction}$")


def test_plain_decimals_pass_and_others_do_not() -> None:
    texts = ["12.50", "0", "7.", "1234567890.12", "", "-5.00", "1.234", "12345678901", "1x"]
    passed = plain_decimal(pa.array([*texts, None]), 10, 2).tolist()
    assert passed == [True, True, True, True, False, False, False, False, False, False]
    # A value with two points leaves the whole column to the regex.
    assert plain_decimal(pa.array(["12.50", "1.2.3"]), 10, 2).tolist() == [False, False]
