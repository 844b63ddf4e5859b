"""The seam between the engine and what a batch does with each record.

An operation receives one chunk of validated records (an Arrow table with the dataset's columns
and the record numbers) and a context, and returns one outcome per record: the records it could
not apply, as ERRORS_SCHEMA rows with a code and message; every other record succeeded. The
built-in insert, upsert and delete write into the dataset's table through the transaction the
chunk's claim holds, so their effect commits with the chunk's ledger row (exactly once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from batchyard.apply.ports import RecordWriter
from batchyard.domain.batches import Operation
from batchyard.domain.schema import Dataset


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


class RecordOperation(Protocol):
    """One chunk of validated records in, the records that failed (ERRORS_SCHEMA) out."""

    @property
    def name(self) -> str: ...

    @property
    def keeps_input_order(self) -> bool:
        """Whether chunks must be applied one at a time in input order (repeated-key rules)."""
        ...

    def apply(self, records: pa.Table, context: OperationContext) -> pa.Table: ...


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

    def apply(self, records: pa.Table, context: OperationContext) -> pa.Table:
        return context.writer.apply_records(context.dataset, self.operation, records)


def operation_for(operation: Operation) -> RecordOperation:
    """The record operation a batch's ``operation`` names."""
    return TableOperation(operation)
