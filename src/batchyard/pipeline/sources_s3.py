"""``s3://bucket/key`` batch sources: only the buckets the server is configured for.

The service's own objects (other batches' inputs and results) are never a source, whatever
bucket they share. A glob (``s3://bucket/prefix/*.csv``) is expanded when the batch is created,
so the batch lists the objects it will import and each one is copied like any other source.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from batchyard.domain.batches import Source
from batchyard.domain.errors import InvalidSource, SourceUnavailable
from batchyard.pipeline import keys
from batchyard.settings import Settings
from batchyard.storage.s3 import S3Connection, S3Location, parse_s3_url

if TYPE_CHECKING:
    from obstore import BytesStream

#: A glob may expand to at most this many objects (each becomes one source of the batch).
MAX_GLOB_MATCHES = 1000
_GLOB = re.compile(r"[*?\[]")
_LIST_PAGE = 1000
_READ_CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class S3Object:
    """An S3 source opened for copying: its size, its bytes in order, and a name for detection."""

    size: int
    chunks: AsyncIterator[bytes]
    name: str


@dataclass
class S3Sources:
    """Which buckets sources may come from, and how to reach them (one store per bucket)."""

    connection: S3Connection
    buckets: frozenset[str]
    #: Where the service keeps its own objects (storage bucket, prefix/batches): never a source.
    reserved: S3Location | None = None
    _stores: dict[str, S3Store] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Sources:
        """BATCHYARD_S3_SOURCE_BUCKETS, or else the storage bucket when storage is on S3."""
        storage_url = settings.resolved_storage_url()
        storage = parse_s3_url(storage_url) if storage_url.startswith("s3://") else None
        if settings.s3_source_buckets is not None:
            buckets = {b.strip() for b in settings.s3_source_buckets.split(",") if b.strip()}
        else:
            buckets = {storage.bucket} if storage else set()
        reserved = None
        if storage is not None:
            own = keys.batch_prefix("").rstrip("/")
            reserved = S3Location(storage.bucket, f"{storage.key}/{own}".lstrip("/"))
        return cls(S3Connection.from_settings(settings), frozenset(buckets), reserved)

    def check(self, url: str) -> S3Location:
        """The bucket and key ``url`` names, if sources may come from there (else InvalidSource)."""
        try:
            location = parse_s3_url(url)
        except ValueError as error:
            raise InvalidSource(f"source {error}", details={"url": url}) from None
        if not self.buckets:
            raise InvalidSource(
                "s3:// sources are not enabled on this server (see BATCHYARD_S3_SOURCE_BUCKETS)",
                details={"url": url},
            )
        if location.bucket not in self.buckets:
            raise InvalidSource(
                f"source {url}: bucket {location.bucket!r} is not one this server reads from",
                details={"url": url, "allowed_buckets": sorted(self.buckets)},
            )
        if not location.key:
            raise InvalidSource(f"source {url} names a bucket but no object", details={"url": url})
        if self._is_reserved(location.bucket, location.key):
            raise InvalidSource(
                f"source {url} lies in batchyard's own storage", details={"url": url}
            )
        return location

    async def expand(self, sources: Sequence[Source]) -> tuple[Source, ...]:
        """Each s3 glob replaced by the objects it matches (in key order); others unchanged."""
        expanded: list[Source] = []
        for source in sources:
            url = source.url or ""
            if url.lower().startswith("s3://") and _GLOB.search(url):
                if source.sha256:
                    raise InvalidSource(
                        f"source {url} is a glob; a sha256 can only be given for one object",
                        details={"url": url},
                    )
                expanded.extend(Source(url=match) for match in await self._matches(url))
            else:
                expanded.append(source)
        return tuple(expanded)

    async def open(self, url: str) -> S3Object:
        """Start reading the object ``url`` names (SourceUnavailable if it cannot be read)."""
        location = self.check(url)
        try:
            result = await obstore.get_async(self._store(location.bucket), location.key)
        except FileNotFoundError:
            raise SourceUnavailable(f"source {url} does not exist") from None
        except BaseError as error:
            raise SourceUnavailable(f"source {url} could not be read: {error}") from None
        return S3Object(
            size=int(result.meta["size"]),
            chunks=_chunks(url, result.stream(min_chunk_size=_READ_CHUNK_BYTES)),
            name=PurePosixPath(location.key).name,
        )

    async def _matches(self, url: str) -> list[str]:
        location = self.check(url)
        pattern = location.key.split("/")
        literal = []
        for segment in pattern:
            if _GLOB.search(segment):
                break
            literal.append(segment)
        found: list[str] = []
        listing = obstore.list(
            self._store(location.bucket), prefix="/".join(literal) or None, chunk_size=_LIST_PAGE
        )
        try:
            async for page in listing:
                found.extend(
                    meta["path"]
                    for meta in page
                    if _match(meta["path"], pattern)
                    and not self._is_reserved(location.bucket, meta["path"])
                )
                if len(found) > MAX_GLOB_MATCHES:
                    raise InvalidSource(
                        f"source {url} matches more than {MAX_GLOB_MATCHES} objects",
                        details={"url": url, "max_matches": MAX_GLOB_MATCHES},
                    )
        except BaseError as error:
            raise InvalidSource(f"source {url} could not be listed: {error}") from None
        if not found:
            raise InvalidSource(f"source {url} matches no objects", details={"url": url})
        return [f"s3://{location.bucket}/{key}" for key in sorted(found)]

    def _is_reserved(self, bucket: str, key: str) -> bool:
        reserved = self.reserved
        if reserved is None or bucket != reserved.bucket:
            return False
        return key == reserved.key or key.startswith(f"{reserved.key}/")

    def _store(self, bucket: str) -> S3Store:
        if bucket not in self._stores:
            self._stores[bucket] = self.connection.store(bucket)
        return self._stores[bucket]


def _match(key: str, pattern: list[str]) -> bool:
    """Shell-style, one path segment per pattern segment: ``*`` never crosses a ``/``."""
    segments = key.split("/")
    return len(segments) == len(pattern) and all(
        fnmatch.fnmatchcase(segment, part) for segment, part in zip(segments, pattern, strict=True)
    )


async def _chunks(url: str, stream: BytesStream) -> AsyncIterator[bytes]:
    """The object's bytes, with a read failure half-way reported as the source's failure."""
    try:
        async for chunk in stream:
            yield bytes(chunk)
    except BaseError as error:
        raise SourceUnavailable(f"source {url} failed while reading: {error}") from None
