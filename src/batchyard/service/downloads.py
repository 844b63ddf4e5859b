"""Temporary token-less links to an ended batch's result files.

On S3 the object store signs them (presigned GETs: the bytes never pass through the API);
on local disk the service signs its own URLs to the results routes with its HMAC key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from batchyard.domain.batches import Batch, now
from batchyard.pipeline import keys
from batchyard.service.batches import download_query
from batchyard.service.container import Services
from batchyard.service.result_files import results_summary


@dataclass(frozen=True, slots=True)
class DownloadLinks:
    """Where to GET the results and failed-records files, and until when (epoch seconds)."""

    url: str
    failed_records_url: str
    validity_ts: float


def public_base_url(public_url: str | None, server: tuple[str, int | None] | None) -> str:
    """Where links point: BATCHYARD_PUBLIC_URL, else the address the server itself answered on.

    Never the request's Host header: anyone can send one, and a link pointing at a host of their
    choosing would hand a victim's download (and its signature) to them.
    """
    if public_url:
        return public_url.rstrip("/")
    if server is None or not server[0] or server[0].startswith("/"):  # a Unix socket
        return "http://127.0.0.1"
    host, port = server
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}" if port is None else f"http://{netloc}:{port}"


async def download_links(svc: Services, batch: Batch, base_url: str) -> DownloadLinks:
    """Signed links to ``batch``'s files; ``base_url`` is the service's public URL
    (``public_base_url``)."""
    await results_summary(svc, batch)  # 409 with the reason when it has none
    ttl = svc.settings.download_ttl
    # Taken before signing, so the link is valid at least until the time we announce.
    validity_ts = float(int(now()) + ttl)
    results = await svc.blobs.presigned_url(keys.results_key(batch.id), timedelta(seconds=ttl))
    if results is not None:
        failed = await svc.blobs.presigned_url(
            keys.failed_records_key(batch.id), timedelta(seconds=ttl)
        )
        assert failed is not None  # the same store signs both or neither
        return DownloadLinks(results, failed, validity_ts)
    base = base_url.rstrip("/")
    results_path = f"/batches/{batch.id}/results"
    failed_path = f"/batches/{batch.id}/failed-records"
    query, expires = download_query(svc, batch, results_path)
    failed_query, _ = download_query(svc, batch, failed_path)
    return DownloadLinks(
        f"{base}{results_path}?{query}", f"{base}{failed_path}?{failed_query}", float(expires)
    )
