"""The results files joined while chunks commit, so that the results stage has little left to do.

Each committed chunk's part is stored on its own (pipeline/results_parts.py): that is what a
resumed batch, or another worker, joins. The batch's own run also appends each part, in input
order, to the two results files it is building in a scratch directory: a part that arrives
before an earlier chunk's waits in memory, a few at most. The results stage then takes the
files as they stand and only appends the parts of the chunks after them (pipeline/results.py),
instead of reading and writing every part once the last chunk has committed: on a 5M-record
batch that was seconds after the database work was over, with a core idle.

The join is an optimisation only: it lives as long as one run of the batch in one process,
covers the first chunks in input order, each with the very bytes of its stored part, and gives
up (the results stage then joins from the stored parts) whenever it cannot go on in order
(more than ``MOST_WAITING`` parts waiting for an earlier one, a chunk another worker applied),
and is dropped whole after a failed write. A crash loses it with the scratch directory;
nothing else depends on it.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from batchyard.pipeline.failed_records import FailedRecordsFormat
from batchyard.pipeline.results_chunk import ResultsPart, with_outputs
from batchyard.pipeline.results_rows import RESULTS_SCHEMA
from batchyard.storage.blobs import BlobStore

logger = logging.getLogger("batchyard.pipeline")

#: Parts kept in memory while an earlier chunk's part is not joined yet (each about a third of
#: a chunk's input): beyond them the join stops and the results stage joins the rest.
MOST_WAITING = 8
#: Column names are plain identifiers; quoting them only makes the file harder to read.
PLAIN_HEADER = pacsv.WriteOptions(quoting_header="none")  # type: ignore[call-arg]  # stubs lag pyarrow


@dataclass(frozen=True, slots=True)
class Headers:
    """The first bytes of results.csv and of the failed-records file."""

    results: bytes
    failed_records: bytes


def results_headers(failed_format: FailedRecordsFormat, *, with_output: bool) -> Headers:
    """The headers of a batch's results files (``with_output``: results.csv has ``output``)."""
    header = RESULTS_SCHEMA.empty_table()
    if with_output:
        header = with_outputs(header)
    text = pa.BufferOutputStream()
    pacsv.write_csv(header, text, PLAIN_HEADER)
    return Headers(text.getvalue().to_pybytes(), failed_format.header().encode())


@dataclass(frozen=True, slots=True)
class JoinedPrefix:
    """The results files holding the parts of the first ``chunks`` chunks, headers included."""

    results_path: Path
    failed_path: Path
    headers: Headers
    chunks: int
    counts: Counter[str]


class ResultsJoin:
    """One run's results files, appended to as parts come in, in chunk order (thread-safe)."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._lock = threading.Lock()
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._files: tuple[BinaryIO, BinaryIO] | None = None
        self._headers: Headers | None = None
        self._next = 0
        self._waiting: dict[int, ResultsPart] = {}
        self._counts: Counter[str] = Counter()
        self._stopped = False

    def add(self, index: int, part: ResultsPart, headers: Headers) -> None:
        """Join chunk ``index``'s stored ``part`` once every earlier chunk's is joined."""
        with self._lock:
            if self._stopped or index < self._next or index in self._waiting:
                return
            try:
                self._add(index, part, headers)
            except Exception:  # a write may have gone half through: nothing of it is kept
                logger.warning("results join dropped; the results stage joins", exc_info=True)
                self._stop()
                self._next = 0

    def _add(self, index: int, part: ResultsPart, headers: Headers) -> None:
        if self._headers is None:
            self._start(headers)
        elif headers != self._headers:
            self._stop()
            return
        self._waiting[index] = part
        while (ready := self._waiting.pop(self._next, None)) is not None:
            self._append(ready)
        if len(self._waiting) > MOST_WAITING:
            logger.info(
                "results join stopped after %d chunk(s): %d parts wait for chunk %d's",
                self._next,
                len(self._waiting),
                self._next,
            )
            self._stop()

    def _start(self, headers: Headers) -> None:
        self._directory = self._blobs.scratch_directory()
        root = Path(self._directory.name)
        results = (root / "results.csv").open("wb")
        failed = (root / "failed-records").open("wb")
        self._files = (results, failed)
        self._headers = headers
        results.write(headers.results)
        failed.write(headers.failed_records)

    def _append(self, part: ResultsPart) -> None:
        assert self._files is not None
        results, failed = self._files
        results.write(part.rows)
        failed.write(part.failed_records)
        self._counts.update(part.counts)
        self._next += 1

    def _stop(self) -> None:
        """Join no more: keep what is joined (the first chunks), drop the parts waiting."""
        self._stopped = True
        self._waiting.clear()

    def take(self) -> JoinedPrefix | None:
        """The files as joined so far, closed, for the results stage to finish; None when no
        chunk was joined. The join takes no more parts afterwards."""
        with self._lock:
            self._stop()
            if self._files is None or self._headers is None or self._directory is None:
                return None  # nothing started, or taken already
            if self._next == 0:
                return None  # no chunk joined: the results stage starts afresh
            for file in self._files:
                file.close()
            self._files = None
            root = Path(self._directory.name)
            return JoinedPrefix(
                root / "results.csv",
                root / "failed-records",
                self._headers,
                self._next,
                Counter(self._counts),
            )

    def close(self) -> None:
        """Remove the scratch files (what the results stage moved into the store is gone
        from there already)."""
        with self._lock:
            self._stop()
            if self._files is not None:
                for file in self._files:
                    file.close()
                self._files = None
            if self._directory is not None:
                self._directory.cleanup()
                self._directory = None
