"""Fixtures shared by every tier: a real PostgreSQL database per test, and the backend matrix."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from support.s3_fixtures import s3_env, s3_prefix, s3_server  # noqa: F401 - fixtures

pytest_plugins = ["support.ci_gate"]  # CI=true: a skipped test fails the run

#: Server the suite creates its per-test databases on (trust auth on loopback in CI).
PG_SERVER = os.environ.get("BATCHYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin_connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (libpq URL), dropped with its connections afterwards."""
    name = f"by_test_{uuid.uuid4().hex[:16]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only; dropped afterwards."""
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    """One PostgreSQL database for a module's long-lived server (a test's would end too soon)."""
    with scratch_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Runs a test once per supported database backend."""
    return str(request.param)


@pytest.fixture
def target_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A plain (non-SQLAlchemy) URL of an empty target database for ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return str(request.getfixturevalue("pg_url"))
