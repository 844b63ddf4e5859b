"""Cutting a text input into blocks of whole records, in bounded memory.

CSV and JSON Lines are read in blocks of about ``chunk_bytes``, each cut just after a record's
line ending, so that every block parses on its own. Where a record ends is decided by the same
rules the parsers use (for CSV: RFC 4180 as Python's csv module and pyarrow read it), so a block
boundary never changes what a record is. A record longer than ``max_record_bytes`` is skipped
without ever being held whole, and reported as one RecordTooLarge marker in the block sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from batchyard.pipeline.formats_common import Reader, read_block

#: Positions in a piece of input (numpy's index type).
Positions = npt.NDArray[np.intp]
BOM = b"\xef\xbb\xbf"
QUOTE, LF, CR = 0x22, 0x0A, 0x0D
_NONE: Positions = np.empty(0, np.intp)


@dataclass(frozen=True, slots=True)
class RecordTooLarge:
    """Stands for one record longer than the limit, skipped in the input."""

    limit: int


class RecordEnds(Protocol):
    """Finds where records end in consecutive pieces of one input (it keeps state between)."""

    def ends(self, data: bytes) -> Positions:
        """Positions of the last byte of each record's line ending in ``data``."""
        ...

    def last_line_ending(self) -> bytes:
        """What to give the input's last record if it lacks a line ending."""
        ...

    def last_end(self, data: bytes) -> Positions | None:
        """Like ``ends`` but only the last position (none if no record ends in ``data``), or
        None, having changed nothing, where finding it costs as much as finding them all."""
        ...


class LineEnds:
    """JSON Lines: every "\\n" ends a record."""

    def ends(self, data: bytes) -> Positions:
        return np.flatnonzero(np.frombuffer(data, np.uint8) == LF)

    def last_end(self, data: bytes) -> Positions | None:
        last = data.rfind(b"\n")
        return _NONE if last < 0 else np.array([last], np.intp)

    def last_line_ending(self) -> bytes:
        return b""


def _line_breaks(data: bytes, bytes_: npt.NDArray[np.uint8]) -> Positions:
    """Every "\n", and every "\r" not followed by "\n" ("\r\n" ends at its "\n")."""
    lf = np.flatnonzero(bytes_ == LF)
    if b"\r" not in data:  # memchr: most files have no "\r" at all (counting one is slower)
        return lf
    crs = data.count(b"\r")
    lone = crs - int(np.count_nonzero(bytes_[lf[lf > 0] - 1] == CR))
    if lone == 0:
        return lf
    if lone == 1 and data[-1] == CR:  # "\r" last in a "\r\n" file: its "\n" may come next
        return np.append(lf, len(data) - 1)
    cr = bytes_ == CR
    cr[:-1] &= bytes_[1:] != LF
    return np.union1d(lf, np.flatnonzero(cr))


