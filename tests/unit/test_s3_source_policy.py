"""Which s3:// sources a server accepts, decided without touching the network."""

from __future__ import annotations

import pytest

from batchyard.domain.errors import InvalidSource
from batchyard.pipeline.sources import validate_source_url
from batchyard.pipeline.sources_s3 import S3Sources, _match
from batchyard.settings import Settings
from batchyard.storage.s3 import S3Location, parse_s3_url


def sources(storage_url: str, buckets: str | None = None) -> S3Sources:
    return S3Sources.from_settings(Settings(storage_url=storage_url, s3_source_buckets=buckets))


def test_the_storage_bucket_is_the_default_and_its_own_objects_are_reserved() -> None:
    s3 = sources("s3://store/pre")
    assert s3.buckets == {"store"}
    assert s3.reserved == S3Location("store", "pre/batches")
    assert s3.check("s3://store/incoming/a.csv") == S3Location("store", "incoming/a.csv")


def test_configured_buckets_replace_the_default() -> None:
    assert sources("s3://store/pre", " in-a , in-b ,").buckets == {"in-a", "in-b"}
    assert sources("/var/lib/batchyard/blobs", "in-a").buckets == {"in-a"}
    assert sources("/var/lib/batchyard/blobs").buckets == frozenset()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://other/a.csv", "bucket 'other' is not one this server reads from"),
        ("s3://store", "names a bucket but no object"),
        ("s3://store/pre/batches/b1/input/0", "batchyard's own storage"),
        ("s3://store/pre/batches", "batchyard's own storage"),
        ("s3://Bad_Bucket/a.csv", "does not name a valid bucket"),
        ("s3://key:secret@store/a.csv", "without credentials"),
        ("s3://store/a/../pre/batches/x", "'..' segments"),
    ],
)
def test_refused_sources(url: str, message: str) -> None:
    with pytest.raises(InvalidSource, match=message):
        sources("s3://store/pre").check(url)


def test_keys_next_to_the_reserved_prefix_are_fine() -> None:
    assert sources("s3://store/pre").check("s3://store/pre/batches-old/a.csv").key == (
        "pre/batches-old/a.csv"
    )
    assert sources("s3://store").reserved == S3Location("store", "batches")


def test_s3_sources_are_refused_when_not_enabled() -> None:
    with pytest.raises(InvalidSource, match="not enabled"):
        validate_source_url("s3://store/a.csv", file_root=None)
    with pytest.raises(InvalidSource, match="not enabled"):
        sources("/var/lib/blobs").check("s3://store/a.csv")


def test_globs_match_one_segment_per_star() -> None:
    pattern = ["data", "2024-*", "*.csv"]
    assert _match("data/2024-01/a.csv", pattern)
    assert not _match("data/2024-01/deeper/a.csv", pattern)
    assert not _match("data/2024-01/a.csv.gz", pattern)
    assert not _match("data/2023-12/a.csv", pattern)


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket/a/b%20c.csv") == S3Location("bucket", "a/b c.csv")
    assert parse_s3_url("s3://bucket/prefix/") == S3Location("bucket", "prefix")
    with pytest.raises(ValueError, match="not an s3:// URL"):
        parse_s3_url("https://bucket/a")
