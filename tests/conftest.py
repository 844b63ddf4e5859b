"""Fixtures shared by every tier: a real PostgreSQL database per test, and the backend matrix.

The server those databases live on is ``pg_server`` (``support/pg_server.py``):
``BATCHYARD_TEST_PG`` when it answers, else a private one the suite starts itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from support.s3_fixtures import s3_env, s3_prefix, s3_server  # noqa: F401 - fixtures

pytest_plugins = [
    "support.ci_gate",  # CI=true: a skipped test fails the run
    "support.pg_server",  # pg_server: BATCHYARD_TEST_PG, or a private server when none answers
]


def _admin_connect(server: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"{server}/postgres", autocommit=True)


@contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (libpq URL), dropped with its connections afterwards."""
    name = f"by_test_{uuid.uuid4().hex[:16]}"
    with _admin_connect(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with _admin_connect(server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only; dropped afterwards."""
    with scratch_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url(pg_server: str) -> Iterator[str]:
    """One PostgreSQL database for a module's long-lived server (a test's would end too soon)."""
    with scratch_database(pg_server) as url:
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
