"""Cutting a text input into blocks of whole records, in bounded memory.

CSV and JSON Lines are read in blocks of about ``chunk_bytes``, each cut just after a record's
final newline, so that every block parses on its own. A record that cannot be delimited within
``max_record_bytes`` is skipped without ever being held whole, and reported as one
RecordTooLarge marker in the block sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from batchyard.pipeline.formats_common import Reader, read_block


@dataclass(frozen=True, slots=True)
class RecordTooLarge:
    """Stands for one record longer than the limit, skipped in the input."""

    limit: int


def last_boundary(buf: bytes, quoted: bool) -> int:
    """Index of the last newline that ends a record in ``buf`` (which starts a record), or -1.

    With ``quoted`` (CSV) a newline ends a record only outside quotes, i.e. after an even number
    of '"' since the start of ``buf``; escaped quotes ("") keep the count even.
    """
    pos = buf.rfind(b"\n")
    if not quoted or pos < 0:
        return pos
    quotes = buf.count(b'"', 0, pos)
    while quotes % 2:
        prev = buf.rfind(b"\n", 0, pos)
        if prev < 0:
            return -1
        quotes -= buf.count(b'"', prev, pos)
        pos = prev
    return pos


def first_boundary(data: bytes, quotes_before: int, quoted: bool) -> int:
    """Index of the first record-ending newline in ``data``, given the quote count before it."""
    pos = data.find(b"\n")
    if not quoted:
        return pos
    quotes = quotes_before
    start = 0
    while pos >= 0:
        quotes += data.count(b'"', start, pos)
        if quotes % 2 == 0:
            return pos
        start = pos
        pos = data.find(b"\n", pos + 1)
    return -1


def _skip_record(stream: Reader, head: bytes, chunk_bytes: int, quoted: bool) -> bytes:
    """Read past the record that ``head`` starts; return what follows it (b"" at the end)."""
    quotes = head.count(b'"') if quoted else 0
    while True:
        data = read_block(stream, chunk_bytes)
        if not data:
            return b""
        end = first_boundary(data, quotes, quoted)
        if end >= 0:
            return data[end + 1 :]
        quotes += data.count(b'"') if quoted else 0


def record_blocks(
    stream: Reader, chunk_bytes: int, max_record_bytes: int, *, quoted: bool, head: bytes = b""
) -> Iterator[bytes | RecordTooLarge]:
    """Blocks of whole records (the last one may lack its final newline) and too-large markers.

    Args:
        head: bytes already read from ``stream`` (they come first).
    """
    carry = head
    while True:
        data = read_block(stream, chunk_bytes)
        if not data:
            if carry:
                yield carry
            return
        buf = carry + data if carry else data
        cut = last_boundary(buf, quoted)
        if cut >= 0:
            yield buf[: cut + 1]
            carry = buf[cut + 1 :]
        elif len(buf) > max_record_bytes:
            yield RecordTooLarge(max_record_bytes)
            carry = _skip_record(stream, buf, chunk_bytes, quoted)
        else:
            carry = buf
