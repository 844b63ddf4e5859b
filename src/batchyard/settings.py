"""Service configuration from BATCHYARD_* environment variables (pydantic-settings)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from batchyard.store.tables import SCHEMA as METADATA_SCHEMA

#: Schema names, like dataset names: lower-case identifiers, never quoted into SQL unchecked.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


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
    #: PostgreSQL schema of the datasets' tables in the target database (created if missing).
    #: batchyard's own tables, the job queue and the chunk ledger live in the schema
    #: ``batchyard`` instead, out of reach of any dataset name. Unused with SQLite targets.
    target_schema: str = "public"
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
    #: Seconds an upload may send nothing before it is cut off (408; its batch ends failed).
    upload_idle_seconds: float = Field(default=60.0, gt=0)
    #: Requests per minute one token may send (per API process; 0: no limit). 429 beyond.
    rate_limit_per_minute: int = Field(default=3000, ge=0)
    #: Uploads one user may be sending at once (per API process; 0: no limit). 429 beyond.
    quota_concurrent_uploads: int = Field(default=16, ge=0)
    #: Bytes one user may upload in a rolling 24 hours (per API process; 0: no limit).
    quota_upload_bytes_per_day: int = Field(default=2**40, ge=0)
    #: Unfinished batches one user may have at once (counted in the metadata DB; 0: no limit).
    quota_unfinished_batches: int = Field(default=1000, ge=0)
    #: Datasets one user may declare (counted in the metadata DB; 0: no limit).
    quota_datasets: int = Field(default=1000, ge=0)
    #: Seconds a signed download URL stays valid.
    download_ttl: int = Field(default=3600, ge=1)
    #: Days an ended batch is kept (its input, results, history and log; the rows it loaded
    #: stay): older ones are deleted as if by DELETE /batches/{id}. Unset: kept until deleted.
    retention_days: float | None = Field(default=None, gt=0)
    #: Allow URL sources and webhooks on loopback/private/link-local addresses (tests only:
    #: it lets any user reach this machine and its network).
    allow_private_sources: bool = False
    #: Comma-separated networks (CIDR, e.g. ``10.20.0.0/16``) that URL sources and webhooks may
    #: reach although they are not public; everything else private stays refused.
    trusted_networks: str | None = None
    #: Seconds one URL source may take from the first connection to its last byte (retries
    #: included): past it the batch fails with ``source_timeout``.
    source_deadline_seconds: float = Field(default=4 * 3600.0, gt=0)
    #: Slowest a URL source may send, in bytes per second averaged over
    #: ``source_rate_window_seconds`` (the first window includes the wait for the answer);
    #: 0 turns the check off.
    source_min_bytes_per_second: int = Field(default=1024, ge=0)
    #: The window the minimum rate is measured over.
    source_rate_window_seconds: float = Field(default=30.0, gt=0)
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
    #: How many of one user's batches run at once: with the default, one user's backlog takes
    #: one slot and leaves the other to everybody else. Queue mode: a user's batches beyond
    #: this many wait until other users' batches have started.
    user_concurrent_batches: int = Field(default=1, ge=1)
    #: Jobs one `batchyard worker` runs at once: batches' own jobs, the helper jobs that share a
    #: batch's chunks (options.parallel_streams in all, 3 by default), deletions and the sweep.
    #: The default runs one batch at full width beside one other job.
    worker_concurrency: int = Field(default=4, ge=1)
    #: Target size of a chunk of input, in bytes (the unit of the ledger and of resume; of
    #: commit too, except on SQLite, see commit_chunks). A chunk is
    #: held a few times over while it is validated and applied (docs/pipeline.md, "Memory"):
    #: 2 MiB keeps the process running a batch under 300 MB at its peak, at the speed of
    #: 8 MiB chunks (which peak about 90 MiB higher); larger chunks gain no speed.
    chunk_bytes: int = Field(default=2 * 2**20, ge=1024)
    #: Chunks a target with one writer (SQLite) commits in one transaction at most: the chunks
    #: waiting for the writer are committed together (each with its ledger row), which saves
    #: each commit's own cost without holding larger chunks (docs/pipeline.md).
    commit_chunks: int = Field(default=4, ge=1)
    #: Most records in a chunk: a chunk's memory follows its records as much as its bytes (a
    #: 10 MB file of 5 million two-byte records, each one failing, is one chunk by bytes).
    chunk_records: int = Field(default=100_000, ge=1)
    #: Largest record, in bytes as sent (a CSV record or JSON line with its line ending, the
    #: string and binary values of a Parquet row): a larger one fails alone with
    #: record_too_large, without ever being held whole.
    max_record_bytes: int = Field(default=16 * 2**20, ge=64)
    #: Most fields a CSV header (or a Parquet schema) may name; a wider one is refused at once
    #: (validation_failed).
    max_header_columns: int = Field(default=4096, ge=1)
    #: Longest CSV header, in bytes; a longer one is refused at once (validation_failed).
    max_header_bytes: int = Field(default=2**20, ge=64)
    #: Public base URL of the API (e.g. https://imports.example.com), used in signed download
    #: links. Unset: the address the server answered on (its own socket, never the request's
    #: Host header); set it whenever clients reach the server through a proxy or another name.
    public_url: str | None = None
    #: Attempts at delivering a batch's notify_url webhook before giving up.
    webhook_attempts: int = Field(default=6, ge=1, le=20)
    #: Seconds before the first webhook retry; each later wait doubles (capped at 5 minutes).
    webhook_backoff: float = Field(default=1.0, gt=0)
    #: Seconds one webhook attempt may take in all: connecting, sending, and the receiver's
    #: answer (a receiver that trickles is cut off then).
    webhook_timeout: float = Field(default=10.0, gt=0)

    #: Log line format of `serve` and `worker`: "text" for a terminal, or "json" for log
    #: collectors (one object per line: timestamp, level, logger, message, batch_id, request_id).
    log_format: Literal["text", "json"] = "text"
    #: Bearer token a Prometheus scrape of ``GET /metrics`` must send. Unset: /metrics is open
    #: to anyone who reaches the port (it shows counts only: no names, ids or addresses).
    metrics_token: str | None = None

    @field_validator("target_schema")
    @classmethod
    def _check_target_schema(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value) or value.startswith("pg_"):
            raise ValueError(
                f"{value!r} is not a schema name batchyard can use ({_IDENTIFIER.pattern})"
            )
        if value in (METADATA_SCHEMA, "information_schema"):
            raise ValueError(f"{value!r} is reserved: datasets' tables need a schema of their own")
        return value

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        """Refuse a malformed network at start, not at the first request that needs it."""
        for part in (value or "").split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        return value

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
