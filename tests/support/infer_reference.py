"""References for inference tests: what Python's csv module reads, and whether a text is held
exactly by a column type (worked out with the standard library, not with inference's code)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import math
import re
import uuid

LEADING_ZERO = re.compile(r"[+-]?0[0-9]")


def csv_reference(text: str, delimiter: str = ",") -> tuple[list[str], list[list[str]]]:
    """What Python's csv module reads from the same text: header and records."""
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]
    return rows[0], rows[1:]


def survives(kind: str, text: str, scale: int | None = None) -> bool:
    """Whether ``text`` is held exactly by a column of ``kind`` (a reference, not inference)."""
    text = text.strip()
    if kind == "integer":
        return str(int(text)) == text.lstrip("+") or text in ("-0", "+0")
    if kind == "decimal":
        value = decimal.Decimal(text)
        return value == value.quantize(decimal.Decimal(1).scaleb(-(scale or 0)))
    if kind == "float":  # a finite float, or infinity written as such; no code like 0042
        number = float(text)
        written_infinity = "inf" in text.lower()
        return not LEADING_ZERO.match(text) and (math.isfinite(number) or written_infinity)
    if kind == "date":
        return dt.date.fromisoformat(text).isoformat() == text
    if kind == "timestamp":
        return dt.datetime.fromisoformat(text) is not None
    if kind == "uuid":
        return str(uuid.UUID(text)) == text.lower()
    if kind == "boolean":
        return text.lower() in ("true", "false", "t", "f", "yes", "no")
    return kind == "string"
