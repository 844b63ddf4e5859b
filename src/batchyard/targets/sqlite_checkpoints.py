"""Checkpoints of a SQLite target's write-ahead log in a thread of their own, off the writer's path.

SQLite's automatic checkpoint runs inside the COMMIT that crosses ``wal_autocheckpoint``: the
chunk's writer then waits while the committed pages are copied into the database file and both
files are fsynced, once per chunk. Here the target's connections turn it off; each commit wakes
a thread that runs a PASSIVE checkpoint on a connection of its own (one that never waits for a
writer or a reader), while the next chunk is already being written. Durability is unchanged: a
transaction is as durable as when it commits (WAL with synchronous=NORMAL), a checkpoint only
moves pages that are committed already.

The log starts again from its beginning only when a write transaction begins after a complete
checkpoint, which a writer that never waits would seldom see: the log would grow with the whole
batch. So a writer that finds the log file larger than WAL_LIMIT_BYTES completes the checkpoint
itself before it begins (little is left: the thread has copied most of it), and the log stays
near that size whatever the batch's size, even if the thread cannot checkpoint at all. The
file's size is the log's because the connections set ``journal_size_limit`` to 0: the first
commit after the log starts again cuts the file to what that commit wrote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from batchyard.targets.session import DatabaseError, Session

logger = logging.getLogger("batchyard.targets")

#: Log size above which a writer completes a checkpoint before it begins (see the module doc).
WAL_LIMIT_BYTES = 64 * 2**20
_CHECKPOINT_SQL = "PRAGMA wal_checkpoint(PASSIVE)"


class WalCheckpoints:
    """Checkpoints of one database file's log: in a thread after commits, by a writer if late.

    Args:
        database: the database file; its log is beside it (``-wal``).
        connect: opens a session on the file (with automatic checkpoints off).
        lock: held around every checkpoint of the file in this process, so that a writer that
            must complete one waits for the thread's instead of finding the file busy.
    """

    def __init__(
        self, database: Path, connect: Callable[[], Session], lock: threading.Lock
    ) -> None:
        self._log = database.with_name(f"{database.name}-wal")
        self._connect = connect
        self._lock = lock
        self._wake = threading.Condition()
        self._due = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """A write transaction committed: checkpoint it soon, in the thread."""
        with self._wake:
            if self._closed:
                return
            self._due = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="batchyard-sqlite-checkpoints", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def before_write(self, session: Session) -> None:
        """Complete a checkpoint on ``session`` first when the log has grown past the limit.

        Called outside any transaction, with the file's writer lock held.
        """
        try:
            logged = self._log.stat().st_size
        except FileNotFoundError:  # no log yet: nothing to checkpoint
            return
        if logged > WAL_LIMIT_BYTES:
            with self._lock:
                session.rows(_CHECKPOINT_SQL)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it is running, if any)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        session: Session | None = None
        try:
            while self._next_due():
                try:
                    session = session or self._connect()
                    with self._lock:
                        session.rows(_CHECKPOINT_SQL)
                except DatabaseError:  # writers still bound the log; the next commit retries
                    logger.warning("SQLite target: a background checkpoint failed", exc_info=True)
                    if session is not None:
                        session.close()
                    session = None
        finally:
            if session is not None:
                session.close()

    def _next_due(self) -> bool:
        """Wait for a commit to checkpoint; False once closed."""
        with self._wake:
            while not self._due and not self._closed:
                self._wake.wait()
            self._due = False
            return not self._closed
