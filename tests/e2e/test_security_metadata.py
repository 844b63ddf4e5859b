"""No dataset reaches batchyard's own tables, whatever its name (issue 12, point 1).

Against a real server on each backend (PostgreSQL in the production layout: queue runner, one
database for metadata, queue and datasets), a member whose role allows only create_dataset,
create_batch, get_* and list_* declares a dataset named after every table batchyard keeps,
shaped exactly like it, and imports into it with insert and upsert (on ``roles``: the row that
would make its own role an admin). Afterwards every one of those tables holds what it held
(only the rows of the member's own batches were added), and the member's rights are unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from support.owned_tables import OwnedTable, PostgresTables, Row, SqliteTables
from support.servers import ADMIN_TOKEN, BatchyardServer
from support.waiting import wait_for_status_sync
from support.workers import QUEUE_ENV

ORDERS_CSV = b"id,email,amount,status,ts,user_id\n1,a@x.io,1.00,new,,\n"
MARK = "forged-by-mallory"
MARK_INT = 7777777
#: The statements that would make the member's role an admin's.
ESCALATION = '[{"actions": ["*"], "datasets": null}]'
LOADER = {
    "name": "loader",
    "statements": [{"actions": ["create_dataset", "create_batch", "get_*", "list_*"]}],
}
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Tables whose rows move on their own (queue bookkeeping, SQLite's counters): only checked for
#: forged values, not compared row by row.
CHURNING = re.compile(r"^(procrastinate_|sqlite_sequence$)")
#: Tables that must not change at all while a member imports.
FROZEN = {"users", "roles", "tokens", "alembic_version"}


@dataclass
class Deployment:
    backend: str
    server: BatchyardServer
    admin: httpx.Client
    member: httpx.Client
    tables: PostgresTables | SqliteTables


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A server with an admin's completed import, and a member with the limited role."""
    data = tmp_path_factory.mktemp(request.param) / "data"
    env = {"BATCHYARD_CHUNK_BYTES": str(256 * 1024)}
    tables: PostgresTables | SqliteTables
    if request.param == "postgresql":
        pg_url = str(request.getfixturevalue("module_pg_url"))
        env |= {**QUEUE_ENV, "BATCHYARD_SERVE_WORKER": "true"}
        env["BATCHYARD_DATABASE_URL"] = pg_url.replace("postgresql://", "postgresql+psycopg://")
        tables = PostgresTables(pg_url)
    else:
        tables = SqliteTables(data / "batchyard.db", data / "target.db")
    server = BatchyardServer(data, env=env).start()
    admin = _client(server, ADMIN_TOKEN)
    try:
        _expect(admin.post("/roles", json=LOADER), 201)
        created = _expect(admin.post("/users", json={"name": "mallory", "role": "loader"}), 201)
        _expect(admin.post("/datasets", json=ORDERS_SCHEMA), 201)
        _import(admin, "orders", "insert", ORDERS_CSV)
        with _client(server, created.json()["token"]["token"]) as member:
            yield Deployment(request.param, server, admin, member, tables)
    finally:
        admin.close()
        server.stop()


def test_datasets_named_after_batchyard_tables_touch_only_their_own(
    deployment: Deployment,
) -> None:
    member = deployment.member
    owned = [t for t in deployment.tables.tables() if t.name != "orders"]
    assert {"users", "roles", "tokens", "batches", "batch_log"} <= {t.name for t in owned}
    if deployment.backend == "postgresql":
        assert "procrastinate_jobs" in {t.name for t in owned}
    before = {t: deployment.tables.rows(t) for t in owned}
    me_before = _expect(member.get("/me"), 200).json()

    for table in _by_name(owned):
        _attack(deployment, table, before[table])

    assert member.get("/users").status_code == 403
    assert _expect(member.get("/me"), 200).json() == me_before
    for table in owned:
        _assert_untouched(table, before[table], deployment.tables.rows(table))


