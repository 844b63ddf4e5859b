"""The batch: one import job into one dataset, and the values that describe it."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from batchyard.domain.statuses import TERMINAL, BatchStatus


class Operation(enum.StrEnum):
    """The built-in operations that write into the dataset's table.

    A batch's ``operation`` is a name: one of these, or one a package registers
    (``batchyard.operations``), such as the built-in ``http``.
    """

    INSERT = "insert"
    UPSERT = "upsert"  #: by the dataset's primary key
    DELETE = "delete"  #: by the dataset's primary key


class InputFormat(enum.StrEnum):
    """The record formats batchyard reads (each optionally gzip'd)."""

    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


@dataclass(frozen=True, slots=True)
class Source:
    """One input of a batch: a URL to fetch, or (``url`` None) the uploaded body."""

    url: str | None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """Per-batch knobs, as given in ``options`` at create time."""

    #: How many sources are fetched (and chunks loaded) at once.
    parallel_streams: int = 3
    #: More invalid records than this fail the batch in validation; None means no limit.
    max_errors: int | None = None
    #: All records in one commit, or none.
    atomic: bool = False
    #: Skip input columns the dataset does not declare instead of rejecting the input.
    ignore_unknown_columns: bool = False
    #: CSV field separator.
    delimiter: str = ","
    #: Input field → column, for this batch only: overrides the columns' ``from``.
    columns: Mapping[str, str] | None = None
    #: The CSV texts read as null for this batch (None: the dataset's).
    null_markers: tuple[str, ...] | None = None
    #: Invalid records over this share of the records (0 < r <= 1) fail the batch in validation,
    #: judged as docs/data-rules.md says; None means no limit.
    max_error_rate: float | None = None
    #: The batch whose failed records this one sends again (its failed-records file, fixed).
    resubmits: str | None = None
    #: The batch this one was made from by POST /batches/{id}/retry (never set by a client).
    retry_of: str | None = None
    #: Everything but the lasting effect: records are applied in a transaction that is rolled
    #: back, so the results say what a real run would do and the table is left as it was.
    dry_run: bool = False
    #: The operation's own settings, checked against the JSON schema it publishes.
    operation: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        # Stored options come back from JSON as a list and a dict.
        if self.null_markers is not None:
            object.__setattr__(self, "null_markers", tuple(self.null_markers))
        if self.columns is not None:
            object.__setattr__(self, "columns", dict(self.columns))
        if self.operation is not None:
            object.__setattr__(self, "operation", dict(self.operation))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parallel_streams": self.parallel_streams,
            "max_errors": self.max_errors,
            "atomic": self.atomic,
            "ignore_unknown_columns": self.ignore_unknown_columns,
            "delimiter": self.delimiter,
            "max_error_rate": self.max_error_rate,
            "resubmits": self.resubmits,
            "retry_of": self.retry_of,
            "dry_run": self.dry_run,
        }
        if self.columns is not None:
            out["columns"] = dict(self.columns)
        if self.null_markers is not None:
            out["null_markers"] = list(self.null_markers)
        if self.operation is not None:
            out["operation"] = dict(self.operation)
        return out


@dataclass(frozen=True, slots=True)
class Counts:
    """How many operations a batch has and has done."""

    total: int | None = None
    processed: int = 0
    successful: int = 0
    failed: int = 0

    @property
    def progress_percentage(self) -> float:
        if not self.total:
            return 0.0
        return round(100.0 * self.processed / self.total, 2)


@dataclass(frozen=True, slots=True)
class Batch:
    """One import job: its input, its target, where it is, and what it has done."""

    id: str
    owner_id: str
    dataset: str
    #: An operation's name: an ``Operation`` or one a package registers.
    operation: str
    status: BatchStatus
    format: InputFormat | None
    sources: tuple[Source, ...]
    options: BatchOptions
    created_ts: float
    updated_ts: float
    counts: Counts = field(default_factory=Counts)
    started_ts: float | None = None
    completed_ts: float | None = None
    hash: str | None = None
    error_message: str | None = None
    notify_url: str | None = None
    #: The owning user's name, as read along with the batch (None: the owner is not known).
    owner_name: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_upload(self) -> bool:
        """True when the input is the request body rather than URLs to fetch."""
        return all(s.url is None for s in self.sources)

    @property
    def copied_by_api(self) -> bool:
        """True when an API process copies the input (a request body), not the pipeline: not
        a retry, whose input the pipeline makes from the batch it retries."""
        return self.is_upload and self.options.retry_of is None

    def with_counts(self, counts: Counts) -> Batch:
        return replace(self, counts=counts)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One snapshot of a batch, taken at a status transition."""

    batch_id: str
    status: BatchStatus
    counts: Counts
    log: str
    updated_ts: float


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line the pipeline wrote while working on a batch."""

    ts: float
    level: LogLevel
    message: str

    def render(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts))
        millis = int((self.ts % 1) * 1000)
        return f"{stamp}.{millis:03d}Z {self.level.value.upper():<7} {self.message}"


def now() -> float:
    """Epoch seconds rounded to milliseconds, the precision of every *_ts field."""
    return round(time.time(), 3)
