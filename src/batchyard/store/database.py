"""The metadata database handle: one async engine, migrated to the newest schema on open."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DataError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from batchyard.domain.errors import InvalidRequest
from batchyard.store.changes import BatchChanges, take_transitions
from batchyard.store.fresh import FreshCache
from batchyard.store.migrate import upgrade_to_head
from batchyard.store.principals import PrincipalCache
from batchyard.store.tables import SCHEMA

#: Async drivers for URLs given without one (``sqlite:///…``, ``postgresql://…``).
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
#: How long a SQLite writer waits for another before giving up, in milliseconds.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: A pooled PostgreSQL connection unused this long is pinged before use (``_ping_when_idle``).
_PING_AFTER_IDLE_SECONDS = 5.0
#: Execution option marking a transaction that only reads (see ``MetadataStore.read``).
_READ_ONLY = "batchyard_read_only"


class MetadataStore:
    """Owns the engine; use cases take a transaction from ``begin()`` and pass it down."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        """``reader``: an engine of its own for ``read`` (SQLite files: see ``read``)."""
        self._engine = engine
        self._own_reader = reader
        read_options: dict[str, Any] = {_READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            read_options["isolation_level"] = "AUTOCOMMIT"
        # Built once: an engine's execution_options() copy costs as much as a short query.
        self._reader = (reader or engine).execution_options(**read_options)
        #: Which principal each token resolved to, for a second (see ``store.principals``).
        self.principals = PrincipalCache()
        #: Status reads (batches, history, datasets) until this process writes; see store.fresh.
        self.reads = FreshCache()
        #: Who in this process hears of a batch's transitions as they commit (store.changes).
        self.changes = BatchChanges()

    @classmethod
    async def open(cls, url: str) -> MetadataStore:
        """Connect to ``url`` (a SQLAlchemy URL) and bring the schema up to date."""
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, create_read_engine(url))

    @asynccontextmanager
    async def begin(
        self,
        *,
        writes_batch: str | None = None,
        dataset: str | None = None,
        writes: bool = True,
        progress: bool = False,
    ) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success and rolls back on error.

        PostgreSQL refuses text holding a NUL character, which a client can put in any name or
        field: that is the client's error (422), not the server's. Whatever it wrote, the
        status reads this process remembers are forgotten once it ends: with ``writes_batch``
        (the transaction writes only that batch's own rows: status, counters, log, format),
        that batch's and the row count of ``dataset`` (the batch's, if the caller knows it;
        else every table's); without it, all of them. ``writes=False``: the transaction changes
        nothing a status read returns, and forgets nothing: it only reads (statements that must
        agree, checks made under SQLite's write lock), or writes only bookkeeping no status read
        shows (a webhook's delivery lease and outcome). ``progress`` (with ``writes_batch``): the
        transaction moves that batch's counters only; what is remembered of it is read afresh in
        the background instead of forgotten (``FreshCache.supersede_batch``). The batches it
        transitioned are told to their listeners (``changes``) once it ends.
        """
        transitioned: set[str] = set()
        try:
            async with self._engine.begin() as conn:
                try:
                    yield conn
                finally:
                    transitioned = take_transitions(conn)
        except DataError as error:
            if "NUL (0x00)" not in str(error.orig):
                raise
            raise InvalidRequest("Text must not contain NUL characters") from None
        finally:
            if writes_batch is not None and writes and progress:
                self.reads.supersede_batch(writes_batch, dataset)
            elif writes_batch is not None and writes:
                self.reads.forget_batch(writes_batch, dataset)
            elif writes:
                self.reads.forget_all()
            # After a rollback too: a listener reads the status again, and finds it unchanged.
            for batch_id in transitioned:
                self.changes.changed(batch_id)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only (status, history, datasets, tokens): never write on it.

        On SQLite it takes no write lock (no BEGIN IMMEDIATE): readers in WAL mode never wait
        for a writer, so a running import does not queue every status request behind it; and
        its connections come from a pool of their own, which writers waiting for the write lock
        (each holding a pooled connection meanwhile) cannot drain. On
        PostgreSQL it runs in autocommit: no BEGIN and COMMIT round trips around the statements.
        Each statement sees a consistent snapshot; reads that need several to agree use ``begin``.
        """
        async with self._reader.begin() as conn:
            yield conn

    async def close(self) -> None:
        await self.reads.close()
        await self.principals.close()
        await self._engine.dispose()
        if self._own_reader is not None:
            await self._own_reader.dispose()

    @property
    def dialect_name(self) -> str:
        """``sqlite`` or ``postgresql``: for the few callers whose SQL differs by backend."""
        return self._engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        return self._engine


def async_url(url: str) -> URL:
    """``url`` with an async driver, accepting plain ``sqlite://`` and ``postgresql://`` too."""
    parsed = make_url(url)
    if parsed.drivername == "postgres":
        parsed = parsed.set(drivername="postgresql")
    return parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))


def search_path_options(existing: str | None = None) -> str:
    """libpq ``options`` that make a session see only batchyard's schema (plus pg_catalog).

    procrastinate's functions name their tables without a schema, so the queue works only on
    sessions whose search path is this; batchyard's own SQL names the schema besides.
    """
    own = f"-c search_path={SCHEMA}"
    return f"{existing} {own}" if existing else own


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``, with SQLite made safe for concurrent writers.

    On PostgreSQL every table of the metadata is mapped to batchyard's own schema, and nothing
    else is on the search path: no unqualified name can land on a dataset's table.
    """
    parsed = async_url(url)
    if parsed.get_backend_name() == "postgresql":
        options = parsed.query.get("options")
        engine = create_async_engine(
            parsed.difference_update_query(["options"]),
            connect_args={"options": search_path_options(_single(options))},
            execution_options={"schema_translate_map": {None: SCHEMA}},
        )
        _ping_when_idle(engine)
        return engine
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True)
    engine = create_async_engine(parsed)
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection with a round trip only when it sat unused for a while.

    ``pool_pre_ping`` pings at every checkout: one round trip more for every status read. A
    connection used seconds ago is alive unless the server went away in between (then the
    statement fails as it would have a moment after a ping); one idle longer (a database
    restart, a proxy's idle timeout) is pinged, and a dead one replaced before use.
    """
    dialect = engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < _PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out another (a new one if need be).
            raise DisconnectionError("the pooled connection is gone") from error

    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "checkout", checked_out)


def create_read_engine(url: str) -> AsyncEngine | None:
    """For a SQLite file, an engine whose connections can only read (``PRAGMA query_only``);
    None elsewhere (PostgreSQL reads share the pool: no writer there holds a connection while
    it waits for a database-wide lock; an in-memory SQLite database is one connection's own)."""
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("mode") == "memory":
        return None
    engine = create_async_engine(parsed)
    event.listen(engine.sync_engine, "connect", _configure_sqlite_reader)
    return engine


def _single(value: str | tuple[str, ...] | None) -> str | None:
    return " ".join(value) if isinstance(value, tuple) else value


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level, so the "begin" hook below decides how transactions start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _configure_sqlite_reader(dbapi_connection: Any, record: Any) -> None:
    _configure_sqlite(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _begin_immediate(conn: Connection) -> None:
    # Take the write lock up front: a deferred transaction that reads and then writes fails with
    # SQLITE_BUSY at once instead of waiting, when another writer got in between. A read never
    # writes: its statements run on their own (each one a consistent snapshot in WAL mode),
    # which takes no lock and saves the BEGIN's round trip to the driver's thread.
    if not conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
