"""Files to upload and files to download, streamed in fixed-size blocks (never read whole)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import anyio.to_thread

from batchyard.client._core import CHUNK_BYTES

FileArg = str | os.PathLike[str] | BinaryIO
#: Called with (bytes sent so far, total bytes or None when the size is unknown).
UploadProgress = Callable[[int, int | None], object]


class Upload:
    """A local file (path or binary file object) opened for streaming to the server."""

    def __init__(self, file: FileArg) -> None:
        if isinstance(file, str | os.PathLike):
            self.name: str | None = os.fspath(file)
            self._file: BinaryIO = Path(file).open("rb")  # noqa: SIM115 (closed by close())
            self._owned = True
        else:
            name = getattr(file, "name", None)
            self.name = name if isinstance(name, str) else None
            self._file = file
            self._owned = False
        self._start = self._file.tell() if self._file.seekable() else 0
        self.size = self._measure()

    def _measure(self) -> int | None:
        if not self._file.seekable():
            return None
        end = self._file.seek(0, io.SEEK_END)
        self._file.seek(self._start)
        return end - self._start

    def sha256(self) -> str:
        """SHA-256 of the bytes to send: a first streaming pass, then back to the start."""
        if not self._file.seekable():
            raise ValueError("hash='auto' needs a seekable file (a path or a regular file)")
        digest = hashlib.sha256()
        for block in iter(lambda: self._file.read(CHUNK_BYTES), b""):
            digest.update(block)
        self._file.seek(self._start)
        return digest.hexdigest()

    def blocks(self, on_progress: UploadProgress | None = None) -> Iterator[bytes]:
        """The content as blocks, reporting the bytes sent so far."""
        sent = 0
        while block := self._file.read(CHUNK_BYTES):
            sent += len(block)
            if on_progress is not None:
                on_progress(sent, self.size)
            yield block

    async def ablocks(self, on_progress: UploadProgress | None = None) -> AsyncIterator[bytes]:
        """The same blocks for the async client; disk reads run off the event loop."""
        sent = 0
        while block := await anyio.to_thread.run_sync(self._file.read, CHUNK_BYTES):
            sent += len(block)
            if on_progress is not None:
                on_progress(sent, self.size)
            yield block

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def open_destination(dest: FileArg) -> Iterator[BinaryIO]:
    """A writable binary file for a download: ``dest`` itself, or the path opened for writing."""
    if isinstance(dest, str | os.PathLike):
        with Path(dest).open("wb") as out:
            yield out
    else:
        yield dest
