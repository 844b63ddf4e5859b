"""Propose a primary key from a sample: a column present in every record and unique in it.

Files name their keys ``id``, ``customer_id``, ``sku_code`` or ``key``; a key need not be
called ``id``. A column with such a name is preferred; another column is proposed only when
it holds UUIDs or integers that rise from record to record, as a serial number does (a unique
text column in a small sample is as likely a name as a key, and the ``1960``…``2020`` columns of
a table of yearly figures are integers unique by chance). The proposal says why, since the
sample cannot prove later records unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

#: Types a key may have: values compared exactly, the same on every target.
KEY_TYPES = frozenset({"integer", "string", "uuid"})
_KEY_WORDS = ("id", "key", "code", "uuid", "pk")
MIN_SERIAL_RECORDS = 5


def propose_primary_key(
    names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]], records: int
) -> tuple[str | None, str]:
    """The proposed key column (or None) and a sentence saying why."""
    ranked: list[tuple[int, int, int, str]] = []
    for position, (name, kind, values) in enumerate(zip(names, types, columns, strict=True)):
        rank = _name_rank(name)
        if kind not in KEY_TYPES or (rank == 2 and not _serial(kind, values, records)):
            continue
        if records and _unique_and_present(kind, values, records):
            ranked.append((rank, 0 if kind != "string" else 1, position, name))
    if not ranked:
        return None, (
            "no primary key: no column named like a key (id, *_id, key, code), holding UUIDs or "
            f"rising integers, is present and unique in all {records} sampled records"
        )
    key = min(ranked)[3]
    return key, (
        f"primary key: {key}, present and unique in all {records} sampled records "
        "(a later duplicate of it fails as duplicate_key)"
    )


def _name_rank(name: str) -> int:
    """0 for ``id``, 1 for a key-like name (``order_id``, ``key``, ``zip_code``), else 2."""
    if name == "id":
        return 0
    words = name.split("_")
    if words[-1] in _KEY_WORDS or words[0] == "id":
        return 1
    return 2


def _serial(kind: str, values: Sequence[Any], records: int) -> bool:
    """UUIDs, or integers that rise strictly from one record to the next over enough records
    that chance is ruled out (any 2 numbers rise half the time, 5 only once in 120)."""
    if kind == "uuid":
        return True
    if kind != "integer" or None in values or records < MIN_SERIAL_RECORDS:
        return False
    numbers = [_key_value(kind, value) for value in values]
    return all(a < b for a, b in pairwise(numbers))


def _unique_and_present(kind: str, values: Sequence[Any], records: int) -> bool:
    seen: set[Any] = set()
    for value in values:
        if value is None:
            return False
        seen.add(_key_value(kind, value))
    return len(seen) == records


def _key_value(kind: str, value: Any) -> Any:
    """The value as the target compares keys: ``" 7"`` and ``"7"`` are one integer."""
    if not isinstance(value, str):
        return value
    if kind == "integer":
        return int(value.strip())
    return value.strip().lower() if kind == "uuid" else value
