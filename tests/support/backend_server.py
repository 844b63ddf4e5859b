"""``batchyard serve`` on the test's backend: SQLite in its data dir, or a fresh PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.servers import BatchyardServer


@contextmanager
def serve_backend(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[BatchyardServer]:
    env = {"BATCHYARD_CHUNK_BYTES": str(256 * 1024)}
    if backend == "postgresql":
        pg_url = str(request.getfixturevalue("pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    server = BatchyardServer(tmp_path / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()
