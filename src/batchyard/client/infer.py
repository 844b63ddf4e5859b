"""Guess a dataset schema from a sample file, so a first import needs no hand-written schema.

Only the start of the file is read (``sample_bytes``, at most ``SAMPLE_RECORDS`` records;
Parquet: the first rows), so a huge file costs no more than a small one, and the same sample
always gives the same schema. The guess is made so that importing the same file applies every
record: headers become identifiers with ``from`` naming the header, types are ones every sampled
value parses as without change, texts that stand for a missing value become ``null_markers``.
Every column is nullable except the proposed primary key, since a sample cannot prove a later
record has no empty value. docs/inference.md tells every rule.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchyard.client._uploads import FileArg
from batchyard.client.infer_keys import propose_primary_key
from batchyard.client.infer_names import column_names, to_identifier
from batchyard.client.infer_quoting import QuotedText
from batchyard.client.infer_sample import (
    DEFAULT_SAMPLE_BYTES,
    DELIMITER_NAMES,
    SAMPLE_RECORDS,
    Sample,
    read_sample,
)
from batchyard.client.infer_types import (
    NULL_MARKER_CANDIDATES,
    Guess,
    guess_arrow,
    guess_json,
    guess_texts,
)
from batchyard.client.models import Column, DatasetSchema

__all__ = [
    "DEFAULT_SAMPLE_BYTES",
    "SAMPLE_RECORDS",
    "Inference",
    "infer_dataset",
    "infer_schema",
]

_SUFFIXES = (".gz", ".csv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".tsv", ".txt")


@dataclass(frozen=True, slots=True)
class Inference:
    """A guessed schema and how it was reached, for a person to check before creating it."""

    schema: DatasetSchema
    #: ``csv``, ``jsonl`` or ``parquet``.
    format: str
    #: The CSV delimiter the sample was read with (None for JSON Lines and Parquet).
    delimiter: str | None
    #: True when the delimiter was found in the sample (or the ``.tsv`` name), not given.
    delimiter_detected: bool
    #: How many records the guess is based on.
    records: int
    #: Sentences explaining choices a user would want to check (key, markers, kept texts).
    notes: list[str] = field(default_factory=list)


def infer_schema(
    file: FileArg,
    name: str | None = None,
    *,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    delimiter: str | None = None,
) -> DatasetSchema:
    """A schema for the records in ``file`` (CSV, JSON Lines or Parquet, optionally gzip'd).

    ``name`` defaults to the file name without its extensions, made an identifier;
    ``delimiter`` (CSV) skips detection. Raises ValueError for a sample that cannot be read.
    """
    return infer_dataset(file, name, sample_bytes=sample_bytes, delimiter=delimiter).schema


def infer_dataset(
    file: FileArg,
    name: str | None = None,
    *,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    delimiter: str | None = None,
) -> Inference:
    """Like :func:`infer_schema`, with the format, delimiter and the reasons for the guess."""
    sample, unnamed = _named_fields(
        read_sample(file, sample_bytes=sample_bytes, delimiter=delimiter)
    )
    if not sample.fields:
        raise ValueError("the sample has no columns to infer a schema from")
    names = column_names(sample.fields)
    markers = _null_markers(sample)
    columns = [_present(values, markers) for values in sample.columns]
    guesses = [_guess(sample, i, values) for i, values in enumerate(columns)]
    key, key_note = propose_primary_key(names, [g.type for g in guesses], columns, sample.records)
    schema = DatasetSchema(
        name=name or _name_from(file),
        columns=[
            _column(column, header, guess, column == key)
            for column, header, guess in zip(names, sample.fields, guesses, strict=True)
        ],
        primary_key=[key] if key else [],
        null_markers=["", *markers] if markers else None,
    )
    notes = [_read_note(sample), *_unnamed_notes(unnamed), key_note, *_marker_notes(markers)]
    notes += [f"{n}: {g.note}" for n, g in zip(names, guesses, strict=True) if g.note]
    return Inference(
        schema=schema,
        format=sample.format,
        delimiter=sample.delimiter,
        delimiter_detected=sample.delimiter_detected,
        records=sample.records,
        notes=notes,
    )


def _named_fields(sample: Sample) -> tuple[Sample, list[int]]:
    """The sample without fields that have no name, and their positions (1-based).

    pandas writes its index as a first CSV field with an empty name; no column can read a
    field without a name (``from`` cannot be empty), so such a field is left out, and the
    import is told to ignore it.
    """
    unnamed = [i for i, name in enumerate(sample.fields) if not name]
    if not unnamed:
        return sample, []
    keep = [i for i in range(len(sample.fields)) if i not in unnamed]
    named = dataclasses.replace(
        sample,
        fields=[sample.fields[i] for i in keep],
        columns=[sample.columns[i] for i in keep],
        arrow_types=[sample.arrow_types[i] for i in keep],
    )
    return named, [i + 1 for i in unnamed]


def _unnamed_notes(positions: list[int]) -> list[str]:
    if not positions:
        return []
    shown = ", ".join(str(position) for position in positions)
    return [
        f"left out the field(s) without a name in the header (position {shown}): import with "
        "--options '{\"ignore_unknown_columns\": true}'"
    ]


def _null_markers(sample: Sample) -> dict[str, list[str]]:
    """Marker texts that stand for a missing value in the sample, with the fields showing it.

    A text counts where it is all that keeps a column from a typed guess (``NA`` among
    numbers). Only CSV has them: JSON Lines and Parquet have null.
    """
    if sample.format != "csv":
        return {}
    found: dict[str, list[str]] = {}
    for header, values in zip(sample.fields, sample.columns, strict=True):
        if _CANDIDATES.isdisjoint(values):  # most columns: no value to look at one by one
            continue
        present = {v for v in values if _is_marker(v)}
        seen = [marker for marker in NULL_MARKER_CANDIDATES if marker in present]
        if not seen:
            continue
        rest = sorted({str(v) for v in values if v is not None and not _is_marker(v)})
        if rest and guess_texts(rest).type != "string":
            for marker in seen:
                found.setdefault(marker, []).append(header)
    return {marker: found[marker] for marker in NULL_MARKER_CANDIDATES if marker in found}


def _is_marker(value: Any) -> bool:
    """Whether a CSV value is a null marker candidate: unquoted (``"NA"`` is text)."""
    return value in _CANDIDATES and not isinstance(value, QuotedText)


_CANDIDATES = frozenset(NULL_MARKER_CANDIDATES)


def _present(values: list[Any], markers: dict[str, list[str]]) -> list[Any]:
    """The values as the import will read them: null markers, unquoted, are missing."""
    if not markers:
        return values
    return [None if v in markers and not isinstance(v, QuotedText) else v for v in values]


def _guess(sample: Sample, index: int, values: Sequence[Any]) -> Guess:
    kind = sample.arrow_types[index]
    if kind is not None:
        return guess_arrow(kind, values)
    if sample.format == "jsonl":
        return guess_json(values)
    return guess_texts(values)


def _column(name: str, header: str, guess: Guess, is_key: bool) -> Column:
    return Column(
        name=name,
        type=guess.type,
        nullable=not is_key,
        precision=guess.precision,
        scale=guess.scale,
        from_=header if header != name else None,
    )


def _read_note(sample: Sample) -> str:
    records = f"{sample.records} sampled records"
    skipped = f" ({sample.skipped} unreadable left out)" if sample.skipped else ""
    if sample.delimiter is None:
        return f"read as {_FORMAT_NAMES[sample.format]}: {records}{skipped}"
    how = "detected" if sample.delimiter_detected else "given"
    shown = DELIMITER_NAMES.get(sample.delimiter, repr(sample.delimiter))
    return f"read as CSV, delimiter {shown} ({how}): {records}{skipped}"


_FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSON Lines", "parquet": "Parquet"}


def _marker_notes(markers: dict[str, list[str]]) -> list[str]:
    return [
        f"{marker!r} is read as missing (it stands among values of another type in "
        f"{', '.join(fields)}): the dataset's null_markers make the import read it the same way"
        for marker, fields in markers.items()
    ]


def _name_from(file: FileArg) -> str:
    raw = getattr(file, "name", None) if not isinstance(file, str | os.PathLike) else file
    stem = Path(os.fspath(raw)).name.lower() if isinstance(raw, str | os.PathLike) else "dataset"
    while stem.endswith(_SUFFIXES):
        stem = stem[: stem.rindex(".")]
    return to_identifier(stem, digit_prefix="t_") or "dataset"
