"""Live events of a batch as Server-Sent Events: every status or counter change."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from batchyard.api.deps import PrincipalDep, ServicesDep
from batchyard.api.routes import error_responses
from batchyard.api.schemas import BatchPublic
from batchyard.domain.errors import BatchNotFound
from batchyard.domain.permissions import Action
from batchyard.runner.events import wait_for_change
from batchyard.service import batches
from batchyard.service.auth import require
from batchyard.service.container import Services
from batchyard.store.users import Principal

router = APIRouter(tags=["batches"], responses=error_responses(401, 403, 404))
#: Longest a follower waits before re-reading the batch (changes made by other processes).
POLL_SECONDS = 0.5


async def _changes(
    svc: Services, principal: Principal, batch_id: str
) -> AsyncIterator[dict[str, str]]:
    last = ""
    with svc.events.follow(batch_id) as changed:
        while True:
            try:
                batch = await batches.get_batch(svc, principal, batch_id)
            except BatchNotFound:
                yield {"event": "deleted", "data": f'{{"batch": "{batch_id}"}}'}
                return
            payload = BatchPublic.of(batch).model_dump_json()
            if payload != last:
                last = payload
                yield {"event": "batch", "data": payload, "id": f"{batch.updated_ts:.3f}"}
            if batch.is_terminal:
                yield {"event": "end", "data": payload}
                return
            await wait_for_change(changed, POLL_SECONDS)


@router.get(
    "/batches/{batch_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"}},
)
async def batch_events(
    batch_id: str, svc: ServicesDep, principal: PrincipalDep
) -> EventSourceResponse:
    """``event: batch`` with the batch resource on every change; ``end`` when it is terminal."""
    require(principal, Action.GET_BATCH)
    await batches.get_batch(svc, principal, batch_id)  # 404 before the stream starts
    return EventSourceResponse(_changes(svc, principal, batch_id), ping=15)