class CsvEnds:
    """Where CSV records end: at "\\n", "\\r" or "\\r\\n" outside a quoted field.

    A '"' opens a quoted field only at the start of a field (after a delimiter, a line ending,
    or at the start of the input); inside one, '""' is a quote and a lone '"' closes it, and
    what follows up to the next delimiter is plain text, quotes included. Elsewhere a '"' is
    plain text: `10,a 15" laptop sleeve,t10` is one record of three fields.

    Vectorised over runs of consecutive quotes rather than walking bytes: a run of odd length
    that starts a field toggles "inside quotes"; one of odd length anywhere else leaves a quoted
    field (if inside one, its first quote closes it) or is plain text, so either way it ends
    outside; a run of even length changes nothing. So the state after each run is the parity of
    the toggles since the last such reset, which numpy computes with two running sums.
    """

    def __init__(self, delimiter: int) -> None:
        self._starts_field = np.zeros(256, bool)
        self._starts_field[[delimiter, LF, CR]] = True
        #: After these bytes a quote opens a quoted field, on the fast path (a quote: '""').
        self._opens_after = self._starts_field.copy()
        self._opens_after[QUOTE] = True
        self._inside = False  # in a quoted field at the end of the previous piece
        self._opens = True  # whether a quote first in the next piece opens (or reopens) one

    def ends(self, data: bytes) -> Positions:
        if not data:
            return _NONE
        bytes_ = np.frombuffer(data, np.uint8)
        breaks = _line_breaks(data, bytes_)
        if QUOTE not in data:
            self._opens = bool(self._starts_field[bytes_[-1]])
            return _NONE if self._inside else breaks
        quotes = np.flatnonzero(bytes_ == QUOTE)
        in_quotes = self._by_parity(bytes_, quotes, breaks)
        if in_quotes is None:
            in_quotes = self._by_runs(bytes_, quotes, breaks)
        else:
            self._inside ^= bool(quotes.size & 1)
            self._opens = bool(self._opens_after[bytes_[-1]])
        return breaks[~in_quotes]

    def last_end(self, data: bytes) -> Positions | None:
        """Without a quote in ``data`` the last line break is the last end (a "\r" is one unless
        a "\n" follows it, which would then be later): two searches from the end instead of a
        mask of the whole piece. Quotes, and a "\r" last (it may be half of a "\r\n"), take
        ``ends``."""
        if not data or data[-1] == CR or QUOTE in data:
            return None
        self._opens = bool(self._starts_field[data[-1]])
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        return _NONE if self._inside or last < 0 else np.array([last], np.intp)

    def last_line_ending(self) -> bytes:
        """A "\n", unless the input ends inside a quoted field (which it would then extend).

        pyarrow reads a last field after a quoted one as "" rather than NULL when the record
        lacks its line ending (`1,"x",`); with one, both parsers agree on every record."""
        return b"" if self._inside else b"\n"

    def _by_parity(
        self, bytes_: npt.NDArray[np.uint8], quotes: Positions, breaks: Positions
    ) -> npt.NDArray[np.bool_] | None:
        """Fast path, for quoting as writers produce it: inside quotes after an odd number of
        quotes. That holds when every quote the count takes for an opening one is at the start
        of a field or right after the quote that closed one ('""' inside a field); else None."""
        openings = quotes[int(self._inside) :: 2]
        if openings.size and openings[0] == 0:
            if not self._opens:
                return None
            openings = openings[1:]
        if not self._opens_after[bytes_[openings - 1]].all():
            return None
        return ((np.searchsorted(quotes, breaks) + int(self._inside)) & 1).astype(bool)

    def _by_runs(
        self, bytes_: npt.NDArray[np.uint8], quotes: Positions, breaks: Positions
    ) -> npt.NDArray[np.bool_]:
        """General path: the state after each run of quotes (see the class docstring)."""
        run_starts, inside_after, opening = self._quote_runs(bytes_, quotes)
        inside_before = np.concatenate(([self._inside], inside_after))
        if bytes_[-1] == QUOTE:  # the last run may go on in the next piece
            self._opens = bool(opening[-1] or inside_before[-2])
        else:
            self._opens = bool(self._starts_field[bytes_[-1]])
        self._inside = bool(inside_after[-1])
        in_quotes: npt.NDArray[np.bool_] = inside_before[np.searchsorted(run_starts, breaks)]
        return in_quotes

    def _quote_runs(
        self, bytes_: npt.NDArray[np.uint8], quotes: Positions
    ) -> tuple[Positions, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Each run of quotes: where it starts, whether it ends inside quotes, whether it opens."""
        first = np.ones(quotes.size, bool)
        first[1:] = np.diff(quotes) != 1
        first_index = np.flatnonzero(first)
        run_starts = quotes[first_index]
        odd = (np.diff(first_index, append=quotes.size) & 1).astype(bool)
        opening = self._starts_field[bytes_[run_starts - 1]]
        if run_starts[0] == 0:
            opening[0] = self._opens
        toggles = np.cumsum(odd & opening)
        resets = odd & ~opening
        last_reset = np.maximum.accumulate(np.where(resets, np.arange(run_starts.size), -1))
        base = np.where(last_reset >= 0, toggles[last_reset], -int(self._inside))
        since_reset: npt.NDArray[np.intp] = toggles - base
        return run_starts, (since_reset & 1).astype(bool), opening


class _Joined:
    """The carry of the last piece followed by the new one, sliced without joining them first.

    A block is a few MiB: joining carry and piece and then slicing the block out would copy it
    twice into fresh memory (each copy page-faulted in anew); this copies it once.
    """

    def __init__(self, head: bytes, tail: bytes) -> None:
        self._head = head
        self._tail = tail

    def __len__(self) -> int:
        return len(self._head) + len(self._tail)

    @property
    def last(self) -> int:
        return (self._tail or self._head)[-1]

    def __getitem__(self, where: slice) -> bytes:
        start, stop, _ = where.indices(len(self))
        split = len(self._head)
        if start >= split:  # a whole tail comes back as is, uncopied
            return self._tail[start - split : stop - split]
        if stop <= split:
            return self._head[start:stop]
        return b"".join((memoryview(self._head)[start:], memoryview(self._tail)[: stop - split]))


class _Cutter:
    """Turns pieces of input into blocks of whole records, checking each record's size."""

    def __init__(
        self, ends: RecordEnds, max_record_bytes: int, max_first_bytes: int | None
    ) -> None:
        self._ends = ends
        self._limit = max_record_bytes
        #: The first record's own limit (a header's), when it comes alone.
        self._first_limit = min(max_first_bytes or max_record_bytes, max_record_bytes)
        self._first_alone = max_first_bytes is not None  # the header is a block of its own
        self._carry = b""  # the start of a record whose end is not read yet
        self._skipping = False  # inside a too-large record, already reported
        self._open_cr = False  # the carry ends with "\r": a "\n" may still follow
        self._drop_lf = False  # a skipped record ended with "\r": drop a "\n" next

    def feed(self, data: bytes) -> Iterator[bytes | RecordTooLarge]:
        ends = self._last_end(data)
        if ends is None:
            ends = self._ends.ends(data)
        if self._drop_lf:  # the "\n" of a skipped record's "\r\n"
            self._drop_lf = False
            if data[:1] == b"\n":
                data, ends = data[1:], ends[1:] - 1
        if self._skipping:
            if not ends.size:
                return
            end = int(ends[0])
            self._drop_lf = end == len(data) - 1 and data[end] == CR
            data, ends = data[end + 1 :], ends[1:] - (end + 1)
            self._skipping = False
        offset = len(self._carry)
        if self._open_cr and data[:1] != b"\n":
            ends = np.concatenate(([-1], ends))
        buf = _Joined(self._carry, data)
        ends = ends + offset
        self._open_cr = bool(ends.size) and ends[-1] == len(buf) - 1 and buf.last == CR
        if self._open_cr:
            ends = ends[:-1]
        start = 0
        if self._first_alone and ends.size:
            self._first_alone = False
            start = int(ends[0]) + 1
            yield buf[:start] if start <= self._first_limit else RecordTooLarge(self._first_limit)
            ends = ends[1:]
        yield from self._whole_records(buf, ends, start)

    def _last_end(self, data: bytes) -> Positions | None:
        """The last record end alone, where nothing but the last end is looked at: no record
        can be over the limit when carry and piece together are not (a 2 MiB piece under a
        16 MiB limit), and no header, skipped record or dropped "\n" needs the first end."""
        if self._first_alone or self._skipping or self._drop_lf:
            return None
        if len(self._carry) + len(data) > self._limit:
            return None
        return self._ends.last_end(data)

    def _whole_records(
        self, buf: _Joined, ends: Positions, start: int
    ) -> Iterator[bytes | RecordTooLarge]:
        """Blocks from ``start`` up to the last end, and a marker for each record over the limit."""
        if ends.size:
            lengths = np.diff(ends, prepend=start - 1)
            for big in np.flatnonzero(lengths > self._limit).tolist():
                begin = int(ends[big] - lengths[big]) + 1
                if begin > start:
                    yield buf[start:begin]
                yield RecordTooLarge(self._limit)
                start = int(ends[big]) + 1
            if ends[-1] + 1 > start:
                yield buf[start : ends[-1] + 1]
                start = int(ends[-1]) + 1
        self._carry = buf[start:]
        limit = self._first_limit if self._first_alone else self._limit
        if len(self._carry) > limit:
            yield RecordTooLarge(limit)
            # A carry ending with "\r" is a whole record: only its "\r\n" may go on.
            self._skipping, self._drop_lf = not self._open_cr, self._open_cr
            self._carry, self._open_cr, self._first_alone = b"", False, False

    def finish(self) -> Iterator[bytes]:
        if self._carry and not self._open_cr:
            yield self._carry + self._ends.last_line_ending()
        elif self._carry:
            yield self._carry


def record_blocks(
    stream: Reader,
    chunk_bytes: int,
    max_record_bytes: int,
    *,
    quoted: bool,
    delimiter: str = ",",
    max_header_bytes: int | None = None,
) -> Iterator[bytes | RecordTooLarge]:
    """Blocks of whole records and too-large markers (a JSON Lines input's last line may lack
    its "\n"; a CSV input's last record gets one, unless it ends inside quotes).

    With ``quoted`` (CSV) the first record (the header, up to ``max_header_bytes``) is a block
    of its own, and a UTF-8 byte order mark and blank lines in front of it are dropped.
    ``delimiter`` must be one byte.
    """
    ends: RecordEnds = CsvEnds(delimiter.encode("utf-8")[0]) if quoted else LineEnds()
    first_limit = (max_header_bytes or max_record_bytes) if quoted else None
    cutter = _Cutter(ends, max_record_bytes, first_limit)
    first = read_block(stream, max(chunk_bytes, len(BOM)))
    if quoted:
        first = first.removeprefix(BOM)
        while first and not first.strip(b"\r\n"):  # blank lines before the header
            first = read_block(stream, chunk_bytes)
        first = first.lstrip(b"\r\n")
    yield from cutter.feed(first)
    while data := read_block(stream, chunk_bytes):
        yield from cutter.feed(data)
    yield from cutter.finish()
