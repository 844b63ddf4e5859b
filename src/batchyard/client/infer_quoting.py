"""Which fields of a CSV sample were quoted: what Python's ``csv`` module reads but does not say.

The import reads a quoted field as text, always: ``""`` is the empty string, not a missing
value, and ``"NA"`` is the text NA even where NA is a null marker (docs/data-rules.md). So
inference has to know which fields were quoted to read the sample as the import will. The
records are read as the ``csv`` module reads them (a quote opens a quoted field only as a
field's first character; inside, ``""`` is one quote and a lone quote closes it; what follows
up to the delimiter is appended as is), and a field that was quoted comes out as ``QuotedText``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache


class QuotedText(str):
    """A CSV field that was quoted: text as it stands, never a missing value or a null marker."""

    __slots__ = ()


def mark_quoted(rows: Iterable[list[str]], text: str, delimiter: str) -> Iterator[list[str]]:
    """``rows`` (the ``csv`` module's non-blank records of ``text``) with each quoted field
    as ``QuotedText``; a record read otherwise here than by ``csv`` is left as it is."""
    if '"' not in text:  # nothing quoted: most samples
        yield from rows
        return
    quoted = quoted_records(text, delimiter)
    for row in rows:
        fields, flags = next(quoted, ([], []))
        if fields != row or not any(flags):
            yield row
            continue
        yield [QuotedText(f) if q else f for f, q in zip(fields, flags, strict=True)]


def quoted_records(text: str, delimiter: str) -> Iterator[tuple[list[str], list[bool]]]:
    """Each non-blank record's fields and whether each was quoted.

    A line without a quote or a lone ``"\r"`` is one record of unquoted fields, split at once
    (most lines of most samples: field by field, inference took twice the CPU it had before).
    """
    field = _field_pattern(delimiter)
    position, end = 0, len(text)
    while position < end:
        newline = text.find("\n", position)
        stop = end if newline < 0 else newline
        line = text[position:stop].removesuffix("\r")
        if '"' not in line and "\r" not in line:
            position = stop + 1
            if line:
                plain = line.split(delimiter)
                yield plain, [False] * len(plain)
            continue
        fields: list[str] = []
        flags: list[bool] = []
        while True:
            match = field.match(text, position)
            assert match is not None  # the unquoted branch matches the empty string
            inside, after, bare = match.group(1, 2, 3)
            fields.append(bare if inside is None else inside.replace('""', '"') + after)
            flags.append(inside is not None)
            position = match.end()
            if position < end and text[position] == delimiter:
                position += 1
                continue
            break
        if text.startswith("\r\n", position):
            position += 2
        elif position < end:
            position += 1  # "\r" or "\n"
        if fields != [""] or flags[0]:
            yield fields, flags


@cache
def _field_pattern(delimiter: str) -> re.Pattern[str]:
    """A quoted field (content, then what follows its closing quote) or an unquoted one."""
    stop = rf"[^{re.escape(delimiter)}\r\n]*"
    return re.compile(rf'"((?:[^"]|"")*)"?({stop})|({stop})', re.DOTALL)
