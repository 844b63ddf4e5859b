"""Differential tests: generated inputs through the real pipeline, compared with a reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from differential.budget import CHUNK_BYTES, PG_CHUNK_BYTES
from differential.harness import PipelineHarness, harness_settings, open_harness


@pytest.fixture
def harness(backend: str, target_url: str, tmp_path: Path) -> Iterator[PipelineHarness]:
    """The pipeline on ``backend``'s target, with tiny chunks."""
    chunk_bytes = CHUNK_BYTES if backend == "sqlite" else PG_CHUNK_BYTES
    with open_harness(harness_settings(tmp_path / "data", target_url, chunk_bytes)) as opened:
        yield opened
