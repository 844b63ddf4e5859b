"""Many batches read at once: what the live events watcher needs for every batch followed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import Batch
from batchyard.store.rows import batch_from_row, select_batches
from batchyard.store.tables import batches

#: Ids per query: well under SQLite's limit on bound parameters, whatever its version.
_IDS_PER_QUERY = 500


async def get_batches(conn: AsyncConnection, batch_ids: Sequence[str]) -> dict[str, Batch]:
    """The batches among ``batch_ids`` that exist, by id, whoever owns them: callers check who
    may see them. Ids must be batch ids (UUIDs), as those of batches already read once are."""
    found: dict[str, Batch] = {}
    for start in range(0, len(batch_ids), _IDS_PER_QUERY):
        part = list(batch_ids[start : start + _IDS_PER_QUERY])
        query = select_batches().where(batches.c.id.in_(part))
        for row in (await conn.execute(query)).mappings():
            batch = batch_from_row(row)
            found[batch.id] = batch
    return found
