"""Transitions committed by other processes, heard at once by the process serving status reads.

An API process remembers status reads for ``STATUS_CACHE_SECONDS`` (store/fresh.py) and its
event streams read every ``POLL_SECONDS`` (runner/events.py): in queue mode the changes come
from workers, so a batch that completed in a worker used to show ``completed`` up to half a
second late to a polling client, and as late to a live event stream. Every transition is
announced on PostgreSQL's ``TRANSITIONS_CHANNEL`` in its own transaction (store/batches.py);
this listens there and forgets what that process remembers of the batch at once. Progress
between transitions still arrives within those intervals.

The listening connection may drop (the database restarted): everything remembered is then
forgotten, since announcements may have been missed, and it listens again a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from batchyard.store.batches import TRANSITIONS_CHANNEL

logger = logging.getLogger("batchyard.runner")

#: Seconds between two attempts to listen again after the connection dropped.
RELISTEN_SECONDS = 1.0


class TransitionListener:
    """Calls ``on_change(batch_id)`` for every transition another process commits.

    ``on_gap()`` is called when announcements may have been missed (the connection dropped).
    """

    def __init__(
        self, conninfo: str, on_change: Callable[[str], None], on_gap: Callable[[], None]
    ) -> None:
        self._conninfo = conninfo
        self._on_change = on_change
        self._on_gap = on_gap
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen from now on: a transition committed after this returns is heard."""
        conn = await self._listen()
        self._task = asyncio.create_task(self._follow(conn), name="batchyard:transitions")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(TRANSITIONS_CHANNEL)))
        return conn

    async def _follow(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        while True:
            try:
                async with conn:
                    async for note in conn.notifies():
                        self._on_change(note.payload)
            except psycopg.Error:
                logger.warning("transitions: listening connection lost; listening again")
            self._on_gap()
            conn = await self._listen_again()

    async def _listen_again(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        while True:
            await asyncio.sleep(RELISTEN_SECONDS)
            try:
                conn = await self._listen()
            except psycopg.Error:
                continue
            self._on_gap()  # what changed while nobody listened
            return conn
