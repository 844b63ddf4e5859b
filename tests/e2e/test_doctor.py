"""``batchyard doctor`` run as an operator runs it, on good and bad configurations."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from batchyard.store.database import MetadataStore


def doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "batchyard", "doctor", "--data-dir", str(tmp_path / "data")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _migrate(url: str) -> None:
    store = await MetadataStore.open(url)
    await store.close()


def test_a_sound_production_configuration_has_nothing_to_fix(tmp_path: Path, pg_url: str) -> None:
    database_url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    asyncio.run(_migrate(database_url))
    done = doctor(
        tmp_path,
        BATCHYARD_DATABASE_URL=database_url,
        BATCHYARD_RUNNER="queue",
        BATCHYARD_SECRET_KEY="a-long-random-value-shared-by-every-replica",
        BATCHYARD_PUBLIC_URL="https://imports.example.com",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok    database: reachable, schema at" in done.stdout
    assert "ok    storage: writable" in done.stdout
    assert "WARN  storage: storage is a local directory" in done.stdout  # not S3
    assert done.stdout.rstrip().endswith("Nothing to fix.")


def test_what_must_be_fixed_is_named_and_the_exit_status_says_so(
    tmp_path: Path, pg_url: str
) -> None:
    blocked = tmp_path / "data" / "blobs"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the storage directory should be")
    done = doctor(
        tmp_path,
        BATCHYARD_DATABASE_URL=pg_url.replace("postgresql://", "postgresql+psycopg://") + "_gone",
        BATCHYARD_ALLOW_PRIVATE_SOURCES="true",
        BATCHYARD_QUEUE_HEARTBEAT_SECONDS="20",
    )
    assert done.returncode == 1, done.stdout + done.stderr
    fixes = [line for line in done.stdout.splitlines() if line.startswith("FIX")]
    assert [line.split(":")[0] for line in fixes] == [
        "FIX   secret key",
        "FIX   private sources",
        "FIX   queue timing",
        "FIX   database",
        "FIX   storage",
    ], done.stdout
    assert "BATCHYARD_SECRET_KEY" in fixes[0]
    assert "database: unreachable" in fixes[3]
    assert done.stdout.rstrip().endswith("5 thing(s) to fix.")


def test_a_setting_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    done = doctor(tmp_path, BATCHYARD_TARGET_SCHEMA="batchyard")
    assert done.returncode == 1
    assert "FIX   settings: BATCHYARD_TARGET_SCHEMA:" in done.stdout
    assert "Traceback" not in done.stderr
