"""Service configuration from BATCHYARD_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server and workers read from their environment.

    Built once by the entry point and passed down; nothing reads the environment at import time.
    """

    model_config = SettingsConfigDict(env_prefix="BATCHYARD_", extra="ignore")

    #: Where the embedded default keeps its SQLite databases, blobs and secrets.
    data_dir: Path = Path("./batchyard-data")
    #: Metadata database (SQLAlchemy URL). Default: SQLite in data_dir.
    database_url: str | None = None
    #: Target database where datasets' tables live. Default: SQLite in data_dir, or the
    #: metadata database when that is PostgreSQL.
    target_url: str | None = None
    #: Blob storage for inputs and results: ``s3://bucket/prefix`` or a directory.
    #: Default: files under data_dir/blobs.
    storage_url: str | None = None
    #: Endpoint of an S3-compatible server (e.g. http://127.0.0.1:8333); unset means AWS S3
    #: (or AWS_ENDPOINT_URL). Credentials and region come from the standard AWS_* variables.
    s3_endpoint: str | None = None
    #: Accept a plain-http S3 endpoint on a non-loopback host (loopback is always accepted).
    s3_allow_http: bool = False
    #: Comma-separated buckets that ``s3://`` batch sources may read. Default: the storage
    #: bucket when storage is on S3, else none (s3:// sources refused).
    s3_source_buckets: str | None = None
    #: The first admin's token; generated and written to data_dir/admin-token when unset.
    admin_token: str | None = None
    #: Key for signed download URLs and token hashing; generated into data_dir when unset.
    secret_key: str | None = None
    #: Largest input accepted, compressed and decompressed alike.
    max_upload_bytes: int = Field(default=50 * 2**30, ge=1)
    #: Seconds a signed download URL stays valid.
    download_ttl: int = Field(default=3600, ge=1)
    #: Days an ended batch is kept (its input, results, history and log; the rows it loaded
    #: stay): older ones are deleted as if by DELETE /batches/{id}. Unset: kept until deleted.
    retention_days: float | None = Field(default=None, gt=0)
    #: Allow URL sources on loopback/private/link-local addresses (tests, trusted networks).
    allow_private_sources: bool = False
    #: Directory file:// sources may read from (admins only); unset disables file:// sources.
    file_sources_root: Path | None = None
    #: Who runs the pipeline: "embedded" (inside the server process) or "queue" (procrastinate
    #: jobs in the PostgreSQL metadata database, run by `batchyard worker` processes).
    runner: Literal["embedded", "queue"] = "embedded"
    #: Whether `batchyard serve` also works on the queue in its own process ("queue" runner);
    #: `serve --no-worker` turns it off, leaving the work to `batchyard worker` processes.
    serve_worker: bool = True
    #: Seconds between a worker's heartbeats (also how often it polls for jobs and aborts).
    queue_heartbeat_seconds: float = Field(default=5.0, gt=0)
    #: A worker silent this many seconds is taken for dead: its jobs are retried elsewhere.
    queue_stalled_seconds: float = Field(default=30.0, gt=0)
    #: Seconds between two sweeps for stalled jobs and batches without a job (1-59).
    queue_sweep_seconds: int = Field(default=10, ge=1, le=59)
    #: How many batches the embedded runner works on at once.
    concurrent_batches: int = Field(default=2, ge=1)
    #: Jobs one `batchyard worker` runs at once: batches' own jobs, the helper jobs that share a
    #: batch's chunks (options.parallel_streams in all, 3 by default), deletions and the sweep.
    #: The default runs one batch at full width beside one other job.
    worker_concurrency: int = Field(default=4, ge=1)
    #: Target size of a chunk of input, in bytes (the unit of commit and resume).
    chunk_bytes: int = Field(default=32 * 2**20, ge=1024)
    #: Largest record, in bytes as sent (a CSV record or JSON line with its line ending, the
    #: string and binary values of a Parquet row): a larger one fails alone with
    #: record_too_large, without ever being held whole.
    max_record_bytes: int = Field(default=16 * 2**20, ge=64)
    #: Most fields a CSV header may name; a wider header is refused at once (validation_failed).
    max_header_columns: int = Field(default=4096, ge=1)
    #: Longest CSV header, in bytes; a longer one is refused at once (validation_failed).
    max_header_bytes: int = Field(default=2**20, ge=64)
    #: Public base URL used in signed download links (default: the request's own URL).
    public_url: str | None = None
    #: Attempts at delivering a batch's notify_url webhook before giving up.
    webhook_attempts: int = Field(default=6, ge=1, le=20)
    #: Seconds before the first webhook retry; each later wait doubles (capped at 5 minutes).
    webhook_backoff: float = Field(default=1.0, gt=0)
    #: Seconds one webhook attempt may take.
    webhook_timeout: float = Field(default=10.0, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'batchyard.db').resolve()}"

    def resolved_target_url(self) -> str:
        if self.target_url:
            return self.target_url
        if self.database_url and self.database_url.startswith("postgresql"):
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'target.db').resolve()}"

    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return (self.data_dir / "blobs").resolve().as_uri()
