"""Targets used from many threads at once, as the pipeline's workers do (asyncio.to_thread)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from batchyard.domain.batches import Operation
from batchyard.domain.errors import PipelineError
from batchyard.domain.schema import Column, ColumnType, Dataset
from batchyard.pipeline.arrow_types import valid_schema
from batchyard.pipeline.chunks import RECORD_NUMBER
from batchyard.targets import open_target

ITEMS = Dataset(
    "items",
    (Column("id", ColumnType.INTEGER, nullable=False), Column("label", ColumnType.STRING)),
    primary_key=("id",),
)
PER_CHUNK = 500


def chunk_rows(index: int) -> pa.Table:
    ids = list(range(index * PER_CHUNK, (index + 1) * PER_CHUNK))
    data = {"id": ids, "label": [f"l{i}" for i in ids], RECORD_NUMBER: [i + 1 for i in ids]}
    return pa.table(data, schema=valid_schema(ITEMS))


def test_parallel_chunks_each_apply_once(target_url: str) -> None:
    target = open_target(target_url)
    target.ensure_table(ITEMS)

    def work(index: int) -> int:
        # Every chunk is sent twice, from different threads: only one may apply it.
        with target.transaction() as tx:
            outcome = tx.apply_chunk(ITEMS, "b", index % 8, Operation.INSERT, chunk_rows(index % 8))
        return outcome.succeeded

    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(work, range(16)))
        assert results == [PER_CHUNK] * 16
        assert target.row_count("items") == 8 * PER_CHUNK
        assert sorted(target.committed_chunks("b")) == list(range(8))
    finally:
        target.close()


def test_a_held_chunk_is_passed_over_and_settling_waits_for_it(pg_url: str) -> None:
    """What lets workers share a batch: a chunk being applied is skipped by the others (they
    try its lock), and a batch that ends waits for it, so the ledger it reads is final."""
    target = open_target(pg_url)
    target.ensure_table(ITEMS)
    holding = threading.Event()
    try:

        def slow_worker() -> None:
            with target.transaction() as tx:
                assert tx.lock_chunk("b", 3, wait=False)
                holding.set()
                time.sleep(0.5)
                tx.apply_chunk(ITEMS, "b", 3, Operation.INSERT, chunk_rows(3))

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(slow_worker)
            assert holding.wait(10)
            with target.transaction() as tx:
                assert not tx.lock_chunk("b", 3, wait=False)  # another worker passes it over
                assert tx.lock_chunk("b", 4, wait=False)
            started = time.monotonic()
            with target.holding_chunks("b", [3, 4]):
                waited = time.monotonic() - started
                assert sorted(target.committed_chunks("b")) == [3]
                with target.transaction() as tx:  # while held, nobody takes these chunks
                    assert not tx.lock_chunk("b", 4, wait=False)
        assert waited > 0.2
        assert target.row_count("items") == PER_CHUNK
    finally:
        target.close()


def test_parallel_ensure_table(target_url: str) -> None:
    target = open_target(target_url)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: target.ensure_table(ITEMS), range(8)))
        assert target.row_count("items") == 0
    finally:
        target.close()


def test_unreachable_postgresql_is_a_pipeline_error() -> None:
    target = open_target("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(PipelineError, match="target database unavailable"):
        target.row_count("items")
