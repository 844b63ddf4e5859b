"""Settings of an in-process service on one backend: the tests' one way to build them.

SQLite when ``backend`` is "sqlite" (the embedded default, everything under ``tmp_path``), the
suite's PostgreSQL otherwise; ``overrides`` set what a test module needs beyond that (chunk
sizes, storage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchyard.settings import Settings
from support.servers import ADMIN_TOKEN


def backend_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any
) -> Settings:
    """Settings for ``backend``, with the admin token the tests use and ``overrides``."""
    database_url = None
    if backend == "postgresql":
        database_url = str(request.getfixturevalue("pg_url")).replace(
            "postgresql://", "postgresql+psycopg://"
        )
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        **overrides,
    }
    return Settings(**values)
