"""Operations: what a batch does with each record, and the interface a package implements.

A plugin is an object (or a class made with no arguments) registered under the entry point
group ``batchyard.operations``, with ``description``, ``settings_schema``, ``keeps_input_order``
and ``apply(records, context) -> Outcomes``; docs/operations.md shows one.
"""

from batchyard.apply.operations import OperationContext, Outcomes, record_dicts
from batchyard.domain.batches import LogLevel
from batchyard.domain.outcomes import RECORD_NUMBER

__all__ = ["RECORD_NUMBER", "LogLevel", "OperationContext", "Outcomes", "record_dicts"]
