"""Transitions heard in this process, pushed to whoever here checks that batch's status.

The pipeline checks a running batch's status before every chunk, from a read at most
``STATUS_FRESH_SECONDS`` old (apply/status_watch.py). Reading it several times a second only to
learn of a cancel was the largest share of its metadata statements. A transition committed
through ``MetadataStore.begin`` in this process (a cancel request this server took, the
pipeline's own), and on PostgreSQL one another process announced (runner/batch_changes.py), is
told to the batch's listeners as soon as it is committed: they read the status again at once,
and the periodic read is left to catch what no announcement reached, at a slower pace.

``transition_batch`` marks its connection (``mark_transition``); ``MetadataStore.begin`` takes
the marks once the transaction is over and calls ``changed`` for each batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

logger = logging.getLogger("batchyard.store")

#: Key of the set of batch ids a transaction transitioned, in its connection's ``info``.
_TRANSITIONED = "batchyard_transitioned"

#: Called, in the event loop, once the batch may have a new status.
Listener = Callable[[], None]


def mark_transition(conn: AsyncConnection, batch_id: str) -> None:
    """Note that ``conn``'s transaction moves ``batch_id`` to another status."""
    conn.info.setdefault(_TRANSITIONED, set()).add(batch_id)


def take_transitions(conn: AsyncConnection) -> set[str]:
    """The batches ``conn``'s transaction transitioned, forgotten on the connection."""
    taken: set[str] = conn.info.pop(_TRANSITIONED, set())
    return taken


class BatchChanges:
    """batch id → the listeners in this process to tell when its status may have changed."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        #: Told of every batch's transitions (the webhook dispatcher: a batch may have ended).
        self._everyone: list[Listener] = []

    @contextmanager
    def listening(self, batch_id: str, listener: Listener) -> Iterator[None]:
        """Tell ``listener`` of ``batch_id``'s transitions for the length of the block."""
        self._listeners.setdefault(batch_id, []).append(listener)
        try:
            yield
        finally:
            listeners = self._listeners[batch_id]
            listeners.remove(listener)
            if not listeners:
                del self._listeners[batch_id]

    @contextmanager
    def listening_to_all(self, listener: Listener) -> Iterator[None]:
        """Tell ``listener`` of every batch's transitions for the length of the block."""
        self._everyone.append(listener)
        try:
            yield
        finally:
            self._everyone.remove(listener)

    def changed(self, batch_id: str) -> None:
        """``batch_id``'s status may have changed: tell its listeners."""
        for listener in [*self._listeners.get(batch_id, ()), *self._everyone]:
            _tell(listener)

    def changed_all(self) -> None:
        """Transitions may have been missed (announcements lost): tell every listener."""
        for listeners in [*self._listeners.values(), self._everyone]:
            for listener in list(listeners):
                _tell(listener)


def _tell(listener: Listener) -> None:
    """A listener that fails is logged: the writer that committed must not fail for it, and
    the listener's periodic read still sees the change."""
    try:
        listener()
    except Exception:
        logger.exception("a batch change listener failed")
