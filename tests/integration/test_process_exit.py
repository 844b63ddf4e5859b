"""Long-running processes end with their own status, even right after object-store I/O.

An obstore call that completes just before the interpreter finalizes used to abort the process
(SIGABRT, status 134) in about one run in five; ``serve`` and ``worker`` now end through
``exit_after_shutdown``. Twenty processes that each end right after such a call all have to
exit cleanly (without the fix, twenty in a row pass about once in a hundred tries).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from batchyard.cli.process_exit import exit_after_shutdown
    from batchyard.pipeline.arrow_io import put_bytes, read_bytes
    from batchyard.storage.blobs import BlobStore

    async def main() -> bytes:
        blobs = BlobStore.from_url(sys.argv[1])
        await put_bytes(blobs, "probe/blob", b"x" * 10_000)
        return await read_bytes(blobs, "probe/blob")

    data = asyncio.run(main())
    print(f"read {len(data)} bytes")  # stdout is a pipe: buffered until the exit flushes it
    exit_after_shutdown(int(sys.argv[2]))
    """
)


def _run(root: Path, status: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, root.as_uri(), str(status)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_processes_end_cleanly_right_after_object_store_io(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda i: _run(tmp_path / f"blobs-{i}", 0), range(20)))

    assert [run.returncode for run in runs] == [0] * 20, [run.stderr[-500:] for run in runs]
    assert all(run.stdout == "read 10000 bytes\n" for run in runs)


def test_the_status_given_is_the_process_status(tmp_path):
    run = _run(tmp_path / "blobs", 130)

    assert run.returncode == 130
    assert run.stdout == "read 10000 bytes\n"
