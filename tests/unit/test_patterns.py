"""Column patterns: RE2 only, checked when a dataset is declared, matched against whole values."""

from __future__ import annotations

import pyarrow as pa
import pytest

from batchyard.domain.errors import InputRejected, InvalidSchema
from batchyard.domain.schema import Dataset
from batchyard.pipeline.patterns import (
    MAX_PATTERN_LENGTH,
    check_dataset_patterns,
    pattern_problem,
    require_runnable_patterns,
)
from batchyard.pipeline.validate_checks import pattern_matches


def with_pattern(pattern: str) -> Dataset:
    column = {"name": "v", "type": "string", "pattern": pattern}
    return Dataset.from_dict({"name": "t", "columns": [column]})


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("^(?=a)(a+)+$", "invalid perl operator: (?="),
        (r"(a)\1", "invalid escape sequence"),
        ("(a", "missing )"),
        ("a)|(b", "unexpected )"),
        ("a{1001}", "invalid repetition size"),
        ("x" * (MAX_PATTERN_LENGTH + 1), f"longer than {MAX_PATTERN_LENGTH} characters"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_why(pattern: str, reason: str) -> None:
    with pytest.raises(InvalidSchema) as refused:
        check_dataset_patterns(with_pattern(pattern))
    assert reason in refused.value.message
    assert refused.value.details == {"column": "v", "pattern": pattern}


@pytest.mark.parametrize("pattern", ["[0-9]+", r"\pL+", "[[:alpha:]]+", "(?i)abc", "a|b"])
def test_re2_patterns_are_accepted(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    check_dataset_patterns(with_pattern(pattern))


def test_a_stored_dataset_with_a_non_re2_pattern_still_loads_but_cannot_run() -> None:
    dataset = with_pattern("^(?!x)\\w+$")  # what an older server accepted
    with pytest.raises(InputRejected) as refused:
        require_runnable_patterns(dataset)
    assert "column 'v'" in refused.value.message
    assert "RE2" in refused.value.message


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("[0-9]+", "123", True),
        ("[0-9]+", "abc123", False),
        ("[0-9]+", "123abc", False),
        ("[0-9]+", "123\n", False),  # $ is the end of the text, not before a final newline
        ("a|b", "a", True),
        ("a|b", "ab", False),  # the alternation is anchored as a whole
        ("^[^@]+@[^@]+$", "a@b", True),
        ("(?m)^a$", "a\nb", False),
        ("", "", True),
    ],
)
def test_a_pattern_matches_the_whole_value(pattern: str, value: str, matches: bool) -> None:
    result = pattern_matches(pa.array([value, None], pa.string()), pattern)
    assert result.to_pylist() == [matches, False]
