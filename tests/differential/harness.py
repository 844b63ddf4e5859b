"""The fastest faithful way to run one import: the real upload use case and ``run_batch``.

Each import goes through what a server does between the HTTP layer and the database: the
upload is streamed to blob storage by ``create_upload_batch``, the pipeline (format detection,
readers, validation, the target, the results writer) runs by ``run_batch`` on a real target
database, and the outcome is read back from the batch row, the results files and the table.
Only the HTTP layer and the runner's scheduling are left out: an in-process app per example
would cost more than the import itself. The metadata database is SQLite for speed; the target
is SQLite or PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import itertools
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_sqlite.dbapi
import psycopg
from anyio.from_thread import BlockingPortal, start_blocking_portal
from psycopg.types.datetime import DateLoader, TimestamptzLoader
from psycopg.types.json import set_json_loads

from batchyard.domain.batches import Batch, BatchOptions, InputFormat
from batchyard.domain.schema import Dataset
from batchyard.pipeline import keys
from batchyard.pipeline.context import PipelineContext
from batchyard.pipeline.run import run_batch
from batchyard.runner.events import BatchEvents
from batchyard.service.batches import NewBatch, create_upload_batch
from batchyard.service.container import Services, open_pipeline_context
from batchyard.service.datasets import create_dataset
from batchyard.settings import Settings
from batchyard.storage.signing import UrlSigner
from batchyard.store import batches as batch_rows
from batchyard.store import users as user_rows
from batchyard.store.users import Principal
from differential.stored import load_json


class _NoRunner:
    """The harness runs each batch itself, to its end, before looking at it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(self, conn: Any, batch_id: str) -> None: ...

    async def enqueue_delete(self, conn: Any, batch_id: str) -> None: ...

    async def abort(self, conn: Any, batch_id: str) -> None: ...

    def submit(self, batch_id: str) -> None: ...

    def submit_delete(self, batch_id: str) -> None: ...


@dataclass(frozen=True)
class Imported:
    """What a user can see of one finished import."""

    batch: Batch
    #: results.csv rows as dicts (record_number, outcome, error_code, …), in file order.
    results: list[dict[str, str]]
    #: The failed-records file (CSV, or JSON Lines for JSON Lines input).
    failed_records: bytes
    #: The dataset's table, one dict per row (column name → the driver's value).
    rows: list[dict[str, Any]]


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


class PipelineHarness:
    """Imports bytes into fresh datasets; one per test, its loop in a background thread."""

    def __init__(self, portal: BlockingPortal, ctx: PipelineContext, principal: Principal) -> None:
        self._portal = portal
        self._ctx = ctx
        self._principal = principal
        self._names = itertools.count(1)
        secret = secrets.token_bytes(32)
        self._services = Services(
            ctx.settings,
            ctx.store,
            ctx.blobs,
            ctx.target,
            BatchEvents(),
            _NoRunner(),
            UrlSigner(secret),
            secret,
        )
        self.target_url = ctx.settings.resolved_target_url()

    def new_dataset(self, body: dict[str, Any]) -> Dataset:
        """Declare a dataset like ``body`` under a fresh name (``body["name"]`` + a number)."""
        named = {**body, "name": f"{body['name']}_{next(self._names)}"}
        return self._portal.call(create_dataset, self._services, self._principal, named)

    def run(
        self,
        dataset: Dataset,
        data: bytes,
        fmt: InputFormat | None = None,
        options: BatchOptions | None = None,
    ) -> Imported:
        """Upload ``data`` as a batch into ``dataset`` and run it to its end."""
        request = NewBatch(dataset=dataset.name, format=fmt, options=options or BatchOptions())
        return self._portal.call(self._run, dataset, request, data)

    async def _run(self, dataset: Dataset, request: NewBatch, data: bytes) -> Imported:
        async def body() -> AsyncIterator[bytes]:
            for at in range(0, len(data), 1 << 16):
                yield data[at : at + (1 << 16)]

        created = await create_upload_batch(self._services, self._principal, request, body())
        await run_batch(self._ctx, created.batch.id)
        async with self._ctx.store.begin() as conn:
            batch = await batch_rows.get_batch(conn, created.batch.id, owner_id=None)
        results: list[dict[str, str]] = []
        failed = b""
        if await self._ctx.blobs.exists(keys.results_key(batch.id)):
            table = _csv_rows(await self._read(keys.results_key(batch.id)))
            results = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
            failed = await self._read(keys.failed_records_key(batch.id))
        return Imported(batch, results, failed, read_table(self.target_url, dataset))

    async def _read(self, key: str) -> bytes:
        return b"".join([part async for part in self._ctx.blobs.read_stream(key)])


def read_table(target_url: str, dataset: Dataset) -> list[dict[str, Any]]:
    """Every row of the dataset's table through the database's own driver."""
    names = dataset.column_names
    columns = ", ".join(f'"{name}"' for name in names)
    sql = f'SELECT {columns} FROM "{dataset.name}"'
    if target_url.startswith("sqlite"):
        # Through ADBC's SQLite, like the target: a second SQLite library in one process (the
        # sqlite3 module) would release the target's file locks when it closes the file.
        with adbc_driver_sqlite.dbapi.connect(target_url.removeprefix("sqlite:///")) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            got = cursor.fetchall()
            cursor.close()
    else:
        with psycopg.connect(target_url) as pg:
            pg.adapters.register_loader("timestamptz", _TimestamptzOrText)
            pg.adapters.register_loader("date", _DateOrText)
            set_json_loads(load_json, pg)
            got = pg.execute(sql).fetchall()
    return [dict(zip(names, row, strict=True)) for row in got]


class _TimestamptzOrText(TimestamptzLoader):
    """PostgreSQL holds years Python cannot (10000 and on): such a value comes back as text."""

    def load(self, data: Any) -> Any:
        try:
            return super().load(data)
        except psycopg.DataError:
            return bytes(data).decode()


class _DateOrText(DateLoader):
    def load(self, data: Any) -> Any:
        try:
            return super().load(data)
        except psycopg.DataError:
            return bytes(data).decode()


def harness_settings(data_dir: Path, target_url: str, chunk_bytes: int) -> Settings:
    """Settings for a harness; ``chunk_bytes`` may be far below the server's minimum.

    The minimum guards servers against chunks too small to be worth a commit; here small chunks
    are the point (every file crosses many chunk boundaries), so the value is set past the check.
    """
    settings = Settings(data_dir=data_dir, target_url=target_url, admin_token="differential")
    return settings.model_copy(update={"chunk_bytes": chunk_bytes})


@contextmanager
def open_harness(settings: Settings) -> Iterator[PipelineHarness]:
    """A harness on ``settings``' databases and storage, closed on exit."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(open_pipeline_context(settings)) as ctx,
    ):
        yield PipelineHarness(portal, ctx, portal.call(_admin, ctx))


async def _admin(ctx: PipelineContext) -> Principal:
    async with ctx.store.begin() as conn:
        return await user_rows.create_user(conn, "differential", "admin")
