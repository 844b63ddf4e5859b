"""Large blocks of the C allocator go back to the system when freed (long-running processes).

Reading a chunk makes Python bytes and numpy arrays about the chunk's size (the block read,
the block with the previous one's tail, byte masks). glibc serves blocks over its mmap
threshold with their own mapping, unmapped when freed, but it raises that threshold to the
size of any such block freed, up to 32 MiB: from the first chunk on, chunk-sized blocks come
from the heap instead, whose freed pages it keeps. Pinning the threshold at 1 MiB keeps them
mapped and returned. Measured at default settings: the e2e memory test's server peaked at
243 MiB instead of 276, the 1M-row SQLite import at 236-239 MiB instead of 243-251, no slower
(5.60 / 5.47 s against 7.10 / 6.26 s, alternating runs on a loaded machine).
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

#: mallopt's parameter numbers for the mmap threshold and the arena count (glibc's malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks from this size on get a mapping of their own.
LARGE_BLOCK_BYTES = 1 << 20
#: glibc heaps the threads share (its default is 8 per core, each keeping its own free pages).
ARENAS = 2


def return_large_blocks() -> None:
    """Pin glibc's mmap threshold (and share its heaps between threads, ``ARENAS``). Where an
    operator set MALLOC_MMAP_THRESHOLD_ or MALLOC_ARENA_MAX (which glibc reads itself), that
    setting is left as it is."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, ARENAS)


def _libc_function(name: str) -> Any:
    """glibc's ``name`` (None off Linux or where the C library has none)."""
    if not sys.platform.startswith("linux"):
        return None
    return getattr(ctypes.CDLL(None), name, None)


def hand_back_free_pages() -> None:
    """Return the free pages inside glibc's heaps to the system (``malloc_trim(0)``).

    Call from a worker thread every few chunks: the validation of a chunk with bad values
    makes numpy arrays and Python bytes below the mmap threshold (its byte matrices, masks,
    per-column copies) in whichever thread validates it; freed, their pages stay in that
    thread's heap, spread over the pages of long-lived objects, where glibc only trims the top.
    Not after every chunk: the next chunk's temporaries take those pages again, and each one
    handed back costs a page fault when it is touched again: the trim and those faults cost
    up to 2 ms of CPU per 2 MiB chunk of a clean file and 1 to 4 ms with 1% invalid records
    (``benchmarks.chunk_cpu --trim-every``).
    """
    trim = _MALLOC_TRIM
    if trim is not None:
        trim(0)


_MALLOC_TRIM = _libc_function("malloc_trim")
