"""Results written as chunks commit give the very bytes the results stage makes on its own.

Each batch runs twice on identical datasets: once with no part written as chunks commit (the
results stage makes every chunk's part from the staged chunk, the ledger and the input read
again: the writer as it was), once with parts written as chunks commit, whole, twice, or for
only some chunks (a participant that died between a chunk's commit and its part). Both runs'
results.csv and failed-records files must be equal byte for byte, and the second run must
really have joined stored parts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchyard.domain.outcomes import ChunkOutcome
from batchyard.pipeline import results as results_module
from batchyard.pipeline.results import ResultsWriter
from batchyard.pipeline.results_join import JoinedPrefix, ResultsJoin
from batchyard.pipeline.results_parts import ResultsParts
from batchyard.settings import Settings
from support.backend_settings import backend_settings
from support.waiting import wait_for_status

COLUMNS = [
    {"name": "id", "type": "integer", "nullable": False},
    {"name": "ts", "type": "timestamp"},
    {"name": "score", "type": "float"},
    {"name": "note", "type": "string"},
    {"name": "code", "type": "string", "enum": ["a", "b"]},
]
#: Records per chunk (and input read at a time): the inputs below span many chunks.
CHUNK_RECORDS = 40
Write = Callable[[ResultsParts, ChunkOutcome], Awaitable[None]]
#: The real ResultsParts.write, whatever a test made of it since.
WRITE: Write = ResultsParts.write
READ_PART = results_module.read_part


@pytest.fixture
def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(
        backend,
        request,
        tmp_path,
        allow_private_sources=True,
        chunk_bytes=4096,
        chunk_records=CHUNK_RECORDS,
    )


#: Keys already in the table when a batch starts: its records with one of them are refused by
#: the target whatever order its chunks commit in.
TAKEN = 100_000


def _record(n: int) -> dict[str, Any]:
    """Record ``n``: every 7th invalid, every 11th with a key the table already holds (the
    target refuses it, and only the input holds its text as sent: ``Z``, ``2.50``)."""
    key = TAKEN + n if n % 11 == 0 else n
    record: dict[str, Any] = {
        "id": key,
        "ts": f"2024-01-02T03:04:{n % 60:02d}Z",
        "score": f"{n}.50",
        "note": f'say "{n}",\nthere' if n % 3 == 0 else ("" if n % 5 == 0 else None),
        "code": "c" if n % 7 == 0 else "ab"[n % 2],
    }
    return record


def _csv(count: int) -> bytes:
    lines = ["id,ts,score,note,code"]
    for n in range(1, count + 1):
        r = _record(n)
        note = r["note"]
        text = "" if note is None else '"' + note.replace('"', '""') + '"'
        lines.append(f"{r['id']},{r['ts']},{r['score']},{text},{r['code']}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _jsonl(count: int) -> bytes:
    lines = []
    for n in range(1, count + 1):
        r = {k: v for k, v in _record(n).items() if v is not None}
        if n % 13 == 0:
            lines.append('{"id": ' + str(n) + ', "ts": "2024-01-02T03:04:05Z", "score": 1e400}')
        else:
            lines.append(json.dumps(r))
    return ("\n".join(lines) + "\n").encode()


async def _run(
    client: httpx.AsyncClient, dataset: str, body: bytes, fmt: str, options: dict[str, Any]
) -> tuple[dict[str, Any], bytes, bytes]:
    response = await client.post(
        "/datasets", json={"name": dataset, "primary_key": ["id"], "columns": COLUMNS}
    )
    assert response.status_code == 201, response.text
    taken = "id\n" + "".join(f"{TAKEN + n}\n" for n in range(11, 4000, 11))
    seed = await _batch(client, dataset, taken.encode(), "csv", {})
    assert seed["status"] == "completed", seed
    batch = await _batch(client, dataset, body, fmt, options)
    results = await client.get(f"/batches/{batch['batch']}/results")
    failed = await client.get(f"/batches/{batch['batch']}/failed-records")
    assert results.status_code == failed.status_code == 200
    return batch, results.content, failed.content


async def _batch(
    client: httpx.AsyncClient, dataset: str, body: bytes, fmt: str, options: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        "/batches",
        params={"dataset": dataset, "format": fmt, "options": json.dumps(options)},
        content=body,
    )
    assert response.status_code == 202, response.text
    return await wait_for_status(client, str(response.json()["batch"]))


def _writing(monkeypatch: pytest.MonkeyPatch, how: str) -> list[int]:
    """Make ResultsParts.write do ``how``; the chunks whose part was written, in a list."""
    written: list[int] = []

    async def write(parts: ResultsParts, outcome: ChunkOutcome) -> None:
        if how == "none" or (how == "some" and outcome.index % 2):
            return
        await WRITE(parts, outcome)
        if how == "twice":
            await WRITE(parts, outcome)
        written.append(outcome.index)

    monkeypatch.setattr(ResultsParts, "write", write)
    return written


def _joined(monkeypatch: pytest.MonkeyPatch, by_run: list[int] | None = None) -> list[int]:
    """The chunks whose stored part was joined: by the results stage, or by the batch's run
    as its chunks committed (the files the results stage then finishes; also in ``by_run``)."""
    joined: list[int] = []
    read, take = READ_PART, ResultsJoin.take

    def taken(join: ResultsJoin) -> JoinedPrefix | None:
        prefix = take(join)
        chunks = range(prefix.chunks if prefix is not None else 0)
        joined.extend(chunks)
        if by_run is not None:
            by_run.extend(chunks)
        return prefix

    def counting(blobs: Any, batch_id: str, index: int) -> Any:
        part = read(blobs, batch_id, index)
        if part is not None:
            joined.append(index)
        return part

    monkeypatch.setattr(results_module, "read_part", counting)
    monkeypatch.setattr(ResultsJoin, "take", taken)
    return joined


@pytest.mark.parametrize("how", ["once", "twice", "some"])
@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("csv", {}),
        ("csv", {"parallel_streams": 1}),
        ("jsonl", {}),
        ("csv", {"max_errors": 1000}),  # validated first, applied from staged chunks
    ],
    ids=["csv", "csv-one-stream", "jsonl", "two-pass"],
)
async def test_parts_written_as_chunks_commit_give_the_same_results(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    fmt: str,
    options: dict[str, Any],
) -> None:
    body = (_jsonl if fmt == "jsonl" else _csv)(300)
    by_run: list[int] = []
    joined = _joined(monkeypatch, by_run)
    _writing(monkeypatch, "none")
    reference, results, failed = await _run(client, "reference", body, fmt, options)
    assert reference["status"] == "completed", reference
    assert not joined
    written = _writing(monkeypatch, how)
    batch, joined_results, joined_failed = await _run(client, "joined", body, fmt, options)
    assert batch["status"] == "completed", batch
    assert joined_results == results
    assert joined_failed == failed
    assert set(joined) <= set(written)
    if "max_errors" not in options:  # two-pass: chunks the target refused records of have none
        assert joined, "no stored part was joined"
    if how == "once" and options == {"parallel_streams": 1}:  # chunks commit in input order
        assert by_run and sorted(joined) == sorted(by_run), "the results stage joined parts"
    for counter in ("successful_operations", "failed_operations"):
        assert batch[counter] == reference[counter]
    assert reference["failed_operations"] > 0
    assert b"2024-01-02T03:04:55Z" in failed  # a refused record's text as sent


def _built_both_ways(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[bytes], list[bytes]]]:
    """Make every results stage build its files twice from the same batch: each chunk's part
    made there (as the writer did before parts), then joined from the stored parts."""
    built: list[tuple[list[bytes], list[bytes]]] = []
    build = ResultsWriter.build

    def both(writer: ResultsWriter, target: Any, workdir: Path) -> tuple[Path, Path]:
        writer.use_parts = False
        (workdir / "made").mkdir()
        made = [p.read_bytes() for p in build(writer, target, workdir / "made")]
        writer.use_parts, writer.counts = True, Counter()
        paths = build(writer, target, workdir)
        built.append((made, [p.read_bytes() for p in paths]))
        return paths

    monkeypatch.setattr(ResultsWriter, "build", both)
    return built


async def test_a_batch_stopped_part_way_joins_the_parts_of_the_chunks_it_applied(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Input damaged part way (a cut gzip stream): the chunks applied before the damage are
    named from their parts, any chunk read but not applied as not processed, as the writer
    did (compared on the same batch: how far the streams got before the damage varies)."""
    whole = gzip.compress(_csv(2000), mtime=0)
    built, joined = _built_both_ways(monkeypatch), _joined(monkeypatch)
    batch, results, failed = await _run(client, "cut", whole[: len(whole) * 2 // 3], "csv", {})
    assert batch["status"] in {"failed", "validation_failed"}, batch
    assert batch["successful_operations"] > 0
    [(made, stitched)] = built[1:]  # the first: the batch that fills the taken keys
    assert stitched == made == [results, failed]
    assert joined, "no stored part was joined"


@pytest.mark.parametrize("options", [{}, {"max_errors": 1000}], ids=["stream", "two-pass"])
async def test_chunks_without_an_invalid_record_stage_no_errors_and_keep_their_results(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    """Only the chunk holding the one invalid record stores an errors object (a clean chunk's
    manifest entry says it has none), and the results stage, making every part from what was
    staged, still reports each record: the clean chunks' as applied, the invalid one failed."""
    from batchyard.pipeline import stage_validate

    stored: list[str] = []
    put_table = stage_validate.put_table

    async def recording(blobs: Any, key: str, table: Any) -> None:
        stored.append(key)
        await put_table(blobs, key, table)

    monkeypatch.setattr(stage_validate, "put_table", recording)
    _writing(monkeypatch, "none")  # every part is made by the results stage, from staged errors
    bad, count = 95, 300
    lines = ["id,ts,score,note,code"] + [
        f"{n},2024-01-02T03:04:05Z,{n}.5,,{'c' if n == bad else 'a'}" for n in range(1, count + 1)
    ]
    body = ("\n".join(lines) + "\n").encode()
    batch, results, failed = await _run(client, "clean", body, "csv", options)
    assert batch["status"] == "completed", batch
    assert (batch["successful_operations"], batch["failed_operations"]) == (count - 1, 1)
    assert len([k for k in stored if "/chunks/" in k]) >= count // CHUNK_RECORDS
    assert len([k for k in stored if "/errors/" in k]) == 1
    rows = list(csv.DictReader(io.StringIO(results.decode())))
    assert [int(r["record_number"]) for r in rows] == list(range(1, count + 1))
    assert {r["outcome"] for i, r in enumerate(rows, 1) if i != bad} == {"succeeded"}
    assert rows[bad - 1]["outcome"] == "failed"
    [refused] = list(csv.DictReader(io.StringIO(failed.decode())))
    assert refused["id"] == str(bad)
