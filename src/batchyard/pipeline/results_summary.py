"""What a batch's results files hold, in a few bytes: read to answer without opening them."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from batchyard.pipeline import keys
from batchyard.pipeline.arrow_io import read_bytes
from batchyard.storage.blobs import BlobStore


class ResultsSummary(msgspec.Struct, frozen=True):
    """Records per outcome in results.csv, and the failed-records file's format."""

    succeeded: int = 0
    failed: int = 0
    not_processed: int = 0
    #: "csv" or "jsonl": the failed-records file's format (the input's; CSV for Parquet).
    failed_records_format: str = "csv"

    @property
    def to_retry(self) -> int:
        """Records in the failed-records file: the ones a retry sends again."""
        return self.failed + self.not_processed

    @classmethod
    def of(cls, counts: Mapping[str, int], failed_records_format: str) -> ResultsSummary:
        return cls(
            succeeded=counts.get("succeeded", 0),
            failed=counts.get("failed", 0),
            not_processed=counts.get("not_processed", 0),
            failed_records_format=failed_records_format,
        )

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


async def read_results_summary(blobs: BlobStore, batch_id: str) -> ResultsSummary | None:
    """The batch's summary; None until its results files are written (or if they never are)."""
    key = keys.results_summary_key(batch_id)
    if not await blobs.exists(key):
        return None
    return msgspec.json.decode(await read_bytes(blobs, key), type=ResultsSummary)
