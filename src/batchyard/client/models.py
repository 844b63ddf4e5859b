"""The typed objects the SDK returns: the HTTP contract's resources with timezone-aware datetimes.

Field names follow DESIGN.md's batch resource, except the batch's own id, which the API calls
``batch`` and the SDK calls ``id`` (``HistoryEntry.batch_id``). Unknown fields from a newer
server are ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from batchyard.domain.batches import InputFormat, Operation
from batchyard.domain.statuses import TERMINAL, BatchStatus

__all__ = [
    "Batch",
    "BatchStatus",
    "Column",
    "Dataset",
    "DatasetSchema",
    "Download",
    "HistoryEntry",
    "InputFormat",
    "IssuedToken",
    "Operation",
    "Role",
    "Source",
    "Statement",
    "Token",
    "User",
]


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """One input of a batch: a URL (None for an uploaded file) and its expected SHA-256."""

    url: str | None
    sha256: str | None = None


class Download(msgspec.Struct, frozen=True, kw_only=True):
    """Temporary signed URLs to a completed batch's files; they work without a token."""

    url: str
    failed_records_url: str
    validity_ts: datetime


class Batch(msgspec.Struct, frozen=True, kw_only=True):
    """One import job, as the server last reported it."""

    id: str = msgspec.field(name="batch")
    #: Name of the user who created the batch.
    owner: str | None = None
    dataset: str
    #: insert, upsert, delete, http, or an operation a package registers on the server.
    operation: str
    status: BatchStatus
    format: InputFormat | None = None
    created_ts: datetime
    updated_ts: datetime
    started_ts: datetime | None = None
    completed_ts: datetime | None = None
    total_operations: int | None = None
    processed_operations: int = 0
    successful_operations: int = 0
    failed_operations: int = 0
    progress_percentage: float = 0.0
    hash: str | None = None
    error_message: str | None = None
    sources: list[Source] = msgspec.field(default_factory=list)
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    notify_url: str | None = None
    #: The batch this one retries (``ingest.retry_batch``).
    retry_of: str | None = None
    #: The batch whose failed records this one sends again.
    resubmits: str | None = None
    #: A dry run (``options={"dry_run": True}``): nothing was written; the counts and results
    #: say what a real run would do.
    dry_run: bool = False
    download: Download | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the batch will not change any more (completed, failed, cancelled…)."""
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        """Completed with every record applied."""
        return self.status == BatchStatus.COMPLETED and self.failed_operations == 0


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A status snapshot: the counts and the log as they were when the batch entered ``status``."""

    batch_id: str = msgspec.field(name="batch")
    status: BatchStatus
    total_operations: int | None = None
    processed_operations: int = 0
    successful_operations: int = 0
    failed_operations: int = 0
    log: str = ""
    updated_ts: datetime


class Column(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One column of a dataset's schema (unset constraints are left out of the request)."""

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
    #: The input field (CSV header, JSON key, Parquet column) the column is read from (the
    #: API's ``from``); None: the field of the column's own name.
    from_: str | None = msgspec.field(default=None, name="from")
    #: The value taken when the input has no such field at all; None: no default.
    default: Any = None


class DatasetSchema(msgspec.Struct, frozen=True, kw_only=True):
    """What declares a dataset: its name, columns and primary key (the POST /datasets body)."""

    name: str
    columns: list[Column]
    primary_key: list[str] = msgspec.field(default_factory=list)
    #: The CSV texts read as null (None: the server's default, an empty field).
    null_markers: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The schema as the JSON body DESIGN.md shows."""
        body: dict[str, Any] = msgspec.to_builtins(self)
        if self.null_markers is None:
            del body["null_markers"]
        return body


class Dataset(msgspec.Struct, frozen=True, kw_only=True):
    """A declared dataset and how many rows its table holds."""

    name: str
    primary_key: list[str]
    columns: list[Column]
    null_markers: list[str] | None = None
    row_count: int = 0
    created_ts: datetime | None = None


class BatchPage(msgspec.Struct, frozen=True):
    """One page of GET /batches (the clients iterate over pages for the caller)."""

    batches: list[Batch]
    next_cursor: str | None = None


class OperationInfo(msgspec.Struct, frozen=True, kw_only=True):
    """An operation the server has: what it does, and the JSON Schema of its settings."""

    name: str
    description: str
    settings_schema: dict[str, Any]


class OperationList(msgspec.Struct, frozen=True):
    operations: list[OperationInfo]


class DatasetList(msgspec.Struct, frozen=True):
    """One page of GET /datasets (the clients fetch every page for the caller)."""

    datasets: list[Dataset]
    next_cursor: str | None = None


class Statement(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a role allows: ``actions`` ('*' patterns), on ``datasets`` (None: all); its
    create_batch may run only ``operations`` (None: every operation)."""

    actions: list[str]
    datasets: list[str] | None = None
    operations: list[str] | None = None


class Role(msgspec.Struct, frozen=True, kw_only=True):
    """A built-in or custom role and its statements."""

    name: str
    statements: list[Statement]
    sees_all_batches: bool = False
    builtin: bool = False


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A user as administrators see them."""

    name: str
    role: str
    disabled: bool = False
    created_ts: datetime


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """A token's id and validity (never the token itself)."""

    token_id: str
    user: str
    created_ts: datetime
    expires_ts: datetime | None = None
    revoked_ts: datetime | None = None


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as issued: ``token`` is shown now and never again."""

    token_id: str
    user: str
    token: str
    expires_ts: datetime | None = None


class UserCreated(msgspec.Struct, frozen=True):
    user: User
    token: IssuedToken


class UserList(msgspec.Struct, frozen=True):
    users: list[User]


class TokenList(msgspec.Struct, frozen=True):
    tokens: list[Token]


class RoleList(msgspec.Struct, frozen=True):
    roles: list[Role]
