"""Operation outputs live in the ledger row, committed with the chunk, on both backends; a
ledger made before outputs existed gains the column when a target opens it."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from batchyard.domain.outcomes import ERRORS_SCHEMA, OUTPUTS_SCHEMA, ChunkOutcome
from batchyard.targets import Target, open_target
from batchyard.targets.dialect import Dialect


@pytest.fixture
def target(target_url: str) -> Iterator[Target]:
    opened = open_target(target_url)
    try:
        yield opened
    finally:
        opened.close()


def outcome(index: int) -> ChunkOutcome:
    failures = pa.Table.from_pylist(
        [
            {
                "record_number": 2,
                "column": None,
                "code": "http_400",
                "message": "no",
                "key": None,
                "raw": None,
            }
        ],
        schema=ERRORS_SCHEMA,
    )
    outputs = pa.Table.from_pylist(
        [
            {"record_number": 1, "output": '{"id":1,"nested":{"a":[1,2]}}'},
            {"record_number": 3, "output": '"text answer"'},
        ],
        schema=OUTPUTS_SCHEMA,
    )
    return ChunkOutcome(index, 2, failures, outputs)


def commit(target: Target, batch_id: str, index: int) -> None:
    claim = target.claim_chunk(batch_id, index, wait=True)
    assert claim is not None and not isinstance(claim, ChunkOutcome)
    claim.commit(outcome(index))


def test_outputs_commit_with_the_chunk_and_come_back(target: Target) -> None:
    commit(target, "batch-o", 0)
    stored = target.chunk_outcome("batch-o", 0)
    assert stored is not None
    assert stored.outputs.equals(outcome(0).outputs)
    assert stored.failures.equals(outcome(0).failures)
    # Claimed again (a replay after a crash): the stored outcome, outputs included.
    again = target.claim_chunk("batch-o", 0, wait=True)
    assert isinstance(again, ChunkOutcome) and again.outputs.equals(outcome(0).outputs)


def test_a_ledger_without_outputs_gains_the_column(target_url: str) -> None:
    first = open_target(target_url)
    try:
        dialect: Dialect = first._dialect
        with first._write() as session:
            dialect.prepare(session)
            session.execute(f"DROP TABLE IF EXISTS {dialect.ledger_table}")
            session.execute(  # the ledger as it was before operations had outputs
                f"CREATE TABLE {dialect.ledger_table} (batch_id TEXT NOT NULL,"
                f" chunk_index {dialect.integer_type} NOT NULL,"
                f" succeeded {dialect.integer_type} NOT NULL, failures {dialect.blob_type},"
                f" committed_ts {dialect.float_type} NOT NULL,"
                f" PRIMARY KEY (batch_id, chunk_index)){dialect.table_options}"
            )
            session.execute(f"INSERT INTO {dialect.ledger_table} VALUES ('old', 0, 5, NULL, 1.0)")
    finally:
        first.close()
    upgraded = open_target(target_url)
    try:
        old = upgraded.chunk_outcome("old", 0)
        assert old is not None and old.succeeded == 5 and old.outputs.num_rows == 0
        commit(upgraded, "batch-n", 0)
        stored = upgraded.chunk_outcome("batch-n", 0)
        assert stored is not None and stored.outputs.num_rows == 2
    finally:
        upgraded.close()
