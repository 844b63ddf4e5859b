"""The results files joined as chunks commit: in input order whatever order parts come in,
and given up (the results stage joins the rest from the stored parts) rather than held."""

from __future__ import annotations

from pathlib import Path

from batchyard.pipeline.results_chunk import ResultsPart
from batchyard.pipeline.results_join import MOST_WAITING, Headers, ResultsJoin
from batchyard.storage.blobs import BlobStore

HEADERS = Headers(b"record_number,outcome\n", b"id,error\n")


def _part(index: int) -> ResultsPart:
    return ResultsPart(f"{index},succeeded\n".encode(), f"{index},bad\n".encode(), succeeded=1)


def _join(tmp_path: Path) -> ResultsJoin:
    return ResultsJoin(BlobStore.from_url(str(tmp_path / "blobs")))


def test_parts_arriving_out_of_order_are_joined_in_input_order(tmp_path: Path) -> None:
    join = _join(tmp_path)
    for index in [1, 0, 3, 2, 2, 0, 4]:  # a part written twice is joined once
        join.add(index, _part(index), HEADERS)
    prefix = join.take()
    assert prefix is not None and prefix.chunks == 5
    assert prefix.results_path.read_bytes() == HEADERS.results + b"".join(
        _part(n).rows for n in range(5)
    )
    assert prefix.failed_path.read_bytes() == HEADERS.failed_records + b"".join(
        _part(n).failed_records for n in range(5)
    )
    assert prefix.counts["succeeded"] == 5
    join.close()
    assert not prefix.results_path.exists()


def test_a_missing_part_stops_the_join_at_the_chunks_before_it(tmp_path: Path) -> None:
    """Chunk 1's part never comes (another worker applied it): the parts after it are not held
    for ever; the join keeps chunk 0 and takes no more."""
    join = _join(tmp_path)
    join.add(0, _part(0), HEADERS)
    for index in range(2, MOST_WAITING + 4):
        join.add(index, _part(index), HEADERS)
    join.add(1, _part(1), HEADERS)  # too late: the join has stopped
    prefix = join.take()
    assert prefix is not None and prefix.chunks == 1
    assert prefix.results_path.read_bytes() == HEADERS.results + _part(0).rows
    join.close()


def test_nothing_joined_gives_nothing_to_finish(tmp_path: Path) -> None:
    join = _join(tmp_path)
    join.add(3, _part(3), HEADERS)  # chunks 0 to 2 were committed by an earlier run
    assert join.take() is None
    join.close()


def test_parts_made_with_other_headers_stop_the_join(tmp_path: Path) -> None:
    join = _join(tmp_path)
    join.add(0, _part(0), HEADERS)
    join.add(1, _part(1), Headers(b"other\n", b""))
    join.add(2, _part(2), HEADERS)
    prefix = join.take()
    assert prefix is not None and prefix.chunks == 1
    assert join.take() is None  # taken once: the results stage owns the files now
    join.close()


def test_a_failed_write_drops_what_was_joined(tmp_path: Path) -> None:
    """A write that failed half way leaves the files in no known state: none of them is used."""
    join = _join(tmp_path)
    join.add(0, _part(0), HEADERS)
    broken = ResultsPart(b"1,succeeded\n", None, succeeded=1)  # type: ignore[arg-type]
    join.add(1, broken, HEADERS)  # its rows are written, its failed records cannot be
    join.add(2, _part(2), HEADERS)
    assert join.take() is None
    join.close()
