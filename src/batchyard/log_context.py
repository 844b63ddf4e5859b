"""What a log line is about, beyond its message: the batch and the HTTP request being worked on.

Context variables follow the code through awaits and into the tasks it starts, so a line logged
deep in the pipeline still names its batch, and one logged while answering names the request.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

#: The batch the current task works on (set by the pipeline's recorder).
batch_id: ContextVar[str | None] = ContextVar("batchyard_batch_id", default=None)
#: The HTTP request being answered (set by the API's request-id middleware).
request_id: ContextVar[str | None] = ContextVar("batchyard_request_id", default=None)


class ContextFilter(logging.Filter):
    """Copies the context onto every record, as ``batch_id`` and ``request_id`` attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "batch_id", None) is None:
            record.batch_id = batch_id.get()
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True
