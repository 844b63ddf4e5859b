"""``batchyard doctor``: what in a deployment's configuration must be fixed, and how.

Checks what the settings say (combinations that break replicas or workers, limits that cannot
work) and what the world says (the metadata database answers and is migrated, storage takes a
write). Nothing is changed but one small probe object in storage: the doctor never migrates.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from batchyard.settings import Settings
from batchyard.storage.blobs import BlobStore
from batchyard.store import probes
from batchyard.store.database import create_engine

#: Seconds a live check may take before its dependency counts as unreachable.
CHECK_TIMEOUT = 10.0
#: The probe object the storage check writes and removes.
PROBE_KEY = "health/doctor-probe"


class Severity(enum.StrEnum):
    OK = "ok"  #: nothing to do
    WARN = "warn"  #: works, but probably not what a production deployment wants
    FIX = "fix"  #: broken or unsafe: must be fixed (the doctor exits non-zero)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    subject: str
    message: str


def _shared(settings: Settings) -> bool:
    """A PostgreSQL metadata database is what lets several processes serve one deployment."""
    return settings.resolved_database_url().startswith("postgres")


def check_settings(settings: Settings) -> list[Finding]:
    """What the configuration alone says."""
    return [
        *_check_runner(settings),
        *_check_replicas(settings),
        *_check_exposure(settings),
        *_check_limits(settings),
    ]


def _check_runner(settings: Settings) -> list[Finding]:
    if settings.runner == "queue" and not _shared(settings):
        return [
            Finding(
                Severity.FIX,
                "runner",
                "BATCHYARD_RUNNER=queue needs BATCHYARD_DATABASE_URL to be PostgreSQL "
                "(postgresql+psycopg://…); nothing would run the batches",
            )
        ]
    return [Finding(Severity.OK, "runner", f"{settings.runner}")]


def _check_replicas(settings: Settings) -> list[Finding]:
    if not _shared(settings):
        return [Finding(Severity.OK, "secret key", "single process (SQLite): kept in the data dir")]
    found = []
    if not settings.secret_key:
        found.append(
            Finding(
                Severity.FIX,
                "secret key",
                "set BATCHYARD_SECRET_KEY to one long random value on every API replica and "
                "worker: each machine otherwise generates its own, and tokens and signed links "
                "made by one are refused by the others",
            )
        )
    if settings.storage_url is None or not settings.storage_url.startswith("s3://"):
        found.append(
            Finding(
                Severity.WARN,
                "storage",
                "storage is a local directory: workers and replicas on other machines cannot "
                "read it; use BATCHYARD_STORAGE_URL=s3://bucket/prefix",
            )
        )
    if settings.public_url is None:
        found.append(
            Finding(
                Severity.WARN,
                "public URL",
                "BATCHYARD_PUBLIC_URL is unset: download links name the server's own socket, "
                "not the address clients use behind a load balancer",
            )
        )
    return found or [Finding(Severity.OK, "replicas", "secret key, storage and public URL set")]


def _check_exposure(settings: Settings) -> list[Finding]:
    found = []
    if settings.allow_private_sources:
        found.append(
            Finding(
                Severity.FIX,
                "private sources",
                "unset BATCHYARD_ALLOW_PRIVATE_SOURCES (it is for tests): it lets every user "
                "make this server fetch from its own machine and network; allow chosen "
                "networks with BATCHYARD_TRUSTED_NETWORKS instead",
            )
        )
    if settings.s3_allow_http:
        found.append(
            Finding(Severity.WARN, "s3", "BATCHYARD_S3_ALLOW_HTTP sends S3 credentials in clear")
        )
    root = settings.file_sources_root
    if root is not None and not root.is_dir():
        found.append(
            Finding(
                Severity.FIX, "file sources", f"BATCHYARD_FILE_SOURCES_ROOT {root} is no directory"
            )
        )
    if settings.metrics_token is None:
        found.append(
            Finding(
                Severity.OK,
                "metrics",
                "GET /metrics is open (counts only); BATCHYARD_METRICS_TOKEN guards it",
            )
        )
    return found or [Finding(Severity.OK, "exposure", "private sources off")]


def _check_limits(settings: Settings) -> list[Finding]:
    found = []
    if settings.queue_stalled_seconds < 3 * settings.queue_heartbeat_seconds:
        found.append(
            Finding(
                Severity.FIX,
                "queue timing",
                f"BATCHYARD_QUEUE_STALLED_SECONDS ({settings.queue_stalled_seconds:g}) should be "
                f"at least 3 heartbeats ({3 * settings.queue_heartbeat_seconds:g}): live workers "
                "would be taken for dead and their jobs run twice over",
            )
        )
    if settings.chunk_bytes > settings.max_upload_bytes:
        found.append(
            Finding(
                Severity.WARN,
                "limits",
                "BATCHYARD_CHUNK_BYTES is larger than BATCHYARD_MAX_UPLOAD_BYTES: every batch "
                "is one chunk, so nothing is applied in parallel",
            )
        )
    if settings.webhook_timeout * settings.webhook_attempts > 3600:
        found.append(
            Finding(Severity.WARN, "webhooks", "one webhook may keep retrying for over an hour")
        )
    return found or [
        Finding(
            Severity.OK,
            "limits",
            f"uploads up to {settings.max_upload_bytes / 2**30:g} GiB, "
            f"chunks of {settings.chunk_bytes / 2**20:g} MiB",
        )
    ]


async def check_world(settings: Settings) -> list[Finding]:
    """What the metadata database and storage answer."""
    return [await _database(settings), await _storage(settings)]


async def _database(settings: Settings) -> Finding:
    url = make_url(settings.resolved_database_url())
    sqlite_file = Path(url.database or "")
    if url.get_backend_name() == "sqlite" and not await asyncio.to_thread(sqlite_file.exists):
        return Finding(
            Severity.WARN,
            "database",
            f"{url.database} does not exist yet: `batchyard serve` creates it on its first start",
        )
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as conn:
            version = await probes.schema_version(conn)
    except Exception as error:
        return Finding(Severity.FIX, "database", f"unreachable: {_reason(error)}")
    finally:
        await engine.dispose()
    if version.current is None:
        return Finding(
            Severity.WARN,
            "database",
            "reachable but empty: `batchyard serve` creates the schema on its first start",
        )
    if not version.known:
        return Finding(
            Severity.FIX,
            "database",
            f"schema at migration {version.current}, unknown to this batchyard (a newer "
            "version migrated it): run that version here too",
        )
    if not version.is_current:
        return Finding(
            Severity.WARN,
            "database",
            f"schema at migration {version.current}, this batchyard needs {version.head}: "
            "the next `batchyard serve` or worker start migrates it",
        )
    return Finding(Severity.OK, "database", f"reachable, schema at {version.head} (newest)")


async def _storage(settings: Settings) -> Finding:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            blobs = BlobStore.from_settings(settings)
            await blobs.write_stream(PROBE_KEY, _probe_bytes())
            await blobs.delete_prefix(PROBE_KEY)
    except Exception as error:
        return Finding(Severity.FIX, "storage", f"not writable: {_reason(error)}")
    return Finding(Severity.OK, "storage", f"writable ({_storage_name(settings)})")


def _storage_name(settings: Settings) -> str:
    url = settings.resolved_storage_url()
    return url if url.startswith("s3://") else url.removeprefix("file://")


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


async def _probe_bytes() -> AsyncIterator[bytes]:
    yield b"ok"
