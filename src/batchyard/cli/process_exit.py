"""Ending a long-running batchyard process (``serve``, ``worker``) once it has shut down.

obstore runs its I/O on a tokio runtime. Each async call hands its result back to asyncio from
a tokio thread through ``loop.call_soon_threadsafe``, which wakes the loop with a socket send
and then takes the GIL again. If the interpreter starts finalizing while such a thread waits for
the GIL, CPython ends that thread with ``pthread_exit``, which cannot unwind through Rust frames:
the whole process aborts (SIGABRT, exit status 134) after a shutdown that was otherwise clean.
It happens whenever an object-store call completes shortly before the process ends (measured:
about one short-lived process in five), and a supervisor then reports a crash that was not one.

By the time ``serve``/``worker`` return, everything the service owns is closed by its own
lifespan and context managers; what interpreter finalization would still do is flush logs and
standard streams, which is done here, so the process ends with its own status instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_after_shutdown(status: int = 0) -> NoReturn:
    """Flush logs and standard streams, then end the process without finalizing the interpreter."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a pipe whose reader left
            stream.flush()
    os._exit(status)
