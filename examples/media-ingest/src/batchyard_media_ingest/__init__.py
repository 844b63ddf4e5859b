"""media_ingest: fetch each record's media URL; its SHA-256, size and content type are the output.

A batchyard operation (entry point group ``batchyard.operations``). It only reads from the URL,
so running a chunk again after a crash (batchyard promises at least once outside its database)
changes nothing but the time spent.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyarrow as pa

from batchyard.operations import LogLevel, OperationContext, Outcomes, record_dicts

__all__ = ["MediaIngest"]


class MediaIngest:
    """Fetch each record's media URL and keep its SHA-256, size and content type."""

    description = "Fetch each record's media URL; output its sha256, size and content_type."
    keeps_input_order = False
    settings_schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url_column": {"type": "string", "default": "url"},
            "max_bytes": {"type": "integer", "minimum": 1, "default": 100 * 2**20},
            "concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": 4},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        },
    }

    def apply(self, records: pa.Table, context: OperationContext) -> Outcomes:
        settings = context.settings
        column = str(settings.get("url_column", "url"))
        outcomes = Outcomes()
        with (
            httpx.Client(timeout=float(settings.get("timeout", 30))) as client,
            ThreadPoolExecutor(int(settings.get("concurrency", 4))) as pool,
        ):
            jobs = [
                (number, pool.submit(self._fetch, client, values.get(column), settings, context))
                for number, values in record_dicts(records)
            ]
            for number, job in jobs:
                outcome = job.result()
                if "error" in outcome:
                    outcomes.failed(number, outcome["error"], outcome["message"])
                else:
                    outcomes.succeeded(number, outcome)
        context.log(f"media_ingest: chunk {context.chunk_index} fetched", LogLevel.DEBUG)
        return outcomes

    @staticmethod
    def _fetch(
        client: httpx.Client, url: Any, settings: Any, context: OperationContext
    ) -> dict[str, Any]:
        if context.cancelled():
            return {"error": "not_fetched", "message": "the batch was cancelled"}
        if not isinstance(url, str) or not url:
            return {"error": "no_url", "message": "the record has no URL"}
        limit = int(settings.get("max_bytes", 100 * 2**20))
        digest, size = hashlib.sha256(), 0
        try:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    return {
                        "error": f"http_{response.status_code}",
                        "message": f"GET {url} answered {response.status_code}",
                    }
                for block in response.iter_bytes():
                    size += len(block)
                    if size > limit:
                        return {"error": "too_large", "message": f"more than {limit} bytes"}
                    digest.update(block)
                content_type = response.headers.get("content-type")
        except httpx.HTTPError as error:
            return {"error": "fetch_failed", "message": f"GET {url}: {error}"}
        return {"sha256": digest.hexdigest(), "size": size, "content_type": content_type}
