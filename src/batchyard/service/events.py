"""Following a batch live: its states as they change, for as long as the follower may see it.

Every follower of a batch in this process shares one reader of it (``runner.events``): following
costs the database nothing per follower. What stays per follower is the access check, made on
every state and at least every ``POLL_SECONDS``, so a stream ends soon after its access does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from batchyard.domain.batches import Batch
from batchyard.domain.errors import BatchNotFound
from batchyard.domain.permissions import Action
from batchyard.runner.events import GONE, POLL_SECONDS
from batchyard.service.auth import authenticate, require_visible
from batchyard.service.container import Services


async def follow_batch(
    svc: Services, token: str | None, batch_id: str
) -> AsyncGenerator[Batch, None]:
    """Each new state of the batch, the current one first, ending after a terminal one.

    Raises BatchNotFound once the batch is deleted or no longer visible to the token's user, and
    Unauthenticated or Forbidden once the token is revoked or expired, the user disabled, or the
    role no longer allows ``get_batch`` on it (within the principal cache's second for changes
    made by other processes).
    """
    with svc.events.follow(batch_id) as follower:
        while True:
            fresh = await follower.changed(POLL_SECONDS)
            # Taken before the next await: a state offered meanwhile is fresh on the next turn,
            # never taken here unseen (a terminal one would end the stream without its event).
            state = follower.latest
            principal = await authenticate(svc.store, svc.secret, token)
            if state is GONE:
                raise BatchNotFound()
            if state is None:
                continue  # not read yet (or the database is busy): check access, wait again
            require_visible(principal, state, Action.GET_BATCH)
            if fresh:
                yield state
            if state.is_terminal:
                return
