"""S3 and S3-compatible servers: ``s3://`` URLs and the one place that builds obstore S3Stores.

Credentials and region are left to obstore, which reads the standard AWS_* variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION…), so every way AWS
tools are configured works here too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore.store import S3Config

    from batchyard.settings import Settings

from batchyard.domain.errors import InvalidRequest

#: S3's bucket naming rules (lowercase, digits, dots, hyphens; 3-63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key (or key prefix) inside it, as written ``s3://bucket/key``."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_url(url: str) -> S3Location:
    """Split ``s3://bucket/key``; ValueError names what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise ValueError(f"{url!r} is not an s3:// URL")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{url!r}: an s3:// URL is s3://bucket/key, without credentials or '?'")
    if not _BUCKET.fullmatch(parts.netloc):
        raise ValueError(f"{url!r} does not name a valid bucket")
    key = unquote(parts.path).lstrip("/")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise ValueError(f"{url!r}: '.' and '..' segments are not allowed in keys")
    return S3Location(parts.netloc, key.rstrip("/"))


@dataclass(frozen=True, slots=True)
class S3Connection:
    """How to reach the S3 server: its endpoint (None: AWS, or AWS_ENDPOINT_URL) and http policy."""

    endpoint: str | None = None
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Connection:
        return cls(settings.s3_endpoint or None, settings.s3_allow_http)

    def __post_init__(self) -> None:
        if self.endpoint is None:
            return
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(
                f"BATCHYARD_S3_ENDPOINT {self.endpoint!r} must be an http(s)://host[:port] URL"
            )
        if parts.scheme == "http" and not (self.allow_http or _is_loopback(parts.hostname)):
            raise InvalidRequest(
                f"BATCHYARD_S3_ENDPOINT {self.endpoint!r} uses plain http on a non-loopback host; "
                "use https, or set BATCHYARD_S3_ALLOW_HTTP=true to accept that"
            )

    @property
    def _http_ok(self) -> bool:
        return self.endpoint is not None and urlsplit(self.endpoint).scheme == "http"

    def store(self, bucket: str, prefix: str | None = None) -> S3Store:
        """A store for ``bucket`` (keys relative to ``prefix``), credentials from AWS_*."""
        config: S3Config = {"endpoint": self.endpoint} if self.endpoint else {}
        # obstore addresses buckets by path unless told otherwise, which S3-compatible servers
        # (SeaweedFS, MinIO…) expect; AWS accepts both.
        return S3Store(
            bucket,
            prefix=prefix or None,
            config=config,
            client_options={"allow_http": True} if self._http_ok else None,
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
