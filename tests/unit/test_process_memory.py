"""Chunk-sized blocks freed by a long-running process go back to the system (glibc, Linux)."""

from __future__ import annotations

from support.fresh_process import run_script

_BLOCKS = """
    import sys
    from batchyard.pipeline.process_memory import return_large_blocks
    from support.fresh_process import rss
    if sys.argv[1] == "prepared":
        return_large_blocks()

    first = b"x" * (4 << 20)  # one chunk-sized block freed: glibc would raise its threshold
    del first
    before = rss()
    blocks = [b"x" * (3 << 20) for _ in range(30)]  # the blocks of many chunks
    del blocks[:-1]  # all freed but the newest, as when the next chunk is being read
    print((rss() - before) // 2**20)
"""


def _retained_mib(mode: str) -> int:
    return int(run_script(_BLOCKS, mode, timeout=60))


def test_freed_chunk_sized_blocks_leave_the_process():
    assert _retained_mib("prepared") < 16


def test_without_it_the_c_allocator_keeps_them():
    """The premise: glibc's own threshold keeps chunk-sized blocks it freed (90 MiB here)."""
    assert _retained_mib("plain") > 60
