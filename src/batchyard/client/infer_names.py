"""Turn a file's headers into column names the server accepts, recording where each came from.

Real files name their fields ``Contact Phone Number``, ``sepalLength`` or ``1962``; a dataset's
columns must be identifiers (``^[a-z_][a-z0-9_]{0,62}$``). Rather than refuse such a file, each
header becomes an identifier by one written rule (docs/inference.md, "Names from headers") and
the column records the header it is read from (``from``), so the file imports as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from batchyard.domain.schema import IDENTIFIER

MAX_NAME_LENGTH = 63

#: PostgreSQL's reserved key words (its documentation, appendix "SQL Key Words"): legal when
#: quoted, as batchyard always does, but a trap for everyone who queries the table by hand.
_SQL_RESERVED_WORDS = """
    all analyse analyze and any array as asc asymmetric authorization between binary both case
    cast check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user default
    deferrable desc distinct do else end except false fetch for foreign freeze from full grant
    group having ilike in initially inner intersect into is isnull join lateral leading left like
    limit localtime localtimestamp natural not notnull null offset on only or order outer
    overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using
    variadic verbose when where window with
"""
SQL_RESERVED = frozenset(_SQL_RESERVED_WORDS.split())
#: Prefixes of names that belong to batchyard or the target database, never to a column.
RESERVED_PREFIXES = ("sqlite_", "batchyard_", "pg_")

_CAMEL_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def to_identifier(text: str, *, digit_prefix: str = "c_") -> str:
    """``text`` as an identifier: ``Contact Phone Number`` → ``contact_phone_number``.

    camelCase words are split (``sepalLength`` → ``sepal_length``, ``userID`` → ``user_id``),
    accents dropped (``Café`` → ``cafe``), every other run of characters becomes one ``_``;
    a leading digit gets ``digit_prefix`` (``1962`` → ``c_1962``), a reserved word a trailing
    ``_`` (``order`` → ``order_``). Empty when nothing of ``text`` is left.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    split = _CAMEL_LOWER_UPPER.sub(r"\1_\2", _CAMEL_ACRONYM.sub(r"\1_\2", ascii_text))
    name = _NOT_WORD.sub("_", split.lower()).strip("_")
    if not name:
        return ""
    if name[0].isdigit():
        name = digit_prefix + name
    if name.startswith(RESERVED_PREFIXES):
        name = "c_" + name
    name = name[:MAX_NAME_LENGTH].rstrip("_")
    if name in SQL_RESERVED:
        name += "_"
    return name


def column_names(headers: Sequence[str]) -> list[str]:
    """One distinct identifier per header, in order.

    A header that already is a good name keeps it; the others are made names by
    :func:`to_identifier`, and a name taken before gets ``_2``, ``_3``…; a header with nothing
    usable in it becomes ``column_<position>``. Raises ValueError for a header that names the
    same field twice, since an import could not tell which of the two fields is meant.
    """
    seen: set[str] = set()
    for header in headers:
        if header in seen:
            raise ValueError(f"the header names the field {header!r} twice")
        seen.add(header)
    kept = {header for header in headers if is_good_name(header)}
    taken = set(kept)
    names: list[str] = []
    for position, header in enumerate(headers, start=1):
        if header in kept:
            names.append(header)
            continue
        name = _unique(to_identifier(header) or f"column_{position}", taken)
        taken.add(name)
        names.append(name)
    return names


def is_good_name(name: str) -> bool:
    """An identifier that needs no change: valid, not reserved, not a camelCase header."""
    return (
        bool(IDENTIFIER.fullmatch(name))
        and not name.startswith(("_", *RESERVED_PREFIXES))
        and name not in SQL_RESERVED
    )


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    for number in range(2, len(taken) + 3):
        suffix = f"_{number}"
        candidate = name[: MAX_NAME_LENGTH - len(suffix)].rstrip("_") + suffix
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: fewer names are taken than suffixes tried")
