"""Target databases, where a dataset's records are applied exactly once.

A chunk's records and its ledger row commit in one transaction, so after a crash a chunk is
either fully applied and recorded, or not at all; applying a recorded chunk again changes nothing
and returns the recorded outcome.

The API is synchronous and thread-safe at the Target level: each transaction and each read runs
on a connection of its own, taken from a small pool and returned after use.

A dataset's table is always named with its schema and the ledger lives apart from the datasets'
tables (dialect.py), so a dataset may bear any identifier as its name and reaches only its table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pyarrow as pa

from batchyard.domain.batches import Operation
from batchyard.domain.errors import InputRejected, InvalidRequest
from batchyard.domain.outcomes import ChunkOutcome
from batchyard.domain.schema import Dataset, check_identifier
from batchyard.targets import ledger
from batchyard.targets.dialect import Dialect, quote
from batchyard.targets.operations import apply_records
from batchyard.targets.session import Session

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_target(url: str, *, schema: str = "public", own_schema: str = "batchyard") -> Target:
    """The target at ``url``: ``sqlite:///path.db`` or a PostgreSQL URL (``+driver`` ignored).

    On PostgreSQL the datasets' tables are in ``schema`` and the ledger in ``own_schema``.
    The dialect's driver is imported here, not with this module: ADBC's DB-API imports
    ``pyarrow.dataset``, which brings pandas in (pipeline/arrow_runtime.py).
    """
    if url.startswith(_SQLITE_PREFIX):
        path = url.removeprefix(_SQLITE_PREFIX)
        if not path or path.startswith(":memory:"):
            raise InvalidRequest("a SQLite target needs a database file, not :memory:")
        from batchyard.targets.sqlite import SqliteDialect

        return Target(SqliteDialect(Path(path)))
    scheme, sep, rest = url.partition("://")
    plain = f"{scheme.split('+', 1)[0]}{sep}{rest}"
    if plain.startswith(_POSTGRES_SCHEMES):
        from batchyard.targets.postgresql import PostgresDialect

        return Target(PostgresDialect(plain, check_identifier(schema, "schema"), own_schema))
    raise InvalidRequest(f"unsupported target database URL scheme {scheme!r} (sqlite, postgresql)")


class TargetTransaction:
    """One open write transaction: chunks applied through it commit or roll back together."""

    def __init__(self, session: Session, dialect: Dialect) -> None:
        self._session = session
        self._dialect = dialect

    def lock_chunk(self, batch_id: str, chunk_index: int, *, wait: bool) -> bool:
        """Keep every other participant off this chunk until the transaction ends.

        False when another transaction holds it and ``wait`` is not set: it is being applied
        right now, so the caller takes another chunk.
        """
        return self._dialect.lock_chunk(self._session, batch_id, chunk_index, wait=wait)

    def claim_ledger(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        """Reserve the chunk's ledger row in this transaction; its stored outcome if done."""
        return ledger.claim_chunk(self._session, self._dialect.ledger_table, batch_id, chunk_index)

    def record_outcome(self, batch_id: str, outcome: ChunkOutcome) -> None:
        """Store ``outcome`` in the ledger row ``claim_ledger`` reserved."""
        ledger.record_chunk(self._session, self._dialect.ledger_table, batch_id, outcome)

    def apply_records(self, dataset: Dataset, operation: Operation, records: pa.Table) -> pa.Table:
        """Write ``records`` into the dataset's table; the ones refused (ERRORS_SCHEMA rows)."""
        return apply_records(self._session, self._dialect, dataset, operation, records)

    def apply_chunk(
        self,
        dataset: Dataset,
        batch_id: str,
        chunk_index: int,
        operation: Operation,
        valid: pa.Table,
    ) -> ChunkOutcome:
        """Apply a chunk's records once; a chunk the ledger holds returns the stored outcome."""
        done = self.claim_ledger(batch_id, chunk_index)
        if done is not None:
            return done
        failures = self.apply_records(dataset, operation, valid)
        outcome = ChunkOutcome(chunk_index, valid.num_rows - failures.num_rows, failures)
        self.record_outcome(batch_id, outcome)
        return outcome


