"""Fixtures for S3 mode: one ``weed mini`` per test session, its credentials per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from support.s3server import S3Server, unset_other_aws_variables


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server on loopback, with the test buckets created."""
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's credentials as AWS_* variables (and nobody else's) for this test."""
    for name in unset_other_aws_variables(os.environ):
        monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the buckets never see each other."""
    return f"t-{uuid.uuid4().hex[:12]}"
