"""JSON texts a json column cannot store on every target.

PostgreSQL's jsonb refuses NUL characters and lone surrogates, which SQLite would store as sent:
such texts are failed records (invalid_json) on both. The common case costs one scan in C; only
texts that may hold such a thing are parsed in Python.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def _matches(values: Any, pattern: str) -> Any:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


#: Escapes of what PostgreSQL's jsonb refuses: NUL, and surrogates (lone ones among them).
_RISKY_ESCAPE = r"\\u(0000|[dD][89a-fA-F])"


def unstorable_json(values: Any) -> Any:
    """Valid JSON texts that jsonb would refuse: a NUL character or a lone surrogate."""
    risky = _matches(values, _RISKY_ESCAPE)
    if not pc.any(risky).as_py():
        return risky
    pairs = zip(values.to_pylist(), risky.to_pylist(), strict=True)
    flags = [bool(r) and _has_unstorable(v) for v, r in pairs]
    return pa.array(flags, pa.bool_())


def _has_unstorable(text: str) -> bool:
    try:
        decoded = json.loads(text)
    except ValueError:
        return False  # already refused as invalid JSON
    return _walk_unstorable(decoded)


def _walk_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_walk_unstorable(k) or _walk_unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_walk_unstorable(item) for item in value)
    return False
