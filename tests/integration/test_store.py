"""The metadata store on real SQLite and PostgreSQL: schema, batches, transitions, history, log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from batchyard.domain.batches import (
    Batch,
    BatchOptions,
    Counts,
    InputFormat,
    LogLevel,
    Operation,
    Source,
)
from batchyard.domain.errors import BatchNotFound, Conflict, InvalidRequest, InvalidTransition
from batchyard.domain.statuses import ACTIVE, TERMINAL, TRANSITIONS, BatchStatus
from batchyard.pipeline.context import BatchRecorder, PipelineContext
from batchyard.storage.blobs import BlobStore
from batchyard.store import batches as rows
from batchyard.store.database import MetadataStore
from batchyard.store.retention import expire_ended_batches
from batchyard.store.tables import metadata
from batchyard.targets import open_target
from support.backend_settings import backend_settings

S = BatchStatus


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("pg_url")).replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[MetadataStore]:
    opened = await MetadataStore.open(store_url)
    yield opened
    await opened.close()


def make_batch(
    *,
    owner: str = "alice",
    status: BatchStatus = S.NEW,
    created_ts: float = 1_700_000_000.0,
    dataset: str = "orders",
) -> Batch:
    return Batch(
        id=str(uuid.uuid4()),
        owner_id=owner,
        dataset=dataset,
        operation=Operation.UPSERT,
        status=status,
        format=InputFormat.CSV,
        sources=(Source("https://example.com/a.csv", "ab" * 32), Source(None)),
        options=BatchOptions(parallel_streams=5, max_errors=10, atomic=True, delimiter=";"),
        created_ts=created_ts,
        updated_ts=created_ts,
        hash="cd" * 32,
        notify_url="https://example.com/hook",
    )


async def insert(store: MetadataStore, batch: Batch) -> Batch:
    async with store.begin() as conn:
        await rows.insert_batch(conn, batch)
    return batch


async def get(store: MetadataStore, batch_id: str) -> Batch:
    async with store.begin() as conn:
        return await rows.get_batch(conn, batch_id, owner_id=None)


async def history_statuses(store: MetadataStore, batch_id: str) -> list[BatchStatus]:
    async with store.begin() as conn:
        return [entry.status for entry in await rows.get_history(conn, batch_id)]


def _schema_diffs(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_tables(store: MetadataStore, store_url: str) -> None:
    async with store.begin() as conn:
        assert await conn.run_sync(_schema_diffs) == []
    # Opening again (a restart, a second process) finds nothing left to migrate.
    again = await MetadataStore.open(store_url)
    await again.close()


async def test_batch_round_trips_and_hides_from_other_owners(store: MetadataStore) -> None:
    batch = await insert(store, make_batch())
    async with store.begin() as conn:
        assert await rows.get_batch(conn, batch.id, owner_id="alice") == batch
        assert await rows.get_batch(conn, batch.id, owner_id=None) == batch
        for batch_id, owner in [(batch.id, "bob"), ("not-a-uuid", None), (str(uuid.uuid4()), None)]:
            with pytest.raises(BatchNotFound):
                await rows.get_batch(conn, batch_id, owner_id=owner)


async def test_status_alone_reads_as_the_batch_does(store: MetadataStore) -> None:
    batch = await insert(store, make_batch(status=S.VALIDATING))
    async with store.read() as conn:
        assert await rows.get_batch_status(conn, batch.id) == S.VALIDATING
        for batch_id in ("not-a-uuid", str(uuid.uuid4())):
            with pytest.raises(BatchNotFound):
                await rows.get_batch_status(conn, batch_id)


async def test_a_pipeline_status_check_leaves_the_polled_batch_cached(
    store: MetadataStore, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    batch = await insert(store, make_batch(status=S.PROCESSING))
    loads = 0

    async def load() -> Batch:
        nonlocal loads
        loads += 1
        async with store.read() as conn:
            return await rows.get_batch(conn, batch.id, owner_id=None)

    settings = backend_settings(backend, request, tmp_path)
    target = open_target(f"sqlite:///{tmp_path / 'target.db'}")
    async with httpx.AsyncClient() as http:
        ctx = PipelineContext(
            settings, store, BlobStore.from_url(str(tmp_path / "blobs")), target, http, print
        )
        await store.reads.load(("batch", batch.id), load)

        assert await BatchRecorder(ctx, batch.id).status() == S.PROCESSING
        await store.reads.load(("batch", batch.id), load)  # a client's poll right after

    target.close()
    assert loads == 1


async def test_a_cancel_reaches_validation_checks_within_their_freshness_bound(
    store: MetadataStore, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Checks between chunks share recent status reads; a cancel committed elsewhere is seen
    once the reads that came before it have aged, and the recorder's own transition is never
    answered from a read made before it."""
    batch = await insert(store, make_batch(status=S.VALIDATING))
    settings = backend_settings(backend, request, tmp_path)
    target = open_target(f"sqlite:///{tmp_path / 'target.db'}")
    async with httpx.AsyncClient() as http:
        ctx = PipelineContext(
            settings, store, BlobStore.from_url(str(tmp_path / "blobs")), target, http, print
        )
        rec = BatchRecorder(ctx, batch.id)
        assert await rec.recent_status(60.0) == S.VALIDATING
        async with store.begin() as conn:  # a client's cancel, through another connection
            await rows.transition_batch(conn, batch.id, S.CANCEL)

        assert await rec.recent_status(60.0) == S.VALIDATING  # read before the cancel
        await asyncio.sleep(0.06)
        assert await rec.recent_status(0.05) == S.CANCEL

        await rec.transition(S.CANCELLING)
        assert await rec.recent_status(60.0) == S.CANCELLING

    target.close()


