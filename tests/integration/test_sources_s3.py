"""s3:// sources against a real S3 server: glob expansion and copies into blob storage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from batchyard.domain.batches import Source
from batchyard.domain.errors import (
    HashMismatch,
    InvalidSource,
    SourcesTooLarge,
    SourceUnavailable,
)
from batchyard.pipeline import sources_s3
from batchyard.pipeline.addresses import Reach
from batchyard.pipeline.sources import CopiedSource, copy_sources
from batchyard.pipeline.sources_s3 import S3Sources
from batchyard.storage.blobs import BlobStore
from batchyard.storage.s3 import S3Connection
from support.s3server import FORBIDDEN_BUCKET, SOURCE_BUCKET, S3Server

CSV = b"id,name\n1,alpha\n2,beta\n"


@pytest.fixture
def s3(s3_env: S3Server, s3_prefix: str) -> S3Sources:
    client = s3_env.client()
    for key in ("in/a.csv", "in/b.csv", "in/c.json", "in/deeper/d.csv"):
        client.put_object(Bucket=SOURCE_BUCKET, Key=f"{s3_prefix}/{key}", Body=CSV)
    return S3Sources(S3Connection(s3_env.endpoint), frozenset({SOURCE_BUCKET}))


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def copy(s3: S3Sources, tmp_path: Path, *urls: str | Source, **kw: int) -> list[CopiedSource]:
    async def log(message: str) -> None:
        pass

    return await copy_sources(
        [url if isinstance(url, Source) else Source(url) for url in urls],
        BlobStore.from_url(tmp_path.as_uri()),
        "batches/b1/input",
        parallel_streams=4,
        max_bytes=kw.get("max_bytes"),
        reach=Reach(),
        file_root=None,
        log=log,
        s3=s3,
    )


async def test_a_glob_expands_to_the_objects_of_one_level(s3: S3Sources, s3_prefix: str) -> None:
    base = f"s3://{SOURCE_BUCKET}/{s3_prefix}"
    expanded = await s3.expand([Source(f"{base}/in/*.csv"), Source("https://example.com/x.csv")])
    assert [source.url for source in expanded] == [
        f"{base}/in/a.csv",
        f"{base}/in/b.csv",
        "https://example.com/x.csv",
    ]
    everything = await s3.expand([Source(f"{base}/*/*")])
    assert len(everything) == 3  # in/a.csv, in/b.csv, in/c.json; not in/deeper/d.csv


async def test_globs_that_match_nothing_or_too_much_are_refused(
    s3: S3Sources, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"s3://{SOURCE_BUCKET}/{s3_prefix}"
    with pytest.raises(InvalidSource, match="matches no objects"):
        await s3.expand([Source(f"{base}/in/*.parquet")])
    monkeypatch.setattr(sources_s3, "MAX_GLOB_MATCHES", 1)
    with pytest.raises(InvalidSource, match="more than 1 objects"):
        await s3.expand([Source(f"{base}/in/*.csv")])
    with pytest.raises(InvalidSource, match="not one this server reads from"):
        await s3.expand([Source(f"s3://{FORBIDDEN_BUCKET}/*.csv")])


async def test_objects_are_copied_with_their_hash_and_name(
    s3: S3Sources, s3_prefix: str, tmp_path: Path
) -> None:
    base = f"s3://{SOURCE_BUCKET}/{s3_prefix}"
    digest = hashlib.sha256(CSV).hexdigest()
    copied = await copy(s3, tmp_path, f"{base}/in/a.csv", Source(f"{base}/in/c.json", digest))
    assert [(c.size, c.sha256, c.name_hint) for c in copied] == [
        (len(CSV), digest, "a.csv"),
        (len(CSV), digest, "c.json"),
    ]
    assert (tmp_path / "batches/b1/input/1").read_bytes() == CSV


async def test_copy_failures_are_precise(s3: S3Sources, s3_prefix: str, tmp_path: Path) -> None:
    base = f"s3://{SOURCE_BUCKET}/{s3_prefix}"
    with pytest.raises(SourceUnavailable, match="does not exist"):
        await copy(s3, tmp_path, f"{base}/in/missing.csv")
    with pytest.raises(HashMismatch, match="does not match its sha256"):
        await copy(s3, tmp_path, Source(f"{base}/in/a.csv", "0" * 64))
    with pytest.raises(SourcesTooLarge):
        await copy(s3, tmp_path, f"{base}/in/a.csv", max_bytes=10)
    assert files_under(tmp_path) == []  # failed copies leave nothing behind
