"""What the reference says each record must become, and the check of an import against it.

A field's expectation is one of three: ``Exact`` (the record is stored with this value unless
another field fails it), ``Reject`` (the record must be reported failed) or ``Either`` (stored
with this value, or failed: the reference reads it, but the documented rules leave batchyard
free to refuse it, e.g. a CSV field a strict parser calls malformed).
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from batchyard.domain.schema import Dataset
from differential.harness import Imported
from differential.stored import normalize


def _as_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, float) and math.isinf(value):
        return decimal.Decimal("Infinity") if value > 0 else decimal.Decimal("-Infinity")
    return (
        decimal.Decimal(value)
        if not isinstance(value, float) or not math.isnan(value)
        else (decimal.Decimal("NaN"))
    )


@dataclass(frozen=True)
class Exact:
    value: Any


@dataclass(frozen=True)
class Either:
    """Stored as one of ``options``, or the record failed."""

    options: tuple[Any, ...]

    @classmethod
    def of(cls, *options: Any) -> Either:
        return cls(options)


@dataclass(frozen=True)
class Reject:
    why: str


Expectation = Exact | Either | Reject


@dataclass(frozen=True)
class Record:
    """One input record as the reference reads it: per column what it must become.

    ``sent`` is the record's fields as the client sent them (text), for the failed-records
    check; None where the file cannot show them (bad bytes, a ragged line).
    """

    fields: dict[str, Expectation]
    #: CSV: the fields' texts; JSON Lines: the line.
    sent: list[str] | str | None = None

    @property
    def must_fail(self) -> bool:
        return any(isinstance(e, Reject) for e in self.fields.values())

    @property
    def must_succeed(self) -> bool:
        return all(isinstance(e, Exact) for e in self.fields.values())

    def allowed(self) -> dict[str, tuple[Any, ...]]:
        """Per column the values the record may be stored with."""
        return {
            name: (e.value,) if isinstance(e, Exact) else e.options
            for name, e in self.fields.items()
            if not isinstance(e, Reject)
        }


def _number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (True is not 1, "1" is not 1), NaN equal to NaN.

    Numbers compare by value whatever their Python type, as JSON numbers do: jsonb writes
    1e400 out in full, SQLite keeps the text as sent, and both are the same number.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _number(a) and _number(b) and type(a) is not type(b):
        return _as_decimal(a) == _as_decimal(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


def check_import(
    got: Imported, dataset: Dataset, records: list[Record], key: str, backend: str
) -> None:
    """Every record accounted for: counted, and stored exactly or failed with a code."""
    batch = got.batch
    assert batch.status.value == "completed", (batch.status, batch.error_message)
    counts = batch.counts
    assert counts.total == len(records), f"counted {counts.total} records, reference {len(records)}"
    numbers = [int(row["record_number"]) for row in got.results]
    assert numbers == list(range(1, len(records) + 1)), "results do not list every record once"
    succeeded = [row for row in got.results if row["outcome"] == "succeeded"]
    failed = [row for row in got.results if row["outcome"] == "failed"]
    assert len(succeeded) + len(failed) == len(records), Counter(r["outcome"] for r in got.results)
    assert (counts.successful, counts.failed) == (len(succeeded), len(failed))
    assert len(got.rows) == len(succeeded), "the table does not hold the successful records"
    stored = {str(row[key]): normalize(row, dataset, backend) for row in got.rows}
    for row in failed:
        record = records[int(row["record_number"]) - 1]
        assert row["error_code"], f"record {row['record_number']} failed without a code"
        assert not record.must_succeed, (
            f"record {row['record_number']} must be stored: {record.allowed()!r}, "
            f"failed {row['error_code']}: {row['error_message']}"
        )
    for row in succeeded:
        record = records[int(row["record_number"]) - 1]
        assert not record.must_fail, (
            f"record {row['record_number']} must fail ({record.fields!r}) but was stored"
        )
        assert row["key"] in stored, f"record {row['record_number']}: no row with key {row['key']}"
        values = stored[row["key"]]
        for name, options in record.allowed().items():
            assert any(same(values[name], value) for value in options), (
                f"record {row['record_number']} column {name!r}: stored {values[name]!r}, "
                f"reference {' or '.join(map(repr, options))}"
            )
    _check_failed_records(got, records, failed)


def _check_failed_records(
    got: Imported, records: list[Record], failed: list[dict[str, str]]
) -> None:
    """Each failed record comes back as it was sent (CSV: its fields; JSON Lines: its line)."""
    if not failed:
        return  # (an empty JSON Lines input gets a CSV header: nothing to read in it either way)
    if got.batch.format is not None and got.batch.format.value == "jsonl":
        lines = got.failed_records.decode("utf-8").splitlines()
        assert len(lines) == len(failed), "failed-records does not list every failed record"
        for result, line in zip(failed, lines, strict=True):
            sent = records[int(result["record_number"]) - 1].sent
            assert isinstance(sent, str)
            assert line.startswith(_line_kept(sent)), (
                f"record {result['record_number']} sent {sent!r}, failed-records gives {line!r}"
            )
        return
    rows = list(csv.reader(io.StringIO(got.failed_records.decode("utf-8"), newline="")))[1:]
    assert len(rows) == len(failed), "failed-records does not list every failed record"
    for result, row in zip(failed, rows, strict=True):
        sent = records[int(result["record_number"]) - 1].sent
        if sent is not None:
            assert row[: len(sent)] == sent, (
                f"record {result['record_number']} sent {sent!r}, failed-records gives {row!r}"
            )


def _line_kept(sent: str) -> str:
    """What a failed-records line starts with: the line as sent, up to its closing brace."""
    body = sent.rstrip()
    try:
        is_object = isinstance(json.loads(body), dict)
    except ValueError:
        is_object = False
    return body[:-1].rstrip() if is_object else body