async def test_a_cancel_committed_in_this_process_reaches_the_next_check_at_once(
    store: MetadataStore, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A transition committed through this process's store is pushed to the batch's listeners
    once committed: the recorder's next check reads again however young its last read was.
    Counters and log lines are not transitions: they push nothing and cost no read."""
    batch = await insert(store, make_batch(status=S.VALIDATING))
    other = await insert(store, make_batch(status=S.VALIDATING))
    settings = backend_settings(backend, request, tmp_path)
    target = open_target(f"sqlite:///{tmp_path / 'target.db'}")
    heard: list[str] = []
    async with httpx.AsyncClient() as http:
        ctx = PipelineContext(
            settings, store, BlobStore.from_url(str(tmp_path / "blobs")), target, http, print
        )
        rec = BatchRecorder(ctx, batch.id)
        with (
            store.changes.listening(batch.id, rec.changed),
            store.changes.listening(batch.id, lambda: heard.append("batch")),
            store.changes.listening(other.id, lambda: heard.append("other")),
        ):
            assert await rec.recent_status(60.0) == S.VALIDATING
            async with store.begin(writes_batch=batch.id) as conn:
                await rows.advance_counts(conn, batch.id, Counts(10, 5, 5, 0))
                await rows.append_log(conn, batch.id, LogLevel.INFO, "progress")
            assert heard == []
            async with store.begin() as conn:  # a client's cancel, as service.cancel_batch
                await rows.transition_batch(conn, batch.id, S.CANCEL)
            assert heard == ["batch"]
            assert await rec.recent_status(60.0) == S.CANCEL
        async with store.begin() as conn:  # nobody listens any more
            await rows.transition_batch(conn, other.id, S.CANCEL)
    target.close()
    assert heard == ["batch"]


async def test_list_pages_newest_first_without_gaps_or_duplicates(store: MetadataStore) -> None:
    created = []
    for i in range(23):
        # Pairs share a created_ts, so the cursor must break ties by id.
        ts = 1_700_000_000.0 + (i // 2) + 0.123
        owner = "alice" if i % 3 else "bob"
        status = S.FAILED if i % 4 == 0 else S.NEW
        dataset = "orders" if i % 5 else "users"
        created.append(
            await insert(
                store, make_batch(owner=owner, status=status, created_ts=ts, dataset=dataset)
            )
        )
    newest_first = sorted(created, key=lambda b: (b.created_ts, b.id), reverse=True)

    async def pages(
        owner_id: str | None = None, status: BatchStatus | None = None, dataset: str | None = None
    ) -> list[Batch]:
        seen: list[Batch] = []
        cursor: str | None = None
        while True:
            async with store.begin() as conn:
                page, cursor = await rows.list_batches(
                    conn, owner_id=owner_id, status=status, dataset=dataset, limit=4, cursor=cursor
                )
            assert len(page) <= 4
            seen.extend(page)
            if cursor is None:
                return seen

    assert await pages() == newest_first
    assert await pages(owner_id="alice") == [b for b in newest_first if b.owner_id == "alice"]
    assert await pages(status=S.FAILED) == [b for b in newest_first if b.status == S.FAILED]
    assert await pages(dataset="users") == [b for b in newest_first if b.dataset == "users"]


@pytest.mark.parametrize("cursor", ["garbage!", "", "WzFd", "eyJhIjogMX0"])
async def test_list_rejects_a_bad_cursor(store: MetadataStore, cursor: str) -> None:
    async with store.begin() as conn:
        with pytest.raises(InvalidRequest):
            await rows.list_batches(
                conn, owner_id=None, status=None, dataset=None, limit=10, cursor=cursor
            )


async def test_every_legal_transition_records_one_snapshot(store: MetadataStore) -> None:
    for source, targets in TRANSITIONS.items():
        for target in targets:
            batch = await insert(store, make_batch(status=source))
            async with store.begin() as conn:
                moved = await rows.transition_batch(conn, batch.id, target)
            assert moved.status == target
            assert await get(store, batch.id) == moved
            assert await history_statuses(store, batch.id) == [target, source]


async def test_an_illegal_transition_changes_nothing(store: MetadataStore) -> None:
    for source in BatchStatus:
        batch = await insert(store, make_batch(status=source))
        for target in set(BatchStatus) - TRANSITIONS[source]:
            async with store.begin() as conn:
                with pytest.raises(InvalidTransition) as raised:
                    await rows.transition_batch(conn, batch.id, target, error_message="x")
            assert raised.value.details == {"from": source.value, "to": target.value}
        assert await get(store, batch.id) == batch
        assert await history_statuses(store, batch.id) == [source]
    async with store.begin() as conn:
        with pytest.raises(BatchNotFound):
            await rows.transition_batch(conn, str(uuid.uuid4()), S.COPYING)


async def test_concurrent_transitions_from_one_status_only_one_wins(
    store: MetadataStore,
) -> None:
    batch = await insert(store, make_batch(status=S.COPIED))
    # PostgreSQL: both transactions first read "copied", then race their UPDATEs. SQLite
    # serializes writers at BEGIN IMMEDIATE, so there the race is decided by the lock.
    both_read = asyncio.Barrier(2) if store.dialect_name == "postgresql" else None

    async def attempt(to: BatchStatus) -> Batch:
        async with store.begin() as conn:
            if both_read is not None:
                assert (await rows.get_batch(conn, batch.id, owner_id=None)).status == S.COPIED
                await both_read.wait()
            return await rows.transition_batch(conn, batch.id, to)

    outcomes = await asyncio.gather(
        attempt(S.VALIDATING), attempt(S.HASH_MISMATCH), return_exceptions=True
    )
    winners = [o for o in outcomes if isinstance(o, Batch)]
    assert len(winners) == 1
    assert [type(o) for o in outcomes if not isinstance(o, Batch)] == [InvalidTransition]
    assert (await get(store, batch.id)).status == winners[0].status
    assert await history_statuses(store, batch.id) == [winners[0].status, S.COPIED]


async def test_history_is_newest_first_with_the_log_so_far(store: MetadataStore) -> None:
    batch = await insert(store, make_batch())
    async with store.begin() as conn:
        first = await rows.append_log(conn, batch.id, LogLevel.INFO, "copying 2 sources")
        await rows.transition_batch(conn, batch.id, S.COPYING)
    async with store.begin() as conn:
        second = await rows.append_log(conn, batch.id, LogLevel.WARNING, "slow source")
        third = await rows.append_log(conn, batch.id, LogLevel.INFO, "copied 10 MiB")
        await rows.transition_batch(conn, batch.id, S.COPIED, counts=Counts(total=7, processed=1))
        history = await rows.get_history(conn, batch.id)
        log = await rows.get_log(conn, batch.id)
    assert log == [first, second, third]
    assert [(h.status, h.log) for h in history] == [
        (S.COPIED, "\n".join(line.render() for line in log)),
        (S.COPYING, first.render()),
        (S.NEW, ""),
    ]
    assert history[0].counts == Counts(total=7, processed=1)
    assert history[1].counts == Counts()
    assert history[0].updated_ts >= history[1].updated_ts >= history[2].updated_ts


async def test_timestamps_follow_the_lifecycle(store: MetadataStore) -> None:
    batch = await insert(store, make_batch())
    assert (batch.started_ts, batch.completed_ts) == (None, None)
    async with store.begin() as conn:
        copying = await rows.transition_batch(conn, batch.id, S.COPYING)
        copied = await rows.transition_batch(conn, batch.id, S.COPIED)
    assert copying.started_ts is not None
    assert copying.updated_ts == copying.started_ts
    assert copying.completed_ts is None
    assert copied.started_ts == copying.started_ts
    async with store.begin() as conn:
        failed = await rows.transition_batch(conn, batch.id, S.FAILED, error_message="source 404")
    assert failed.completed_ts == failed.updated_ts
    assert failed.completed_ts >= copied.updated_ts
    assert failed.error_message == "source 404"
    assert failed.started_ts == copying.started_ts


async def test_update_counts_moves_progress_without_a_snapshot(store: MetadataStore) -> None:
    batch = await insert(store, make_batch(status=S.PROCESSING))
    counts = Counts(total=100, processed=40, successful=38, failed=2)
    async with store.begin() as conn:
        await rows.update_counts(conn, batch.id, counts)
        with pytest.raises(BatchNotFound):
            await rows.update_counts(conn, str(uuid.uuid4()), counts)
    stored = await get(store, batch.id)
    assert stored.counts == counts
    assert stored.updated_ts > batch.updated_ts
    assert await history_statuses(store, batch.id) == [S.PROCESSING]


async def test_counts_reported_by_several_workers_only_move_forward(
    store: MetadataStore,
) -> None:
    batch = await insert(store, make_batch(status=S.PROCESSING))
    later = Counts(total=100, processed=60, successful=59, failed=1)
    earlier = Counts(total=100, processed=40, successful=39, failed=1)
    async with store.begin() as conn:
        assert await rows.advance_counts(conn, batch.id, later)
        assert not await rows.advance_counts(conn, batch.id, earlier)  # a report that came late
        assert not await rows.advance_counts(conn, str(uuid.uuid4()), later)
    assert (await get(store, batch.id)).counts == later

    async with store.begin() as conn:
        await rows.transition_batch(conn, batch.id, S.CANCEL)
        done = Counts(total=100, processed=100, successful=99, failed=1)
        assert not await rows.advance_counts(conn, batch.id, done)  # only while processing
    assert (await get(store, batch.id)).counts == later


async def test_active_batches_are_listed_oldest_first(store: MetadataStore) -> None:
    expected: list[str] = []
    for i, status in enumerate(BatchStatus):
        batch = await insert(store, make_batch(status=status, created_ts=2e9 - i))
        if status in ACTIVE:
            expected.insert(0, batch.id)
        else:
            assert status in TERMINAL or status == S.DELETING
    async with store.begin() as conn:
        assert await rows.list_active_batch_ids(conn) == expected


async def test_idempotency_key_finds_the_first_batch(store: MetadataStore) -> None:
    first = make_batch()
    async with store.begin() as conn:
        await rows.insert_batch(conn, first, idempotency_key="k1")
        await rows.insert_batch(conn, make_batch(owner="bob"), idempotency_key="k1")
    async with store.begin() as conn:
        with pytest.raises(Conflict):
            await rows.insert_batch(conn, make_batch(), idempotency_key="k1")
        # The conflict left the transaction usable: the retry finds the first batch in it.
        assert await rows.find_batch_by_idempotency_key(conn, "alice", "k1") == first
        assert await rows.find_batch_by_idempotency_key(conn, "alice", "k2") is None


async def test_delete_batch_rows_removes_batch_history_and_log(store: MetadataStore) -> None:
    batch = await insert(store, make_batch(status=S.COMPLETED))
    kept = await insert(store, make_batch(status=S.COMPLETED))
    async with store.begin() as conn:
        await rows.append_log(conn, batch.id, LogLevel.INFO, "done")
        await rows.transition_batch(conn, batch.id, S.DELETING)
        await rows.delete_batch_rows(conn, batch.id)
        await rows.delete_batch_rows(conn, batch.id)  # retried deletes are no-ops
    async with store.begin() as conn:
        with pytest.raises(BatchNotFound):
            await rows.get_batch(conn, batch.id, owner_id=None)
        assert await rows.get_history(conn, batch.id) == []
        assert await rows.get_log(conn, batch.id) == []
        assert await rows.get_batch(conn, kept.id, owner_id=None) == kept
    async with store.begin() as conn:
        with pytest.raises(BatchNotFound):
            await rows.append_log(conn, batch.id, LogLevel.INFO, "too late")


async def test_stored_options_ignore_unknown_keys(store: MetadataStore) -> None:
    batch = await insert(store, replace(make_batch(), options=BatchOptions()))
    async with store.begin() as conn:
        await conn.exec_driver_sql(
            'UPDATE batches SET options = \'{"atomic": true, "from_the_future": 1}\''
        )
    assert (await get(store, batch.id)).options == BatchOptions(atomic=True)


async def test_retention_moves_only_batches_that_ended_before_the_cutoff(store):
    """Ended long ago: to ``deleting``, oldest first, with the reason in its log. Ended lately,
    still running, or already being deleted: untouched."""
    ended = {
        name: await insert(store, replace(make_batch(status=status), completed_ts=ts))
        for name, status, ts in [
            ("old_completed", S.COMPLETED, 1_000.0),
            ("old_failed", S.FAILED, 2_000.0),
            ("old_cancelled", S.CANCELLED, 1_500.0),
            ("recent", S.COMPLETED, 9_000.0),
            ("deleting", S.DELETING, 1_000.0),
        ]
    }
    running = await insert(store, make_batch(status=S.PROCESSING))

    async with store.begin() as conn:
        moved = await expire_ended_batches(conn, ended_before=5_000.0, reason="past retention")
    async with store.begin() as conn:
        again = await expire_ended_batches(conn, ended_before=5_000.0, reason="past retention")

    old = ["old_completed", "old_cancelled", "old_failed"]
    assert moved == [ended[name].id for name in old]
    assert again == []  # a second sweep (another process) finds nothing left to move
    for name in old:
        assert (await get(store, ended[name].id)).status == S.DELETING
        async with store.begin() as conn:
            log = await rows.get_log(conn, ended[name].id)
        assert [line.message for line in log] == ["past retention"]
    assert (await get(store, ended["recent"].id)).status == S.COMPLETED
    assert (await get(store, running.id)).status == S.PROCESSING


async def test_retention_moves_a_backlog_a_bounded_round_at_a_time(store):
    for ts in range(1, 6):
        await insert(store, replace(make_batch(status=S.COMPLETED), completed_ts=float(ts)))
    async with store.begin() as conn:
        first = await expire_ended_batches(conn, ended_before=10.0, reason="r", limit=3)
    async with store.begin() as conn:
        second = await expire_ended_batches(conn, ended_before=10.0, reason="r", limit=3)
    assert (len(first), len(second)) == (3, 2)
