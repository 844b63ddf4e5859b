"""Request bodies as byte streams: raw uploads, and the ``file`` part of a multipart form.

Multipart is parsed incrementally (python-multipart's streaming parser), so a form upload is as
bounded in memory as a raw one: nothing is spooled to a temporary file first. Every upload is
read through ``guarded``: a client that stalls is cut off, one that disconnects is named so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from batchyard.domain.errors import InvalidRequest, UploadInterrupted, UploadStalled

FILE_FIELD = b"file"


def is_multipart(request: Request) -> bool:
    kind, _ = parse_options_header(request.headers.get("content-type"))
    return kind == b"multipart/form-data"


class _FilePart:
    """Collects the bytes of the form's ``file`` part as the parser finds them."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.header_field = b""
        self.header_value = b""
        self.in_file = False
        self.seen_file = False
        self.filename: str | None = None

    def on_part_begin(self) -> None:
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            _, params = parse_options_header(self.header_value)
            if params.get(b"name") == FILE_FIELD and not self.seen_file:
                self.in_file = self.seen_file = True
                name = params.get(b"filename")
                self.filename = name.decode("utf-8", "replace") if name else None
        self.header_field = self.header_value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending.append(data[start:end])

    def on_part_end(self) -> None:
        self.in_file = False


async def guarded(chunks: AsyncIterable[bytes], idle_seconds: float) -> AsyncIterator[bytes]:
    """``chunks`` as they come, cut off after ``idle_seconds`` without a byte.

    Raises UploadStalled then, and UploadInterrupted when the client goes away mid-upload, so
    the batch fails with a plain reason instead of "unexpected error".
    """
    received = 0
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadStalled(
                f"The upload sent nothing for {idle_seconds:g} s after {received} bytes"
                " and was cut off",
                details={"idle_seconds": idle_seconds, "received_bytes": received},
            ) from None
        except ClientDisconnect:
            raise UploadInterrupted(
                f"The client disconnected after sending {received} bytes of the upload",
                details={"received_bytes": received},
            ) from None
        received += len(chunk)
        yield chunk


async def open_multipart_file(request: Request, body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The bytes of the form's ``file`` field, once its headers are read.

    The body is read up to the start of the ``file`` part before returning, so a form that does
    not parse or has no ``file`` field is refused (InvalidRequest) before any batch exists.
    """
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidRequest("multipart body without a boundary")
    part = _FilePart()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": part.on_part_begin,
            "on_header_field": part.on_header_field,
            "on_header_value": part.on_header_value,
            "on_header_end": part.on_header_end,
            "on_part_data": part.on_part_data,
            "on_part_end": part.on_part_end,
        },
    )
    chunks = aiter(body)
    async for data in chunks:
        _feed(parser, data)
        if part.seen_file:
            return _file_bytes(parser, part, chunks)
    _finalize(parser)
    raise InvalidRequest("multipart body has no 'file' field")


async def _file_bytes(
    parser: MultipartParser, part: _FilePart, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    while part.pending:
        yield part.pending.pop(0)
    async for data in chunks:
        _feed(parser, data)
        while part.pending:
            yield part.pending.pop(0)
    _finalize(parser)


def _feed(parser: MultipartParser, data: bytes) -> None:
    try:
        parser.write(data)
    except MultipartParseError as error:
        raise InvalidRequest(f"multipart body does not parse: {error}") from None


def _finalize(parser: MultipartParser) -> None:
    try:
        parser.finalize()
    except MultipartParseError as error:
        raise InvalidRequest(f"multipart body does not parse: {error}") from None
