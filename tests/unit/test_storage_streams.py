"""Writing a byte stream in blocks: what is stored, hashed and left behind when it goes wrong."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest

from batchyard.domain.errors import HashMismatch, PayloadTooLarge
from batchyard.storage import streams
from batchyard.storage.streams import Digest, gather_blocks, hashed_parts, write_file

T = TypeVar("T")


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def collect(blocks: AsyncIterator[list[bytes]]) -> list[list[bytes]]:
    return [block async for block in blocks]


async def drain(items: AsyncIterator[T], into: list[T]) -> None:
    async for item in items:
        into.append(item)


async def test_blocks_hold_at_least_the_block_size_and_skip_empty_pieces() -> None:
    async def uneven() -> AsyncIterator[bytes]:
        for piece in (b"abc", b"", b"defg", b"hi", b"", b"j"):
            yield piece

    digest = Digest(None, None)
    blocks = await collect(gather_blocks(uneven(), digest, 5))

    assert blocks == [[b"abc", b"defg"], [b"hi", b"j"]]
    assert digest.size == 10


async def test_a_piece_over_the_cap_is_refused_before_it_is_handed_on() -> None:
    digest = Digest(max_bytes=10, expected_sha256=None)
    handed: list[list[bytes]] = []
    with pytest.raises(PayloadTooLarge):
        await drain(gather_blocks(pieces(b"x" * 11, 4), digest, 4), handed)
    assert b"".join(b"".join(block) for block in handed) == b"x" * 8


async def test_write_file_stores_every_byte_and_hashes_exactly_them(tmp_path: Path) -> None:
    data = os.urandom(2 * streams.BLOCK_BYTES + 12345)
    digest = Digest(None, None)

    await write_file(tmp_path / "a/b/0", tmp_path / "scratch", pieces(data, 256_000), digest)

    assert (tmp_path / "a/b/0").read_bytes() == data
    assert (digest.size, digest.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert list((tmp_path / "scratch").iterdir()) == []


async def test_a_wrong_digest_leaves_neither_object_nor_staged_file(tmp_path: Path) -> None:
    digest = Digest(None, "0" * 64)
    with pytest.raises(HashMismatch):
        await write_file(tmp_path / "0", tmp_path / "scratch", pieces(b"a,b\n1,2\n", 3), digest)
    assert not (tmp_path / "0").exists()
    assert list((tmp_path / "scratch").iterdir()) == []


async def test_cancelled_while_a_block_is_written_cleans_up_after_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel (the client gone, the server stopping) must not close the staged file under the
    thread still writing to it, nor leave it behind."""
    monkeypatch.setattr(streams, "BLOCK_BYTES", 4)
    writing, release = threading.Event(), threading.Event()
    write = streams._hash_and_write

    def slow_write(*args: object) -> None:
        writing.set()
        release.wait(5)
        write(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(streams, "_hash_and_write", slow_write)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"abcd"
            await asyncio.sleep(0)

    task = asyncio.create_task(
        write_file(tmp_path / "0", tmp_path / "scratch", endless(), Digest(None, None))
    )
    await asyncio.to_thread(writing.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    assert len(list((tmp_path / "scratch").iterdir())) == 1  # still being written: kept open
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list((tmp_path / "scratch").iterdir()) == []
    assert not (tmp_path / "0").exists()


async def test_a_failing_write_is_reported_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(streams, "_hash_and_write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        await write_file(
            tmp_path / "0", tmp_path / "scratch", pieces(b"abc", 1), Digest(None, None)
        )
    assert list((tmp_path / "scratch").iterdir()) == []


async def test_hashed_parts_are_whole_parts_and_check_the_digest_last() -> None:
    data = os.urandom(25)
    digest = Digest(None, hashlib.sha256(data).hexdigest())

    parts = [part async for part in hashed_parts(pieces(data, 4), digest, 10)]

    assert [len(part) for part in parts] == [12, 12, 1]
    assert b"".join(parts) == data

    wrong = Digest(None, "0" * 64)
    handed: list[bytes] = []
    with pytest.raises(HashMismatch):
        await drain(hashed_parts(pieces(data, 4), wrong, 10), handed)
    assert b"".join(handed) == data  # every part handed over, then the upload aborted


async def test_a_slow_disk_holds_a_few_blocks_and_no_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket keeps being read while a write is slow, but memory stays bounded: the write
    stops taking pieces BLOCKS_IN_FLIGHT blocks (plus the one being gathered) ahead."""
    monkeypatch.setattr(streams, "BLOCK_BYTES", 4)
    release = threading.Event()
    write = streams._hash_and_write

    def slow_write(*args: object) -> None:
        release.wait(5)
        write(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(streams, "_hash_and_write", slow_write)
    taken: list[bytes] = []

    async def counted() -> AsyncIterator[bytes]:
        for number in range(20):
            piece = b"%04d" % number
            taken.append(piece)
            yield piece

    task = asyncio.create_task(
        write_file(tmp_path / "0", tmp_path / "scratch", counted(), Digest(None, None))
    )
    await asyncio.sleep(0.1)
    assert len(taken) == streams.BLOCKS_IN_FLIGHT + 1
    release.set()
    await task
    assert (tmp_path / "0").read_bytes() == b"".join(taken)  # in order, every piece
