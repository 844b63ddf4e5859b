"""Secrets stay out of logs and off other users' disks; access ends when it is taken away.

One real server (``batchyard serve``, started under umask 022 at log level info) plays every
scene: the secrets a source URL carries, the data files' modes, and open event streams whose
token is revoked or whose user is disabled.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from support.servers import ADMIN_TOKEN, BatchyardServer, FileServer
from support.waiting import wait_for_status_sync

CSV = b"id,email,amount,status,ts,user_id\n1,a@x.io,1.00,new,,\n"
PASSWORD = "hunter2"
SIGNATURE = "X-Amz-Signature=0123456789abcdef"
#: How soon an open event stream must notice that its access ended (documented in docs/auth.md
#: as "within a second or two"; generous here for a loaded machine).
STREAM_END_BOUND = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchyardServer]:
    root = tmp_path_factory.mktemp("secrets")
    previous = os.umask(0o022)  # the usual default: files world-readable unless we see to it
    try:
        running = BatchyardServer(root / "data", log_level="info").start()
    finally:
        os.umask(previous)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def admin(server: BatchyardServer) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        assert client.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        yield client


def _user(admin: httpx.Client, name: str) -> tuple[str, str]:
    """A new member: (token, token id)."""
    created = admin.post("/users", json={"name": name, "role": "member"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    return token["token"], token["token_id"]


def test_source_urls_keep_their_secrets(
    server: BatchyardServer, admin: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    with FileServer(tmp_path) as files:
        url = files.url.replace("http://", f"http://loader:{PASSWORD}@") + f"/a.csv?{SIGNATURE}"
        created = admin.post("/batches", json={"dataset": "orders", "sources": [url]})
        assert created.status_code == 202, created.text
        batch = wait_for_status_sync(admin, created.json()["batch"])
    assert batch["status"] == "completed", batch
    log = admin.get(f"/batches/{batch['batch']}/log").text
    assert "Fetching url" in log
    server_log = server.log_path.read_text()
    for secret in (PASSWORD, SIGNATURE, "loader@"):
        assert secret not in log, log
        assert secret not in server_log, server_log


def test_data_files_are_owner_only(server: BatchyardServer, admin: httpx.Client) -> None:
    uploaded = admin.post(
        "/batches",
        params={"dataset": "orders"},
        content=CSV,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 202, uploaded.text
    assert wait_for_status_sync(admin, uploaded.json()["batch"])["status"] == "completed"
    found = [server.data_dir / name for name in ("batchyard.db", "target.db", "blobs")]
    found += list(server.data_dir.rglob("*"))
    assert any(p.is_file() and "blobs" in p.parts for p in found)  # the upload, its results
    shared = [f"{p}: {stat.filemode(p.stat().st_mode)}" for p in found if p.stat().st_mode & 0o077]
    assert not shared, "\n".join(shared)


class _Silent:
    """A TCP server that accepts and never answers: a URL source that keeps a batch copying."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow.csv"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for held in self.held:
            held.close()
        self.sock.close()


def _follow(server: BatchyardServer, token: str, batch_id: str, end_access: Any) -> list[str]:
    """Open the batch's event stream, end access once it has started, return the lines after."""
    headers = {"Authorization": f"Bearer {token}"}
    after: list[str] = []
    with httpx.stream(
        "GET", f"{server.url}/batches/{batch_id}/events", headers=headers, timeout=30
    ) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: batch"
        end_access()
        started = time.monotonic()
        after.extend(lines)  # until the server ends the stream
        elapsed = time.monotonic() - started
    assert elapsed < STREAM_END_BOUND, f"the stream went on {elapsed:.1f}s"
    return after


def test_event_streams_end_when_access_ends(server: BatchyardServer, admin: httpx.Client) -> None:
    silent = _Silent()
    try:
        first, first_id = _user(admin, "streamer")
        body = {"dataset": "orders", "sources": [silent.url]}
        headers = {"Authorization": f"Bearer {first}"}
        created = httpx.post(f"{server.url}/batches", json=body, headers=headers, timeout=30)
        assert created.status_code == 202, created.text
        batch_id = created.json()["batch"]

        revoke = f"/users/streamer/tokens/{first_id}"
        after = _follow(server, first, batch_id, lambda: admin.delete(revoke))
        assert "event: error" in after and any("unauthenticated" in line for line in after)

        second = admin.post("/users/streamer/tokens", json={}).json()["token"]
        disable = {"disabled": True}
        after = _follow(
            server, second, batch_id, lambda: admin.patch("/users/streamer", json=disable)
        )
        assert "event: error" in after and any("unauthenticated" in line for line in after)
    finally:
        silent.close()
