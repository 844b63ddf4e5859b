"""Differential tests: generated inputs through the real pipeline, compared with a reference.

The suite runs a fixed-seed budget (about a minute in all); ``make fuzz`` runs the same tests
with ``DIFFERENTIAL_SCALE`` times as many examples and fresh random seeds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from differential.harness import PipelineHarness, harness_settings, open_harness

#: How many times the suite's example budget ``make fuzz`` runs.
SCALE = int(os.environ.get("DIFFERENTIAL_SCALE", "1"))

settings.register_profile(
    "differential",
    derandomize=SCALE == 1,
    deadline=None,
    print_blob=True,
    database=None,
    # One harness (databases, storage, an event loop) serves every example of a test: each
    # example imports into a dataset of its own, so examples never see each other's rows.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def examples(n: int) -> int:
    """The example budget of a test: ``n`` in the suite, ``n * DIFFERENTIAL_SCALE`` fuzzing."""
    return n * SCALE


#: Chunk size of the harnesses: tens of bytes, so that every file crosses many chunk boundaries.
CHUNK_BYTES = 64


@pytest.fixture
def harness(target_url: str, tmp_path: Path) -> Iterator[PipelineHarness]:
    """The pipeline on ``backend``'s target, with tiny chunks."""
    with open_harness(harness_settings(tmp_path / "data", target_url, CHUNK_BYTES)) as opened:
        yield opened
