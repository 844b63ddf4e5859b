"""Writing a stream of bytes into storage: gathered into blocks, hashed and written off the loop.

An upload reaches the app as ASGI messages of about 256 KB. Hashing each one on the event loop
and handing each one to obstore's runtime (a thread hand-off per message, and a copy into its
part buffer) kept the loop busy while the socket waited. Here the pieces are gathered, not
joined, into blocks; a worker thread hashes and writes the blocks, in order, while the loop
gathers the next. hashlib and file writes release the GIL, so the two really run at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from batchyard.domain.errors import HashMismatch, PayloadTooLarge

#: Bytes gathered before a block is handed to the writing thread.
BLOCK_BYTES = 4 * 2**20
#: Blocks handed over and not yet written, at most: a write holds this many plus the one being
#: gathered (16 MiB; obstore's multipart write held up to 25 MiB).
BLOCKS_IN_FLIGHT = 3

Block = list[bytes]


class Digest:
    """Counts bytes as they arrive (the size cap holds before anything is stored) and hashes
    them in whichever thread writes them, block after block in order."""

    def __init__(self, max_bytes: int | None, expected_sha256: str | None) -> None:
        self.size = 0
        self._hash = hashlib.sha256()
        self._max_bytes = max_bytes
        self._expected = expected_sha256.lower() if expected_sha256 else None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def count(self, size: int) -> None:
        self.size += size
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise PayloadTooLarge(
                f"The input is larger than this server accepts ({self._max_bytes} bytes)",
                details={"max_bytes": self._max_bytes},
            )

    def update(self, block: Block) -> None:
        for piece in block:
            self._hash.update(piece)

    def check(self) -> None:
        """HashMismatch unless the bytes hashed are the expected ones; called before the object
        is committed, so a mismatch leaves nothing behind."""
        if self._expected is not None and self._expected != self.sha256:
            raise HashMismatch(
                f"The copied bytes have SHA-256 {self.sha256}, not the expected {self._expected}",
                details={"expected": self._expected, "actual": self.sha256},
            )


async def gather_blocks(
    chunks: AsyncIterable[bytes], digest: Digest, block_bytes: int
) -> AsyncIterator[Block]:
    """``chunks`` in lists of at least ``block_bytes`` (the last one shorter), counted."""
    block: Block = []
    gathered = 0
    async for chunk in chunks:
        if not chunk:
            continue
        digest.count(len(chunk))
        block.append(chunk)
        gathered += len(chunk)
        if gathered >= block_bytes:
            yield block
            block, gathered = [], 0
    if block:
        yield block


async def write_file(
    path: Path, scratch: Path, chunks: AsyncIterable[bytes], digest: Digest
) -> None:
    """Write ``chunks`` to ``path`` on local disk: into a file in ``scratch`` (same disk), moved
    into place once every byte is in and the digest checks out, so ``path`` appears whole or not
    at all.

    One thread of its own does the file's work in order (hash, write, commit or discard), up to
    BLOCKS_IN_FLIGHT blocks behind the loop: a moment's stall of the disk or of that thread does
    not stop the loop from reading the socket, and the pipeline's jobs in the default executor
    do not delay the upload.
    """
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(1, thread_name_prefix="batchyard-write")
    writing: deque[asyncio.Future[None]] = deque()
    try:
        file, staged = await loop.run_in_executor(thread, _stage, scratch)
        try:
            async for block in gather_blocks(chunks, digest, BLOCK_BYTES):
                if len(writing) >= BLOCKS_IN_FLIGHT:
                    await asyncio.shield(writing.popleft())  # cancelled or not, it runs
                writing.append(loop.run_in_executor(thread, _hash_and_write, file, block, digest))
            while writing:
                await asyncio.shield(writing.popleft())
            digest.check()
            await loop.run_in_executor(thread, _commit, file, staged, path)
        except BaseException:
            for pending in writing:
                pending.add_done_callback(_retrieved)  # the error raised below is the one
            # Queued behind every write still to run: the file is closed after the last one,
            # never under it (a write would land in whatever file reuses the descriptor).
            await asyncio.wait({loop.run_in_executor(thread, _discard, file, staged)})
            raise
    finally:
        thread.shutdown(wait=False)  # its queue still runs to the end


def _stage(scratch: Path) -> tuple[BinaryIO, Path]:
    scratch.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix="upload-", dir=scratch)
    return os.fdopen(descriptor, "wb"), Path(name)


def _hash_and_write(file: BinaryIO, block: Block, digest: Digest) -> None:
    digest.update(block)
    for piece in block:
        file.write(piece)


def _commit(file: BinaryIO, staged: Path, path: Path) -> None:
    file.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, path)


def _discard(file: BinaryIO, staged: Path) -> None:
    file.close()
    staged.unlink(missing_ok=True)


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def hashed_parts(
    chunks: AsyncIterable[bytes], digest: Digest, part_bytes: int
) -> AsyncIterator[bytes]:
    """``chunks`` as parts of ``part_bytes`` for a remote store's multipart upload, each hashed
    and joined in a worker thread; raises HashMismatch before the last part is handed over, so
    the upload is aborted rather than committed."""
    async for block in gather_blocks(chunks, digest, part_bytes):
        yield await asyncio.to_thread(_hash_and_join, block, digest)
    digest.check()


def _hash_and_join(block: Block, digest: Digest) -> bytes:
    digest.update(block)
    return block[0] if len(block) == 1 else b"".join(block)
