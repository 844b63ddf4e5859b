"""options.max_error_rate: judged on every record at the end, early only once enough were read."""

from __future__ import annotations

import pytest

from batchyard.domain.batches import BatchOptions
from batchyard.domain.errors import TooManyErrors
from batchyard.pipeline.manifest import ChunkEntry, Manifest
from batchyard.pipeline.stage_validate import RATE_MIN_RECORDS, check_error_rate


def manifest(records: int, invalid: int) -> Manifest:
    entry = ChunkEntry(0, 1, records, records - invalid, invalid)
    return Manifest(chunks=[entry])


@pytest.mark.parametrize(
    ("rate", "records", "invalid", "final", "trips"),
    [
        (0.1, 10, 2, True, True),  # 20% > 10%
        (0.2, 10, 2, True, False),  # exactly the rate passes
        (0.1, 10, 2, False, False),  # too few records to judge early
        (0.01, RATE_MIN_RECORDS, 11, False, True),  # enough read: stops early
        (0.01, RATE_MIN_RECORDS, 10, False, False),
        (1.0, 10, 10, True, False),  # 1 allows every record to be invalid
    ],
)
def test_error_rate(rate: float, records: int, invalid: int, final: bool, trips: bool) -> None:
    options = BatchOptions(max_error_rate=rate)
    if trips:
        with pytest.raises(TooManyErrors, match="max_error_rate"):
            check_error_rate(options, manifest(records, invalid), final=final)
    else:
        check_error_rate(options, manifest(records, invalid), final=final)


def test_no_rate_never_trips() -> None:
    check_error_rate(BatchOptions(), manifest(10, 10), final=True)
