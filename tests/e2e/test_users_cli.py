"""``batchyard users|tokens|roles`` against a running server: through its API, or its database."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from batchyard.cli import render
from batchyard.cli.main import app
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.waiting import wait_until_sync


@pytest.fixture
def env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    values = {"BATCHYARD_DATA_DIR": str(tmp_path / "data"), "BATCHYARD_DATABASE_URL": ""}
    if backend == "postgresql":
        pg_url = str(request.getfixturevalue("pg_url"))
        values["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
    return values


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[BatchyardServer]:
    extra = dict(env)
    running = BatchyardServer(tmp_path / "data", env=extra).start()
    try:
        yield running
    finally:
        running.stop()


def cli(env: dict[str, str], *args: str, ok: bool = True) -> Result:
    """Run ``batchyard ARGS`` in this process (no interpreter start-up) with ``env``.

    ``env["mode"]`` says where account commands act: "http" (BATCHYARD_URL and an admin's
    BATCHYARD_TOKEN) or "direct" (``--data-dir`` of the server).
    """
    env = dict(env)
    extra = ["--data-dir", env["BATCHYARD_DATA_DIR"]] if env.pop("mode", "") == "direct" else []
    render.console.cache_clear()  # its consoles hold the previous run's (closed) streams
    result = CliRunner().invoke(app, [*args, *extra], env=env)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def http(env: dict[str, str], server: BatchyardServer) -> dict[str, str]:
    """The environment of an admin pointing the CLI at the server."""
    return {**env, "BATCHYARD_URL": server.url, "BATCHYARD_TOKEN": ADMIN_TOKEN, "mode": "http"}


@pytest.fixture(params=["http", "direct"])
def where(request: pytest.FixtureRequest, http: dict[str, str]) -> dict[str, str]:
    if request.param == "http":
        return http
    direct = {k: v for k, v in http.items() if k not in ("BATCHYARD_URL", "BATCHYARD_TOKEN")}
    return {**direct, "mode": "direct"}


def me(server: BatchyardServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)


#: How long a change made directly on the database may take to reach the running server: the
#: server remembers a token's principal for at most 1 s (docs/auth.md); the rest is slack.
SETTLES_WITHIN = 6.0


def me_once(server: BatchyardServer, token: str, accept: Callable[[httpx.Response], bool]):
    """/me as soon as the answer is one ``accept`` takes (at once through the API; within the
    server's token-cache bound when the CLI worked on the database directly)."""

    def probe() -> httpx.Response | None:
        response = me(server, token)
        return response if accept(response) else None

    return wait_until_sync(probe, SETTLES_WITHIN, f"/me for {token[:6]}…")


def test_users_tokens_and_roles_from_the_cli(where, server):
    env = where
    created = cli(env, "users", "create", "alice", "--role", "member")
    token = created.stdout.strip()
    assert re.fullmatch(r"by_[A-Za-z0-9_-]{43}", token), created.stdout
    assert "shown only now" in created.stderr
    assert me(server, token).json()["name"] == "alice"

    listed = cli(env, "users", "list").stdout
    assert re.search(r"^alice\s+member\s+active", listed, re.MULTILINE), listed
    assert token not in listed

    second = cli(env, "tokens", "create", "alice", "--expires", "1h")
    token_id = re.search(r"token id: (\S+)", second.stderr).group(1)
    assert me(server, second.stdout.strip()).status_code == 200
    cli(env, "tokens", "revoke", token_id)
    assert me_once(server, second.stdout.strip(), lambda r: r.status_code == 401)
    assert me(server, token).status_code == 200

    cli(env, "roles", "create", "reader", "--allow", "get_*", "--dataset", "orders")
    assert "allow get_* on orders" in cli(env, "roles", "list").stdout
    reader = cli(env, "users", "create", "rita", "--role", "reader").stdout.strip()
    assert me(server, reader).json()["role"]["name"] == "reader"
    cli(env, "roles", "update", "reader", "--allow", "get_*", "--allow", "list_*")
    assert "allow get_*, list_* on all datasets" in cli(env, "roles", "list").stdout
    widened = ["get_*", "list_*"]
    assert me_once(
        server, reader, lambda r: r.json()["role"]["statements"][0]["actions"] == widened
    )
    held = cli(env, "roles", "delete", "reader", ok=False)
    assert held.exit_code == 1 and "1 user(s) hold role 'reader'" in held.stderr
    cli(env, "users", "set-role", "rita", "--role", "viewer")
    assert me_once(server, reader, lambda r: r.json()["role"]["name"] == "viewer")
    assert "deleted role 'reader'" in cli(env, "roles", "delete", "reader").stdout
    cli(env, "roles", "create", "spare", "--allow", "get_batch")
    assert "deleted role 'spare'" in cli(env, "roles", "delete", "spare").stdout
    assert "spare" not in cli(env, "roles", "list").stdout

    for args in (("users", "set-role", "admin", "--role", "member"), ("users", "disable", "admin")):
        refused = cli(env, *args, ok=False)
        assert refused.exit_code == 1 and "no enabled admin" in refused.stderr, refused.output
    assert me(server, ADMIN_TOKEN).json()["role"]["name"] == "admin"

    cli(env, "users", "disable", "alice")
    assert me_once(server, token, lambda r: r.status_code == 401)


def test_cli_errors_are_clear(http, server, tmp_path, monkeypatch):
    # Pointed at a server, the commands reach it, and leave no ./batchyard-data behind.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {k: v for k, v in http.items() if k != "BATCHYARD_DATA_DIR"}
    missing = cli(env, "users", "create", "bob", "--role", "ghost", ok=False)
    assert missing.exit_code == 1
    assert "Role 'ghost' not found" in missing.stderr
    bad = cli(env, "tokens", "create", "bob", "--expires", "soon", ok=False)
    assert bad.exit_code == 2 and "duration" in bad.stderr
    typo = cli(env, "roles", "create", "x", "--allow", "creat_batch", ok=False)
    assert typo.exit_code == 2 and "creat_batch" in typo.stderr

    assert list(elsewhere.iterdir()) == []

    eve = cli(env, "users", "create", "eve").stdout.strip()
    assert me(server, eve).json()["name"] == "eve"
    assert list(elsewhere.iterdir()) == []
    listed = cli(env, "tokens", "list").stdout
    assert "eve" in listed and "admin" in listed
    wrong = cli({**env, "BATCHYARD_TOKEN": eve}, "users", "list", ok=False)
    assert wrong.exit_code == 1 and "manage_users" in wrong.stderr


def _plain(text: str) -> str:
    """A usage error's words, without the box rich draws around them."""
    return " ".join(text.replace("│", " ").split())


def test_direct_access_needs_the_servers_data_dir(env, tmp_path):
    missing = tmp_path / "not-there"
    refused = cli(env, "users", "list", "--data-dir", str(missing), ok=False)
    assert refused.exit_code == 2 and "no data directory" in _plain(refused.stderr)
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    sqlite_env = {**env, "BATCHYARD_DATABASE_URL": ""}
    refused = cli(sqlite_env, "users", "create", "x", "--data-dir", str(empty), ok=False)
    assert refused.exit_code == 2 and "holds no batchyard database" in _plain(refused.stderr)
    assert list(empty.iterdir()) == []