def test_names_of_database_catalogs_are_ordinary_datasets(deployment: Deployment) -> None:
    columns = [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "note", "type": "string"},
    ]
    for name in ("pg_class", "pg_namespace", "information_schema", "_batchyard_stage_1"):
        body = {"name": name, "primary_key": ["id"], "columns": columns}
        _expect(deployment.member.post("/datasets", json=body), 201)
        _import(deployment.member, name, "insert", b"id,note\n1,one\n2,two\n")
        _import(deployment.member, name, "upsert", b"id,note\n2,deux\n3,trois\n")
        dataset = _expect(deployment.member.get(f"/datasets/{name}"), 200).json()
        assert dataset["row_count"] == 3


def test_sqlite_reserved_names_are_a_clear_client_error(deployment: Deployment) -> None:
    body = {"name": "sqlite_master", "columns": [{"name": "id", "type": "integer"}]}
    response = deployment.member.post("/datasets", json=body)
    if deployment.backend == "postgresql":
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 422, response.text
    assert "sqlite_" in response.json()["error"]["message"]


def _attack(deployment: Deployment, table: OwnedTable, rows: list[Row]) -> None:
    """Declare a dataset shaped like ``table`` and insert, then upsert, forged rows into it."""
    if not IDENTIFIER.match(table.name) or table.name.startswith("_batchyard"):
        return  # no dataset can bear this name: out of reach by construction
    member = deployment.member
    body = {
        "name": table.name,
        "primary_key": list(table.primary_key),
        "columns": [
            {"name": name, "type": kind, "nullable": nullable}
            for name, kind, nullable in table.columns
        ],
    }
    response = member.post("/datasets", json=body)
    if deployment.backend == "sqlite" and table.name.startswith("sqlite_"):
        assert response.status_code == 422, response.text  # SQLite reserves these names
        return
    assert response.status_code == 201, (table.name, response.text)
    _import(member, table.name, "insert", _csv(table, _forged(table, rows, upsert=False)))
    expected = 1
    if table.primary_key:
        _import(member, table.name, "upsert", _csv(table, _forged(table, rows, upsert=True)))
        expected = 2
    dataset = _expect(member.get(f"/datasets/{table.name}"), 200).json()
    assert dataset["row_count"] == expected, table.name


def _forged(table: OwnedTable, rows: list[Row], *, upsert: bool) -> dict[str, str]:
    """A row of made-up values; the upsert's reuses the key of a row the table holds."""
    values = {name: _made_up(name, kind, upsert) for name, kind, _ in table.columns}
    if upsert and rows:
        names = [name for name, _, _ in table.columns]
        values |= {key: rows[0][names.index(key)] for key in table.primary_key}
    return values


def _made_up(name: str, kind: str, second: bool) -> str:
    if name == "statements":
        return ESCALATION
    return {
        "integer": str(MARK_INT + second),
        "float": f"{MARK_INT + second}.5",
        "boolean": "true",
        "timestamp": "2026-01-01T00:00:00Z",
        "json": f'{{"mark": "{MARK}"}}',
    }.get(kind, f"{MARK}-{int(second)}")


def _csv(table: OwnedTable, values: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _, _ in table.columns])
    writer.writerow([values[name] for name, _, _ in table.columns])
    return out.getvalue().encode()


def _assert_untouched(table: OwnedTable, before: list[Row], after: list[Row]) -> None:
    forged = [row for row in after if any(MARK in cell or str(MARK_INT) in cell for cell in row)]
    assert forged == [], f"{table.where}.{table.name} holds forged rows"
    if CHURNING.match(table.name):
        return
    if table.name in FROZEN:
        assert after == before, f"{table.where}.{table.name} changed"
    missing = sorted(set(before) - set(after))
    assert missing == [], f"{table.where}.{table.name} lost or changed rows"


def _by_name(tables: list[OwnedTable]) -> list[OwnedTable]:
    """One table per name (SQLite's sqlite_sequence is in both files)."""
    return list({t.name: t for t in tables}.values())


def _import(client: httpx.Client, dataset: str, operation: str, body: bytes) -> dict[str, Any]:
    response = client.post(
        "/batches",
        params={"dataset": dataset, "operation": operation, "format": "csv"},
        content=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    batch_id = _expect(response, 202).json()["batch"]
    batch = wait_for_status_sync(client, batch_id, timeout=120)
    assert (batch["status"], batch["failed_operations"]) == ("completed", 0), (dataset, batch)
    return batch


def _client(server: BatchyardServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    assert response.status_code == status, response.text
    return response
