"""Request and response bodies, one per use (the domain types never leave through the API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from batchyard.domain.batches import (
    Batch,
    BatchOptions,
    HistoryEntry,
    InputFormat,
    Operation,
    Source,
)
from batchyard.domain.errors import bounded_message
from batchyard.domain.schema import (
    MAX_FIELD_NAME,
    MAX_NULL_MARKER_LENGTH,
    MAX_NULL_MARKERS,
    Dataset,
)
from batchyard.domain.statuses import BatchStatus
from batchyard.operations.registry import available_operations

SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
#: The most columns a dataset may declare (PostgreSQL's limit on a table's columns).
MAX_COLUMNS = 1600
#: An input field a column reads: any header text, within bounds.
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_FIELD_NAME)]
NullMarker = Annotated[str, StringConstraints(max_length=MAX_NULL_MARKER_LENGTH)]
NullMarkers = Annotated[list[NullMarker], Field(max_length=MAX_NULL_MARKERS)]
OPERATION_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class OptionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parallel_streams: int = Field(default=3, ge=1, le=32)
    max_errors: int | None = Field(default=None, ge=0)
    atomic: bool = False
    ignore_unknown_columns: bool = False
    delimiter: Literal[",", "\t", ";", "|"] = Field(
        default=",", description="CSV field separator: comma, tab, semicolon or pipe"
    )
    columns: dict[FieldName, Annotated[str, StringConstraints(max_length=63)]] | None = Field(
        default=None,
        max_length=MAX_COLUMNS,
        description="Input field → column for this batch, overriding the columns' from",
    )
    null_markers: NullMarkers | None = Field(
        default=None, description="CSV texts read as null for this batch (default: the dataset's)"
    )
    operation: dict[str, Any] | None = Field(
        default=None,
        description="The operation's settings, checked against the schema GET /operations "
        "publishes for it (http: url, method, headers, timeout, concurrency, rate_per_second, "
        "max_attempts)",
    )
    max_error_rate: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Fail validation when invalid records exceed this share of the records "
        "(0 < r <= 1); judged at the end of validation, and after each chunk once 1,000 "
        "records were read",
    )
    resubmits: str | None = Field(
        default=None,
        pattern=UUID_PATTERN,
        description="The batch whose failed records this batch sends again (your batch, "
        "same dataset); shown as `resubmits` in the batch",
    )
    dry_run: bool = Field(
        default=False,
        description="Do everything but write: records are applied in a transaction that is "
        "rolled back; the batch ends completed with the results a real run would have",
    )

    def to_domain(self) -> BatchOptions:
        return BatchOptions(**self.model_dump())


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=4096)
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)


class BatchCreate(BaseModel):
    """JSON form of POST /batches: URLs for the service to fetch."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=63)
    sources: list[str | SourceIn] = Field(min_length=1, max_length=1000)
    format: InputFormat | None = None
    operation: str = Field(
        default=Operation.INSERT,
        pattern=OPERATION_PATTERN,
        description="insert, upsert, delete, http or another operation GET /operations lists",
    )
    hash: str | None = Field(default=None, pattern=SHA256_PATTERN)
    options: OptionsIn = Field(default_factory=OptionsIn)
    notify_url: str | None = Field(default=None, max_length=4096)

    @field_validator("hash")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    def domain_sources(self) -> tuple[Source, ...]:
        return tuple(
            Source(url=s)
            if isinstance(s, str)
            else Source(url=s.url, sha256=s.sha256.lower() if s.sha256 else None)
            for s in self.sources
        )


class ColumnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    type: str
    nullable: bool = True
    max_length: int | None = None
    pattern: str | None = None
    min: Any = None
    max: Any = None
    enum: list[str] | None = None
    precision: int | None = None
    scale: int | None = None
    input_field: FieldName | None = Field(
        default=None,
        alias="from",
        description="The input field (CSV header, JSON key, Parquet column) the column is read "
        "from; default: the column's name",
    )
    default: Any = Field(
        default=None, description="The value taken when the input has no such field at all"
    )


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    columns: list[ColumnIn] = Field(min_length=1, max_length=MAX_COLUMNS)
    primary_key: list[str] = Field(default_factory=list)
    null_markers: NullMarkers | None = Field(
        default=None, description='CSV texts read as null (default: [""], an empty field)'
    )


class ColumnPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str
    type: str
    nullable: bool
    max_length: int | None = None
    pattern: str | None = None
    min: Any = None
    max: Any = None
    enum: list[str] | None = None
    precision: int | None = None
    scale: int | None = None
    input_field: str | None = Field(default=None, alias="from")
    default: Any = None


class DatasetPublic(BaseModel):
    name: str
    primary_key: list[str]
    columns: list[ColumnPublic]
    null_markers: list[str] | None = None
    row_count: int
    created_ts: float | None

    @classmethod
    def of(cls, dataset: Dataset, row_count: int) -> DatasetPublic:
        body = dataset.to_dict()
        return cls(
            name=dataset.name,
            primary_key=body["primary_key"],
            columns=[ColumnPublic.model_validate(c) for c in body["columns"]],
            null_markers=body.get("null_markers"),
            row_count=row_count,
            created_ts=dataset.created_ts,
        )


class DatasetList(BaseModel):
    datasets: list[DatasetPublic]
    next_cursor: str | None = None


class Download(BaseModel):
    url: str
    failed_records_url: str
    validity_ts: float


class BatchPublic(BaseModel):
    batch: str
    owner: str | None = Field(description="Name of the user who created the batch")
    dataset: str
    operation: str
    status: BatchStatus
    format: InputFormat | None
    created_ts: float
    updated_ts: float
    started_ts: float | None
    completed_ts: float | None
    total_operations: int | None
    processed_operations: int
    successful_operations: int
    failed_operations: int
    progress_percentage: float
    hash: str | None
    error_message: str | None
    sources: list[dict[str, Any]]
    options: dict[str, Any]
    notify_url: str | None
    retry_of: str | None = Field(
        default=None, description="The batch this one retries (POST /batches/{batch}/retry)"
    )
    resubmits: str | None = Field(
        default=None, description="The batch whose failed records this one sends again"
    )
    dry_run: bool = Field(
        default=False, description="A dry run (options.dry_run): nothing was written"
    )
    download: Download | None = None

    @classmethod
    def of(cls, batch: Batch, download: Download | None = None) -> BatchPublic:
        counts = batch.counts
        return cls(
            batch=batch.id,
            owner=batch.owner_name,
            dataset=batch.dataset,
            operation=batch.operation,
            status=batch.status,
            format=batch.format,
            created_ts=batch.created_ts,
            updated_ts=batch.updated_ts,
            started_ts=batch.started_ts,
            completed_ts=batch.completed_ts,
            total_operations=counts.total,
            processed_operations=counts.processed,
            successful_operations=counts.successful,
            failed_operations=counts.failed,
            progress_percentage=counts.progress_percentage,
            hash=batch.hash,
            error_message=bounded_message(batch.error_message) if batch.error_message else None,
            sources=[s.to_json() for s in batch.sources],
            options=shown_options(batch),
            notify_url=batch.notify_url,
            retry_of=batch.options.retry_of,
            resubmits=batch.options.resubmits or batch.options.retry_of,
            dry_run=batch.options.dry_run,
            download=download,
        )


def shown_options(batch: Batch) -> dict[str, Any]:
    """The batch's options with the operation's secret settings (``writeOnly``) redacted."""
    options = batch.options.to_json()
    if "operation" in options:
        known = available_operations().get(batch.operation)
        options["operation"] = known.shown(options["operation"]) if known else {}
    return options


class BatchList(BaseModel):
    batches: list[BatchPublic]
    next_cursor: str | None


class HistoryEntryPublic(BaseModel):
    batch: str
    status: BatchStatus
    total_operations: int | None
    processed_operations: int
    successful_operations: int
    failed_operations: int
    log: str
    updated_ts: float

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryPublic:
        return cls(
            batch=entry.batch_id,
            status=entry.status,
            total_operations=entry.counts.total,
            processed_operations=entry.counts.processed,
            successful_operations=entry.counts.successful,
            failed_operations=entry.counts.failed,
            log=entry.log,
            updated_ts=entry.updated_ts,
        )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
