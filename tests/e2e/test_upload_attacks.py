"""Uploads that lie, stall or vanish, sent over raw sockets to a real ``batchyard serve``.

Issue 13 point 2: a body is bounded before it is read. A declared Content-Length over the limit
is a 413 at once with no batch left behind; an upload over the limit mid-way, one that sends
nothing for BATCHYARD_UPLOAD_IDLE_SECONDS, and one whose client disconnects each end their batch
``failed`` with a plain message.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from support.servers import ADMIN_TOKEN, BatchyardServer
from support.waiting import TERMINAL, wait_for_status_sync

MAX_UPLOAD = 64 * 1024
HEADER = b"id,email,amount,status,ts,user_id\n"


@pytest.fixture
def server(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    env = {
        "BATCHYARD_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "BATCHYARD_UPLOAD_IDLE_SECONDS": "1",
    }
    if backend == "postgresql":
        pg_url = str(request.getfixturevalue("pg_url"))
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    running = BatchyardServer(tmp_path / "data", env=env).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def member(server: BatchyardServer) -> str:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        assert c.post("/datasets", json=ORDERS_SCHEMA).status_code == 201
        created = c.post("/users", json={"name": "mallory", "role": "member"})
        assert created.status_code == 201, created.text
        return str(created.json()["token"]["token"])


def _head(token: str, *lines: str) -> bytes:
    fields = [
        "POST /batches?dataset=orders HTTP/1.1",
        "Host: batchyard.test",
        f"Authorization: Bearer {token}",
        "Content-Type: text/csv",
        *lines,
    ]
    return ("\r\n".join(fields) + "\r\n\r\n").encode()


def _status_line(sock: socket.socket) -> str:
    """The response's status line, or "" if the server closed without one."""
    data = b""
    while b"\r\n" not in data:
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return data.split(b"\r\n")[0].decode()


def _batches(http: httpx.Client) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = http.get("/batches").json()["batches"]
    return listed


def _newest_ended(http: httpx.Client, count_before: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while len(batches := _batches(http)) <= count_before:
        assert time.monotonic() < deadline, "no batch was created"
        time.sleep(0.05)
    return wait_for_status_sync(http, batches[0]["batch"], TERMINAL, timeout=30)


def test_lying_oversized_stalled_and_vanishing_uploads(
    server: BatchyardServer, member: str
) -> None:
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {member}"}, timeout=30
    )
    address = ("127.0.0.1", server.port)

    # 10 GiB announced, 68 bytes sent: refused before the body is read, no batch made.
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(_head(member, "Content-Length: 10737418240") + HEADER + b"1,a@x.io,1,new,,\n")
        started = time.monotonic()
        assert _status_line(sock).startswith("HTTP/1.1 413")
        assert time.monotonic() - started < 10
    assert _batches(http) == []

    # Chunked, so nothing is declared: over the limit mid-way is a 413 and a failed batch.
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(_head(member, "Transfer-Encoding: chunked"))
        block = HEADER + b"1,a@x.io,1.00,new,,\n" * 1000
        try:
            for _ in range(4):
                sock.sendall(f"{len(block):x}\r\n".encode() + block + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the last block
        assert _status_line(sock).startswith("HTTP/1.1 413")
    too_large = _newest_ended(http, 0)
    assert too_large["status"] == "failed"
    assert f"larger than this server accepts ({MAX_UPLOAD} bytes)" in too_large["error_message"]

    # Five bytes, then silence: cut off after the idle second.
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(_head(member, "Content-Length: 1000") + HEADER[:5])
        assert _status_line(sock).startswith("HTTP/1.1 408")
    stalled = _newest_ended(http, 1)
    assert stalled["status"] == "failed"
    assert (
        stalled["error_message"] == "The upload sent nothing for 1 s after 5 bytes and was cut off"
    )

    # Five bytes, then the client is gone.
    with socket.create_connection(address, timeout=20) as sock:
        sock.sendall(_head(member, "Content-Length: 60000") + HEADER[:5])
        time.sleep(0.3)
    gone = _newest_ended(http, 2)
    assert gone["status"] == "failed"
    assert gone["error_message"] == "The client disconnected after sending 5 bytes of the upload"

    assert http.get("/health").status_code == 200
    assert "unexpected error" not in server.log_path.read_text()
