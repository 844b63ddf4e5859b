"""How each column type is held in Arrow once validated.

This is the contract between the validation stage and the targets.
"""

from __future__ import annotations

import pyarrow as pa

from batchyard.domain.schema import MAX_DECIMAL_PRECISION, Column, ColumnType, Dataset
from batchyard.pipeline.chunks import RECORD_NUMBER

_FIXED: dict[ColumnType, pa.DataType] = {
    ColumnType.STRING: pa.string(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    # Canonical lower-case 8-4-4-4-12 text; targets store it in their native uuid type if any.
    ColumnType.UUID: pa.string(),
    # Validated JSON text; targets store it as jsonb/text.
    ColumnType.JSON: pa.string(),
}


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a validated value of ``column`` has."""
    if column.type == ColumnType.DECIMAL:
        precision = column.precision if column.precision is not None else MAX_DECIMAL_PRECISION
        return pa.decimal128(precision, column.scale or 0)
    return _FIXED[column.type]


def valid_schema(dataset: Dataset) -> pa.Schema:
    """The schema of a ValidatedChunk.valid table for ``dataset``."""
    fields = [pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in dataset.columns]
    fields.append(pa.field(RECORD_NUMBER, pa.int64(), nullable=False))
    return pa.schema(fields)
