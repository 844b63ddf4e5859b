"""Live events of a batch as Server-Sent Events: every status or counter change."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter
from sse_starlette.sse import EventSourceResponse

from batchyard.api.deps import PrincipalDep, ServicesDep, TokenDep
from batchyard.api.routes import error_responses
from batchyard.api.schemas import BatchPublic
from batchyard.domain.errors import BatchNotFound, Forbidden, Unauthenticated
from batchyard.domain.permissions import Action
from batchyard.service import batches
from batchyard.service.auth import require
from batchyard.service.container import Services
from batchyard.service.events import follow_batch

router = APIRouter(tags=["batches"], responses=error_responses(401, 403, 404))


async def _changes(
    svc: Services, token: str | None, batch_id: str
) -> AsyncIterator[dict[str, str]]:
    """The batch's states as SSE events, then ``end``; ``deleted`` or ``error`` when the batch
    or access to it goes away (see ``follow_batch``)."""
    last = ""
    try:
        async with aclosing(follow_batch(svc, token, batch_id)) as states:
            async for batch in states:
                payload = BatchPublic.of(batch).model_dump_json()
                if payload != last:
                    last = payload
                    yield {"event": "batch", "data": payload, "id": f"{batch.updated_ts:.3f}"}
                if batch.is_terminal:
                    yield {"event": "end", "data": payload}
    except BatchNotFound:
        yield {"event": "deleted", "data": json.dumps({"batch": batch_id})}
    except (Unauthenticated, Forbidden) as error:
        body = {"code": error.code, "message": error.message}
        yield {"event": "error", "data": json.dumps(body)}


@router.get(
    "/batches/{batch_id}/events",
    responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream"}},
)
async def batch_events(
    batch_id: str, svc: ServicesDep, principal: PrincipalDep, token: TokenDep
) -> EventSourceResponse:
    """``event: batch`` with the batch resource on every change; ``end`` when it is terminal.

    Every follower of a batch in a server process shares one reader of it: changes made by this
    process arrive at once, those made by others (queue workers, other servers) within 0.5 s.
    Access is checked again every half second or so: once the token is revoked or expired, the
    user disabled or their role changed so that they may no longer see the batch, the stream
    sends ``event: error`` (``{"code", "message"}``) and ends.
    """
    require(principal, Action.GET_BATCH)
    await batches.get_batch(svc, principal, batch_id)  # 404 before the stream starts
    return EventSourceResponse(_changes(svc, token, batch_id), ping=15)
