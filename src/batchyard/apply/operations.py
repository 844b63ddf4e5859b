"""The seam between the engine and what a batch does with each record.

An operation receives one chunk of validated records (an Arrow table with the dataset's columns
and the record numbers) and a context, and returns one outcome per record: the records it could
not apply (code and message), and optionally a JSON output per record; every record it does not
name as failed succeeded. The built-in insert, upsert and delete write into the dataset's table
through the transaction the chunk's claim holds, so their effect commits with the chunk's ledger
row (exactly once). An operation with effects elsewhere (``http``, a plugin's) runs while the
claim is held too, and its outcomes commit with the ledger row: after a crash mid-chunk the
chunk runs again, with the same idempotency keys (at least once outside the database).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc

from batchyard.apply.ports import RecordWriter
from batchyard.domain.batches import LogLevel, Operation
from batchyard.domain.outcomes import (
    ERRORS_SCHEMA,
    OUTPUTS_SCHEMA,
    RECORD_NUMBER,
    empty_errors,
    empty_outputs,
)
from batchyard.domain.schema import Dataset

#: The code of a record the operation gave no outcome.
NO_OUTCOME = "no_outcome"
_NO_OUTCOME = "the operation gave no outcome for this record (it stopped before it)"
#: Writes one line into the batch's log (buffered, written when the chunk is done).
LogWriter = Callable[[LogLevel, str], None]


@dataclass(frozen=True, slots=True)
class OperationContext:
    """What an operation may know about the chunk it applies."""

    batch_id: str
    dataset: Dataset
    chunk_index: int
    #: The chunk's open target transaction: what is written through it commits with the chunk.
    writer: RecordWriter
    #: True once the batch's work is stopping (a cancel, another stream's error): an operation
    #: that works record by record may stop early; what it returns is still committed.
    stopping: Callable[[], bool]
    #: The operation's settings (``options.operation``), already checked against its schema.
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: Writes into the batch's log (``GET /batches/{id}/log``).
    log_writer: LogWriter | None = None

    def idempotency_key(self, record_number: int) -> str:
        """The key that names one record of this batch, the same on every attempt."""
        return f"{self.batch_id}:{record_number}"

    def cancelled(self) -> bool:
        """Whether to stop sending: the batch is cancelling (or its work stops otherwise)."""
        return self.stopping()

    def log(self, message: str, level: LogLevel = LogLevel.INFO) -> None:
        """A line for the batch's log; never put a secret in it."""
        if self.log_writer is not None:
            self.log_writer(level, message)


class Outcomes:
    """Collects one chunk's per-record outcomes.

    A record given no outcome at all (an operation that stopped early, say on a cancel) is
    failed with the code ``no_outcome``: a record is never counted as done by omission.
    """

    def __init__(self) -> None:
        self._failed: list[dict[str, Any]] = []
        self._outputs: list[dict[str, Any]] = []
        self._named: set[int] = set()

    def succeeded(self, record_number: int, output: Any = None) -> None:
        """The record succeeded; ``output`` (anything JSON can hold) goes to its results row."""
        self._named.add(record_number)
        self._keep_output(record_number, output)

    def failed(self, record_number: int, code: str, message: str, output: Any = None) -> None:
        """The record failed with ``code`` (a short identifier) and a message a user can act on."""
        self._named.add(record_number)
        self._failed.append(
            {"record_number": record_number, "code": code, "message": message, "column": None}
        )
        self._keep_output(record_number, output)

    def _keep_output(self, record_number: int, output: Any) -> None:
        if output is not None:
            text = json.dumps(output, separators=(",", ":"), ensure_ascii=False, default=str)
            self._outputs.append({"record_number": record_number, "output": text})

    def failures(self, record_numbers: pa.ChunkedArray[Any] | None = None) -> pa.Table:
        """The failed records; with ``record_numbers`` (the chunk's), those given no outcome too."""
        failed = list(self._failed)
        if record_numbers is not None:
            named = pa.array(sorted(self._named), pa.int64())
            missing = record_numbers.filter(pc.invert(pc.is_in(record_numbers, value_set=named)))
            failed += [
                {"record_number": n, "code": NO_OUTCOME, "message": _NO_OUTCOME, "column": None}
                for n in missing.to_pylist()
            ]
        if not failed:
            return empty_errors()
        return pa.Table.from_pylist(failed, schema=ERRORS_SCHEMA)

    def outputs(self) -> pa.Table:
        if not self._outputs:
            return empty_outputs()
        return pa.Table.from_pylist(self._outputs, schema=OUTPUTS_SCHEMA)


#: What ``RecordOperation.apply`` returns: ``Outcomes``, or (the table operations) the failed
#: records as ERRORS_SCHEMA rows.
OperationResult = Outcomes | pa.Table


class RecordOperation(Protocol):
    """One chunk of validated records in, one outcome per record out."""

    @property
    def name(self) -> str: ...

    @property
    def keeps_input_order(self) -> bool:
        """Whether chunks must be applied one at a time in input order (repeated-key rules)."""
        ...

    def apply(self, records: pa.Table, context: OperationContext) -> OperationResult: ...


def split_result(result: OperationResult, records: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(failures, outputs) of what an operation returned for ``records``."""
    if isinstance(result, Outcomes):
        return result.failures(records[RECORD_NUMBER]), result.outputs()
    return result, empty_outputs()


def record_dicts(records: pa.Table) -> list[tuple[int, dict[str, Any]]]:
    """(record number, column → value) per record, for operations that work record by record."""
    numbers = cast("list[int]", records[RECORD_NUMBER].to_pylist())
    values = records.drop_columns([n for n in records.column_names if n.startswith("__")])
    return list(zip(numbers, values.to_pylist(), strict=True))


@dataclass(frozen=True, slots=True)
class TableOperation:
    """insert, upsert or delete into the dataset's table, set-wise (targets/operations.py)."""

    operation: Operation

    @property
    def name(self) -> str:
        return self.operation.value

    @property
    def keeps_input_order(self) -> bool:
        # upsert and delete rely on input order for a key repeated in different chunks (last
        # upsert wins, first delete succeeds); inserts of different chunks commute.
        return self.operation != Operation.INSERT

    def apply(self, records: pa.Table, context: OperationContext) -> OperationResult:
        return context.writer.apply_records(context.dataset, self.operation, records)
