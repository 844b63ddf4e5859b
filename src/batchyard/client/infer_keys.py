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
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

#: Types a key may have: values compared exactly, the same on every target.
KEY_TYPES = frozenset({"integer", "string", "uuid"})
_KEY_WORDS = ("id", "key", "code", "uuid", "pk")
MIN_SERIAL_RECORDS = 5
#: A pyarrow array (the stubs type compute functions per array class).
Arr: TypeAlias = Any


def propose_primary_key(
    names: Sequence[str], types: Sequence[str], columns: Sequence[Sequence[Any]], records: int
) -> tuple[str | None, str]:
    """The proposed key column (or None) and a sentence saying why."""
    ranked: list[tuple[int, int, int, str]] = []
    for position, (name, kind, values) in enumerate(zip(names, types, columns, strict=True)):
        if kind not in KEY_TYPES or not records:
            continue
        keys = _as_keys(kind, values)
        rank = _name_rank(name)
        if keys is None or (rank == 2 and not _serial(kind, keys)):
            continue
        if pc.count_distinct(keys).as_py() == records:
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


def _serial(kind: str, keys: Arr) -> bool:
    """UUIDs, or integers that rise strictly from one record to the next over enough records
    that chance is ruled out (any 2 numbers rise half the time, 5 only once in 120)."""
    if kind == "uuid":
        return True
    if kind != "integer" or len(keys) < MIN_SERIAL_RECORDS:
        return False
    return bool(pc.all(pc.less(keys.slice(0, len(keys) - 1), keys.slice(1))).as_py())


def _as_keys(kind: str, values: Sequence[Any]) -> Arr | None:
    """The values as the target compares keys (``" 7"`` and ``"7"`` are one integer, UUIDs
    have any case), or None when one is missing."""
    if any(value is None for value in values):
        return None
    try:
        keys: Arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # JSON values of several kinds (false and 0): no key
    if not pa.types.is_string(keys.type) or kind == "string":
        return keys
    keys = pc.utf8_trim_whitespace(keys)
    if kind == "uuid":
        return pc.utf8_lower(keys)
    return pc.cast(pc.replace_substring_regex(keys, r"^\+", ""), pa.int64())
