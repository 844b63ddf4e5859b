"""How one batch reads its input into its dataset: which field fills each column, which columns
are checked, and which CSV texts are null.

Every reader and the validator ask this one object, so the mapping of input fields onto columns
is decided once per batch, from the dataset (each column's ``from``, ``null_markers``) and the
batch (``options.columns``, ``options.null_markers``, the operation).
"""

from __future__ import annotations

from dataclasses import dataclass

from batchyard.domain.batches import BatchOptions, Operation
from batchyard.domain.errors import InvalidRequest, InvalidSchema
from batchyard.domain.schema import (
    DEFAULT_NULL_MARKERS,
    MAX_FIELD_NAME,
    Column,
    Dataset,
    check_field_name,
    check_null_markers,
)

__all__ = ["Reading", "check_batch_mapping"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One batch's view of its input fields.

    ``fields`` maps each column to the input field it reads in this batch (a column whose field
    a batch gave to another column reads none: it is missing). ``checked`` are the columns
    validated and stored: all of them, but only the key for a delete (its other fields are
    read, not judged).
    """

    dataset: Dataset
    options: BatchOptions
    fields: dict[str, str]
    checked: frozenset[str]
    null_markers: tuple[str, ...]
    _columns_by_field: dict[str, Column]

    @classmethod
    def of(
        cls,
        dataset: Dataset,
        options: BatchOptions | None = None,
        operation: str = Operation.INSERT,
    ) -> Reading:
        """The reading for a batch; InvalidRequest if its options.columns cannot apply."""
        options = options if options is not None else BatchOptions()
        fields = {c.name: c.field for c in dataset.columns}
        overrides = check_batch_mapping(dataset, options)
        taken = set(overrides)
        for column in dataset.columns:  # the batch gave these columns' fields to others
            if fields[column.name] in taken:
                del fields[column.name]
        for field, column_name in overrides.items():
            fields[column_name] = field
        by_field = {field: dataset.column(name) for name, field in fields.items()}
        checked = (
            frozenset(dataset.primary_key)
            if operation == Operation.DELETE and dataset.primary_key
            else frozenset(dataset.column_names)
        )
        markers = options.null_markers
        if markers is None:
            markers = dataset.null_markers
        return cls(
            dataset=dataset,
            options=options,
            fields=fields,
            checked=checked,
            null_markers=markers if markers is not None else DEFAULT_NULL_MARKERS,
            _columns_by_field={f: c for f, c in by_field.items() if c is not None},
        )

    def field_of(self, column: Column) -> str | None:
        """The input field ``column`` reads in this batch (None: none, so it is missing)."""
        return self.fields.get(column.name)

    def column_for(self, field: str) -> Column | None:
        """The column that reads ``field`` (None: the field is unknown to the dataset)."""
        return self._columns_by_field.get(field)

    def is_checked(self, column: Column) -> bool:
        """Whether the batch validates and stores ``column`` (a delete: only its key)."""
        return column.name in self.checked

    def describe(self, column: Column) -> str:
        """The column as a message names it: with the field it reads when that differs."""
        field = self.field_of(column)
        if field is None or field == column.name:
            return repr(column.name)
        return f"{column.name!r} (read from {field[:100]!r})"


def check_batch_mapping(dataset: Dataset, options: BatchOptions) -> dict[str, str]:
    """A batch's options.columns (input field → column), or InvalidRequest saying what is wrong.

    Each target must be a column of the dataset, named once; each field a name a header can
    hold. The null markers are checked here too, as the other batch-level reading option.
    """
    try:
        if options.null_markers is not None:
            check_null_markers(options.null_markers, "options.null_markers")
        mapping = dict(options.columns or {})
        targets: dict[str, str] = {}
        for field, column_name in mapping.items():
            check_field_name(field, "options.columns: a field")
            if not isinstance(column_name, str) or dataset.column(column_name) is None:
                raise InvalidRequest(
                    f"options.columns maps {field[:100]!r} to {str(column_name)[:100]!r}, "
                    f"which is not a column of dataset {dataset.name!r}",
                    details={"field": field[:MAX_FIELD_NAME], "column": str(column_name)[:100]},
                )
            other = targets.setdefault(column_name, field)
            if other != field:
                raise InvalidRequest(
                    f"options.columns maps both {other[:100]!r} and {field[:100]!r} to column "
                    f"{column_name!r}",
                    details={"column": column_name},
                )
    except InvalidSchema as error:
        raise InvalidRequest(error.message, details=error.details) from None
    return mapping
