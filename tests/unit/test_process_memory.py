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


_FREED_IN_A_THREAD = """
    import sys
    import threading
    from batchyard.pipeline.process_memory import hand_back_free_pages, return_large_blocks
    from support.fresh_process import rss
    return_large_blocks()

    def validate_like():  # blocks below the mmap threshold, among a few that stay
        blocks, kept = [], []
        for _ in range(300):
            blocks.append(b"x" * (200 << 10))
            kept.append(b"k" * 1000)
        del blocks
        if sys.argv[1] == "handed back":
            hand_back_free_pages()
        return kept

    before = rss()
    done = []
    worker = threading.Thread(target=lambda: done.append(validate_like()))
    worker.start()
    worker.join()
    print((rss() - before) // 2**20)
"""


def _kept_mib(mode: str) -> int:
    return int(run_script(_FREED_IN_A_THREAD, mode, timeout=60))


def test_free_pages_inside_a_threads_heap_go_back():
    """What validating a chunk with bad values frees in its thread leaves the process."""
    assert _kept_mib("handed back") < 16


def test_without_it_the_heap_keeps_them():
    """The premise: glibc keeps the free pages below a heap's top (about 58 MiB here)."""
    assert _kept_mib("kept") > 40
