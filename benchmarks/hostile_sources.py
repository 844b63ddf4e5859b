"""Hostile sources and webhook receivers against a real ``batchyard serve``: what each costs.

    uv run --group dev python -m benchmarks.hostile_sources
        [--server-python PATH] [--inner-mib 1536]

Starts a hostile HTTP server on 127.0.0.1 (tests/support/hostile_http.py) and, per attack, a
fresh batchyard server (with BATCHYARD_ALLOW_PRIVATE_SOURCES to reach the hostile server, except
for the SSRF checks), then prints the outcome, how long it took and the server's memory.
``--server-python`` runs the server from another checkout (e.g. one of an older commit).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.support.hostile_http import HostileServer, closed_port, stacked_gzip
from tests.support.receiver import Receiver
from tests.support.servers import ADMIN_TOKEN, free_port

from benchmarks.datagen import ORDERS_SCHEMA

TERMINAL = {"completed", "failed", "cancelled", "hash_mismatch", "validation_failed"}
CAP_SECONDS = 90.0
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@contextmanager
def serve(python: str, data_dir: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A batchyard server from ``python``; yields its URL and process id."""
    port = free_port()
    environment = {**os.environ, "BATCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, **env}
    command = [python, "-m", "batchyard", "serve", "--port", str(port), "--data-dir"]
    with open(data_dir.parent / f"server-{port}.log", "ab") as log:
        process = subprocess.Popen(
            [*command, str(data_dir), "--log-level", "warning"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        httpx.post(f"{url}/datasets", json=ORDERS_SCHEMA, headers=HEADERS).raise_for_status()
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def create(url: str, body: dict[str, Any], token: str = ADMIN_TOKEN) -> httpx.Response:
    body = {"dataset": "orders", **body}
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/batches", json=body, headers=headers, timeout=120)


def add_member(url: str, name: str) -> str:
    """A member's token (another user than the admin who runs the attacks)."""
    response = httpx.post(f"{url}/users", json={"name": name, "role": "member"}, headers=HEADERS)
    response.raise_for_status()
    return str(response.json()["token"]["token"])


def wait(url: str, batch_id: str, cap: float = CAP_SECONDS) -> dict[str, Any]:
    deadline = time.monotonic() + cap
    while True:
        response = httpx.get(f"{url}/batches/{batch_id}", headers=HEADERS, timeout=120)
        batch: dict[str, Any] = response.json()
        if batch["status"] in TERMINAL or time.monotonic() > deadline:
            return batch
        time.sleep(0.1)


class HealthWatch:
    """Polls /health in a thread; ``worst`` is the slowest answer seen."""

    def __init__(self, url: str) -> None:
        self.url, self.worst, self._stop = url, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            httpx.get(f"{self.url}/health", timeout=120)
            self.worst = max(self.worst, time.monotonic() - started)
            time.sleep(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)


def outcome(batch: dict[str, Any]) -> str:
    return f"{batch['status']}: {str(batch.get('error_message'))[:150]}"


def stacked(url: str, pid: int, hostile: HostileServer) -> None:
    stacked_gzip(hostile.inner_bytes)  # made before the clock starts
    before = rss_mib(pid)
    started = time.monotonic()
    with HealthWatch(url) as health:
        batch = wait(url, create(url, {"sources": [f"{hostile.url}/stacked"]}).json()["batch"])
    print(f"stacked gzip,gzip ({hostile.inner_bytes / 2**20:.0f} MiB inside):")
    print(f"  {outcome(batch)}")
    print(
        f"  {time.monotonic() - started:.1f} s; RSS {before:.0f} MiB before, peak "
        f"{rss_mib(pid, 'VmHWM'):.0f} MiB; slowest /health {health.worst * 1000:.0f} ms"
    )


def trickle(url: str, pid: int, hostile: HostileServer) -> None:
    trickling = [
        create(url, {"sources": [f"{hostile.url}/trickle/{n}"]}).json()["batch"] for n in (1, 2)
    ]
    time.sleep(1)
    started = time.monotonic()
    small = create(url, {"sources": [f"{hostile.url}/file/one.csv"]}).json()["batch"]
    done = wait(url, small)
    print("two sources trickling one byte per interval, then another 1-row batch:")
    print(f"  the 1-row batch: {done['status']} after {time.monotonic() - started:.1f} s")
    print(f"  a trickling batch: {outcome(wait(url, trickling[0], cap=5))}")


def webhooks(url: str, pid: int, hostile: HostileServer) -> None:
    ids = [
        create(
            url,
            {"sources": [f"{hostile.url}/file/x.csv"], "notify_url": f"{hostile.url}/slow-headers"},
        ).json()["batch"]
        for _ in range(8)
    ]
    for batch_id in ids:
        wait(url, batch_id)
    bob = add_member(url, "bob")
    with Receiver() as receiver:
        batch_id = create(
            url, {"sources": [f"{hostile.url}/file/x.csv"], "notify_url": receiver.url}, bob
        ).json()["batch"]
        ended = wait(url, batch_id)
        started = time.monotonic()
        while not receiver.succeeded() and time.monotonic() - started < CAP_SECONDS:
            time.sleep(0.1)
        delay = time.monotonic() - started
    print("8 webhook receivers trickling their headers, then another user's webhook:")
    got = "delivered" if receiver.succeeded() else "NOT delivered"
    print(f"  {got} {delay:.1f} s after its batch ended ({ended['status']})")


def unreachable(url: str, pid: int, hostile: HostileServer) -> None:
    print("sources that cannot be fetched:")
    for name, source in [
        ("refused", f"http://127.0.0.1:{closed_port()}/a.csv"),
        ("404", f"{hostile.url}/nothing-here"),
        ("DNS", "http://no-such-host.invalid/a.csv"),
        ("TLS", f"https://127.0.0.1:{hostile.port}/file/a.csv"),
    ]:
        batch = wait(url, create(url, {"sources": [source]}).json()["batch"])
        log = httpx.get(f"{url}/batches/{batch['batch']}/log", headers=HEADERS, timeout=60).text
        traceback = "traceback in log" if "Traceback" in log else "no traceback"
        print(f"  {name}: {outcome(batch)} ({traceback})")


def ssrf(url: str, pid: int, hostile: HostileServer) -> None:
    print("SSRF, private sources not allowed:")
    for host in ["2130706433", "127.1", "0177.0.0.1", "0x7f.1", "[::ffff:127.0.0.1]", "[::1]"]:
        response = create(url, {"sources": [f"http://{host}:{hostile.port}/file/a.csv"]})
        code = response.json().get("error", {}).get("code", response.json().get("status"))
        print(f"  source http://{host}:{hostile.port}/…: HTTP {response.status_code} {code}")
    response = create(url, {"sources": ["http://169.254.169.254/latest/meta-data/"]})
    print(f"  source http://169.254.169.254/…: HTTP {response.status_code}")
    response = create(
        url, {"sources": [f"{hostile.url}/file/a.csv"], "notify_url": "http://2130706433/"}
    )
    print(f"  notify_url http://2130706433/: HTTP {response.status_code}")
    created = create(url, {"sources": [f"http://localhost:{hostile.port}/file/a.csv"]})
    batch = wait(url, created.json()["batch"])
    print(f"  source http://localhost:{hostile.port}/…: {created.status_code}, {outcome(batch)}")


SCENARIOS = {
    "stacked": stacked,
    "trickle": trickle,
    "webhooks": webhooks,
    "unreachable": unreachable,
    "ssrf": ssrf,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", default=sys.executable)
    parser.add_argument("--inner-mib", type=int, default=1536)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=list(SCENARIOS))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="batchyard-hostile-") as tmp,
        HostileServer(interval=args.interval, inner_bytes=args.inner_mib * 2**20) as hostile,
    ):
        for name in args.only:  # each on a fresh server: one attack's leftovers never skew another
            env = {} if name == "ssrf" else {"BATCHYARD_ALLOW_PRIVATE_SOURCES": "true"}
            with serve(args.server_python, Path(tmp) / name, env) as (url, pid):
                SCENARIOS[name](url, pid, hostile)


if __name__ == "__main__":
    main()
