"""Column patterns: RE2 syntax, matched against the whole value, in linear time.

Patterns run in pyarrow's RE2 engine (``match_substring_regex``), which compiles them without
backtracking constructs (lookaround, backreferences) and matches in time linear in the value,
releasing the GIL. A pattern is checked with that very engine when a dataset is declared, so
whatever is accepted then is what validation runs.
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.domain.errors import InputRejected, InvalidSchema
from batchyard.domain.schema import Column, Dataset

__all__ = [
    "MAX_PATTERN_LENGTH",
    "anchored",
    "check_dataset_patterns",
    "pattern_problem",
    "require_runnable_patterns",
]

#: Longest pattern accepted: the cost of matching grows with the compiled program's size.
MAX_PATTERN_LENGTH = 1000
_ENGINE_PREFIX = "Invalid regular expression: "


def anchored(pattern: str) -> str:
    """The pattern as a full match: ``^(?:pattern)$``.

    In RE2 ``$`` matches only at the very end of the text (not before a final newline, unlike
    Python's ``re``), so ``[0-9]+`` refuses ``abc123`` and ``123\\n`` alike. Wrapping is safe
    only for a pattern that compiles alone (``a)|(b`` would otherwise change meaning), which
    ``pattern_problem`` checks first.
    """
    return f"^(?:{pattern})$"


@lru_cache(maxsize=256)
def pattern_problem(pattern: str) -> str | None:
    """Why RE2 cannot run ``pattern`` as a column pattern; None when it can."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    for candidate in (pattern, anchored(pattern)):
        try:
            pc.match_substring_regex(pa.array([""], pa.string()), candidate)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            reason = str(exc).removeprefix(_ENGINE_PREFIX)
            return f"is not a valid RE2 regular expression ({reason})"
    return None


def _patterned(dataset: Dataset) -> list[Column]:
    return [c for c in dataset.columns if c.pattern is not None]


def check_dataset_patterns(dataset: Dataset) -> None:
    """Refuse a dataset being declared whose pattern RE2 cannot compile (422, naming why)."""
    for column in _patterned(dataset):
        problem = pattern_problem(str(column.pattern))
        if problem is not None:
            raise InvalidSchema(
                f"column {column.name!r}: pattern {problem}; patterns use RE2 syntax "
                "(no lookaround, no backreferences)",
                details={"column": column.name, "pattern": column.pattern},
            )


def require_runnable_patterns(dataset: Dataset) -> None:
    """Refuse a batch whose dataset (declared before patterns were RE2) holds a pattern RE2
    cannot run: the batch ends validation_failed before any record is read."""
    for column in _patterned(dataset):
        problem = pattern_problem(str(column.pattern))
        if problem is not None:
            raise InputRejected(
                f"column {column.name!r}: the dataset's pattern {column.pattern!r} {problem}; "
                "delete the dataset (keeping its table) and declare it again with an RE2 pattern",
                details={"column": column.name, "pattern": column.pattern},
            )
