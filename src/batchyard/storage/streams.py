"""Writing a stream of bytes into storage: gathered into blocks, hashed and written off the loop.

An upload reaches the app as ASGI messages of about 256 KB. Hashing each one on the event loop
and handing each one to obstore's runtime (a thread hand-off per message, and a copy into its
part buffer) kept the loop busy while the socket waited. Here the pieces are gathered, not
joined, into blocks; a worker thread hashes and writes one block while the loop gathers the
next. hashlib and file writes release the GIL, so the two really run at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from batchyard.domain.errors import HashMismatch, PayloadTooLarge

#: Bytes gathered before a block is handed to the writing thread. A write holds at most two
#: blocks: the one being written and the one being gathered.
BLOCK_BYTES = 4 * 2**20

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
    at all."""
    file, staged = await asyncio.to_thread(_stage, scratch)
    loop = asyncio.get_running_loop()
    in_flight: asyncio.Future[None] | None = None
    try:
        async for block in gather_blocks(chunks, digest, BLOCK_BYTES):
            if in_flight is not None:
                await asyncio.shield(in_flight)  # cancelled or not, the thread runs to its end
            in_flight = loop.run_in_executor(None, _hash_and_write, file, block, digest)
        if in_flight is not None:
            await asyncio.shield(in_flight)
        digest.check()
        await asyncio.to_thread(_commit, file, staged, path)
    except BaseException:
        await _abandon(file, staged, in_flight)
        raise


def _stage(scratch: Path) -> tuple[BinaryIO, Path]:
    scratch.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix="upload-", dir=scratch)
    return os.fdopen(descriptor, "wb"), Path(name)


def _commit(file: BinaryIO, staged: Path, path: Path) -> None:
    file.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, path)


def _hash_and_write(file: BinaryIO, block: Block, digest: Digest) -> None:
    digest.update(block)
    for piece in block:
        file.write(piece)


async def _abandon(file: BinaryIO, staged: Path, in_flight: asyncio.Future[None] | None) -> None:
    """Close and remove the staged file once the thread still writing to it (if any) is done:
    closing under it would let its write land in whatever file reuses the descriptor."""

    def discard(done: asyncio.Future[None] | None = None) -> None:
        if done is not None and not done.cancelled():
            done.exception()  # the error being raised is the one to report, not this one
        file.close()
        staged.unlink(missing_ok=True)

    if in_flight is not None and not in_flight.done():
        try:
            await asyncio.wait({in_flight})  # one block's write: milliseconds
        except BaseException:  # cancelled meanwhile: the thread's end cleans up
            in_flight.add_done_callback(discard)
            raise
    discard(in_flight)


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
