"""What the services need from whoever runs the pipeline, in either run mode.

Work is handed over in two steps because the two modes differ on where it is recorded: the queue
runner writes a job row in the caller's own transaction (so a committed batch always has its job,
and a rolled-back one never does), while the embedded runner starts an asyncio task once that
transaction has committed. Callers do both; each runner ignores the step it does not need.
"""

from __future__ import annotations

import sys
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection


class Runner(Protocol):
    async def start(self) -> None:
        """Pick up work a previous run left unfinished, and start working if this process does."""

    async def stop(self) -> None:
        """Stop work running in this process; it resumes later from the batch's status."""

    async def enqueue(self, conn: AsyncConnection, batch_id: str) -> None:
        """Record, in the caller's transaction, that the batch's pipeline must run."""

    async def enqueue_delete(self, conn: AsyncConnection, batch_id: str) -> None:
        """Record, in the caller's transaction, that the batch's data must be removed."""

    async def abort(self, conn: AsyncConnection, batch_id: str) -> None:
        """In the cancel's transaction: stop the batch's running work wherever it runs."""

    def submit(self, batch_id: str) -> None:
        """After the commit: make sure the batch's pipeline runs (no-op where jobs are queued)."""

    def submit_delete(self, batch_id: str) -> None:
        """After the commit: remove the batch's data (no-op where jobs are queued)."""


#: Seconds a thread running Python may keep the GIL while another waits for it (Python's
#: default is 0.005). The pipeline's threads turn failing records into messages in Python;
#: where they share a process with the HTTP server, every request's many hand-overs between
#: the event loop and the database threads would each wait that long behind them.
GIL_SWITCH_SECONDS = 0.001


def share_gil_with_requests() -> None:
    """Let the event loop and the database threads get the GIL back sooner (process-wide)."""
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
