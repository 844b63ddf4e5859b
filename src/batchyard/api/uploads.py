"""Request bodies as byte streams: raw uploads, and the ``file`` part of a multipart form.

Multipart is parsed incrementally (python-multipart's streaming parser), so a form upload is as
bounded in memory as a raw one: nothing is spooled to a temporary file first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from batchyard.domain.errors import InvalidRequest

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


async def multipart_file(request: Request) -> AsyncIterator[bytes]:
    """Yield the bytes of the ``file`` field of a multipart/form-data body as they arrive."""
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
    async for data in request.stream():
        parser.write(data)
        while part.pending:
            yield part.pending.pop(0)
    parser.finalize()
    if not part.seen_file:
        raise InvalidRequest("multipart body has no 'file' field")