class _Released(Exception):
    """Unwinds a claim's transaction: a rollback, not an error."""


class ChunkClaim:
    """A chunk this participant alone holds: its lock and ledger row in an open transaction,
    and those of any chunk added to it (``add``), committed together.

    Made in one thread and finished in another (never two at once): the session and, on SQLite,
    the writer lock (a plain Lock) allow that.
    """

    def __init__(self, stack: ExitStack, transaction: TargetTransaction, batch_id: str) -> None:
        self._stack = stack
        self._batch_id = batch_id
        self._transaction = transaction
        self._open = True

    @property
    def transaction(self) -> TargetTransaction:
        return self._transaction

    def add(self, chunk_index: int) -> ChunkOutcome | None:
        self._transaction.lock_chunk(self._batch_id, chunk_index, wait=True)
        return self._transaction.claim_ledger(self._batch_id, chunk_index)

    def commit(self, *outcomes: ChunkOutcome) -> None:
        self._open = False
        try:
            for outcome in outcomes:
                self._transaction.record_outcome(self._batch_id, outcome)
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._stack.close()

    def release(self) -> None:
        if self._open:
            self._open = False
            error = _Released()
            self._stack.__exit__(_Released, error, None)


class Target:
    """A target database: datasets' tables plus the ledger of committed chunks."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._idle: list[Session] = []
        self._idle_lock = threading.Lock()
        self._closed = False
        self._prepared = False

    def prepare(self) -> None:
        """Create the schemas and the ledger (once per Target; later calls return at once)."""
        if self._prepared:
            return
        with self._write() as session:
            self._dialect.serialize_ddl(session)
            self._dialect.prepare(session)
            session.execute(ledger.ledger_ddl(self._dialect))
            ledger.add_outputs_column(session, self._dialect)
        self._prepared = True

    def ensure_table(self, dataset: Dataset) -> None:
        """Create the dataset's table unless it exists with the same columns."""
        columns = [check_identifier(c.name, "column") for c in dataset.columns]
        self._dialect.check_dataset_name(check_identifier(dataset.name, "dataset"))
        self.prepare()
        with self._write() as session:
            self._dialect.serialize_ddl(session)
            existing = self._dialect.table_columns(session, dataset.name)
            if existing is None:
                session.execute(self._create_table_sql(dataset))
            elif set(existing) != set(columns):
                raise InputRejected(_difference(dataset.name, existing, columns))

    def drop_table(self, dataset_name: str) -> None:
        """Drop the dataset's table and every row in it (nothing if it is already gone)."""
        with self._write() as session:
            self._dialect.serialize_ddl(session)
            table = self._dialect.dataset_table(check_identifier(dataset_name, "dataset"))
            session.execute(f"DROP TABLE IF EXISTS {table}")

    def _create_table_sql(self, dataset: Dataset) -> str:
        definitions = [
            f"{quote(c.name)} {self._dialect.column_type(c)}{'' if c.nullable else ' NOT NULL'}"
            for c in dataset.columns
        ]
        if dataset.primary_key:
            definitions.append(f"PRIMARY KEY ({', '.join(quote(k) for k in dataset.primary_key)})")
        body = ", ".join(definitions)
        options = self._dialect.table_options
        table = self._dialect.dataset_table(dataset.name)
        return f"CREATE TABLE IF NOT EXISTS {table} ({body}){options}"

    def claim_chunk(
        self, batch_id: str, chunk_index: int, *, wait: bool
    ) -> ChunkClaim | ChunkOutcome | None:
        """Take the chunk's lock and reserve its ledger row in a transaction left open.

        None when another transaction holds the chunk and ``wait`` is not set; the stored
        outcome when the ledger already has the chunk; else the claim, to commit or release.
        """
        self.prepare()
        stack = ExitStack()
        session = stack.enter_context(self._write())
        try:
            tx = TargetTransaction(session, self._dialect)
            if not tx.lock_chunk(batch_id, chunk_index, wait=wait):
                stack.close()
                return None
            done = tx.claim_ledger(batch_id, chunk_index)
        except BaseException as error:
            stack.__exit__(type(error), error, error.__traceback__)
            raise
        if done is not None:
            stack.close()
            return done
        return ChunkClaim(stack, tx, batch_id)

    @property
    def shares_chunks(self) -> bool:
        """Whether workers on other machines can apply one batch's chunks side by side."""
        return self._dialect.shares_chunks

    @contextmanager
    def holding_chunks(self, batch_id: str, chunk_indexes: Iterable[int]) -> Iterator[None]:
        """Wait until nobody is applying these chunks, and let nobody start one until exit.

        A batch that ends (cancelled, failed) while other workers apply its chunks reads the
        ledger inside this block: what it reads is final, no chunk commits behind its back.
        """
        if not self.shares_chunks:
            yield  # one writer at a time: nothing can be in flight while we hold the thread
            return
        with self._session() as session:
            session.execute("BEGIN")
            try:
                for index in sorted(chunk_indexes):
                    self._dialect.lock_chunk(session, batch_id, index, wait=True)
                yield
            finally:
                session.execute("ROLLBACK")

    def row_count(self, dataset_name: str) -> int:
        """Rows in the dataset's table; 0 when it has none yet."""
        name = check_identifier(dataset_name, "dataset")
        with self._session() as session:
            if self._dialect.table_columns(session, name) is None:
                return 0
            table = self._dialect.dataset_table(name)
            return int(session.rows(f"SELECT count(*) FROM {table}")[0][0])

    def committed_chunks(self, batch_id: str) -> dict[int, ChunkOutcome]:
        """Every chunk of the batch the ledger holds, by chunk index."""
        self.prepare()
        with self._session() as session:
            return ledger.committed_chunks(session, self._dialect.ledger_table, batch_id)

    def committed_counts(self, batch_id: str) -> dict[int, int]:
        """Records applied per committed chunk of the batch, by chunk index.

        What counters need, read without the chunks' failures: those are as many rows as the
        records refused, which a batch of millions of duplicate keys makes millions.
        """
        self.prepare()
        with self._session() as session:
            return ledger.committed_counts(session, self._dialect.ledger_table, batch_id)

    def chunk_outcome(self, batch_id: str, chunk_index: int) -> ChunkOutcome | None:
        """One committed chunk's outcome with its failures (None if it is not committed)."""
        self.prepare()
        with self._session() as session:
            return ledger.chunk_outcome(session, self._dialect.ledger_table, batch_id, chunk_index)

    def forget_batch(self, batch_id: str) -> None:
        """Drop the batch's ledger rows (the batch is deleted); the rows it loaded stay."""
        self.prepare()
        with self._write() as session:
            ledger.forget_batch(session, self._dialect.ledger_table, batch_id)

    @contextmanager
    def transaction(self) -> Iterator[TargetTransaction]:
        """One write transaction: commits on a clean exit, rolls back on any exception."""
        self.prepare()
        with self._write() as session:
            yield TargetTransaction(session, self._dialect)

    def close(self) -> None:
        """Close idle connections; sessions in use close when they are handed back."""
        with self._idle_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        self._dialect.close()
        for session in idle:
            session.close()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._dialect.writer_lock(), self._session() as session:
            self._dialect.before_write(session)
            session.execute(self._dialect.begin_sql)
            try:
                yield session
            except BaseException:
                session.execute("ROLLBACK")
                raise
            session.execute("COMMIT")
            self._dialect.after_commit()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._idle_lock:
            session = self._idle.pop() if self._idle else None
        session = session or self._dialect.connect()
        try:
            yield session
        except BaseException:
            session.close()  # its state is unknown (a broken connection, a failed rollback)
            raise
        with self._idle_lock:
            if not self._closed:
                self._idle.append(session)
                return
        session.close()


def _difference(table: str, existing: list[str], declared: list[str]) -> str:
    missing = sorted(set(declared) - set(existing))
    extra = sorted(set(existing) - set(declared))
    return (
        f"table {table!r} exists with other columns than the dataset declares:"
        f" missing {missing or 'none'}, not declared {extra or 'none'}"
    )
