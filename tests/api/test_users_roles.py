"""Users, tokens and custom roles through the admin API, as the people using them notice it."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.client import AsyncClient, LastAdmin, Statement
from batchyard.service.auth import hash_token
from batchyard.settings import Settings
from batchyard.store.tables import metadata
from support.accounts import BASE_URL, Accounts, open_accounts
from support.servers import ADMIN_TOKEN


@pytest.fixture
async def acc(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as accounts:
        for name in ("orders", "items"):
            body = {**ORDERS_SCHEMA, "name": name}
            assert (await accounts.call("admin", "POST", "/datasets", json=body)).status_code == 201
        yield accounts


async def test_custom_role_statements_apply_per_dataset(acc: Accounts) -> None:
    role = {
        "name": "orders_loader",
        "statements": [
            {"actions": ["create_batch", "get_*"], "datasets": ["orders"]},
            {"actions": ["list_datasets"]},
        ],
    }
    created = await acc.call("admin", "POST", "/roles", json=role)
    assert created.status_code == 201, created.text
    assert created.json()["statements"][0]["datasets"] == ["orders"]
    await acc.add_user("loader", "orders_loader")

    batch = await acc.upload("loader")
    assert (await acc.finished("loader", batch["batch"]))["status"] == "completed"
    refused = await acc.call(
        "loader", "POST", "/batches", params={"dataset": "items"}, content=b"id\n1\n"
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert refused.json()["error"]["details"]["missing_permission"] == "create_batch"
    assert "items" in refused.json()["error"]["message"]

    assert (await acc.call("loader", "GET", "/datasets/orders")).status_code == 200
    assert (await acc.call("loader", "GET", "/datasets/items")).status_code == 403
    listed = await acc.call("loader", "GET", "/datasets")
    assert [d["name"] for d in listed.json()["datasets"]] == ["items", "orders"]
    nope = await acc.call("loader", "GET", "/batches")
    assert nope.json()["error"]["details"]["missing_permission"] == "list_batches"


async def test_role_validation_and_conflicts(acc: Accounts) -> None:
    bad_action = {"name": "typo", "statements": [{"actions": ["creat_batch"]}]}
    response = await acc.call("admin", "POST", "/roles", json=bad_action)
    assert response.status_code == 422
    assert "creat_batch" in response.json()["error"]["message"]
    builtin = {"name": "admin", "statements": [{"actions": ["*"]}]}
    assert (await acc.call("admin", "POST", "/roles", json=builtin)).status_code == 409
    unknown = await acc.call("admin", "POST", "/users", json={"name": "x", "role": "ghost"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "role_not_found"
    roles = (await acc.call("admin", "GET", "/roles")).json()["roles"]
    assert [r["name"] for r in roles][:3] == ["admin", "member", "viewer"]


async def test_a_custom_role_changes_at_once_and_goes_once_nobody_holds_it(acc: Accounts) -> None:
    role = {"name": "auditor", "statements": [{"actions": ["list_datasets"]}]}
    assert (await acc.call("admin", "POST", "/roles", json=role)).status_code == 201
    await acc.add_user("audrey", "auditor")
    assert (await acc.call("audrey", "GET", "/datasets/orders")).status_code == 403

    widened = {"statements": [{"actions": ["list_datasets", "get_dataset"]}]}
    changed = await acc.call("admin", "PUT", "/roles/auditor", json=widened)
    assert changed.status_code == 200, changed.text
    assert changed.json()["statements"][0]["actions"] == ["list_datasets", "get_dataset"]
    assert (await acc.call("audrey", "GET", "/datasets/orders")).status_code == 200  # at once

    in_use = await acc.call("admin", "DELETE", "/roles/auditor")
    assert in_use.status_code == 409
    assert in_use.json()["error"]["code"] == "role_in_use"
    assert in_use.json()["error"]["details"] == {"role": "auditor", "users": 1}
    ghost = await acc.call("admin", "PATCH", "/users/audrey", json={"role": "ghost"})
    assert ghost.status_code == 404 and ghost.json()["error"]["code"] == "role_not_found"
    assert (await acc.call("admin", "PATCH", "/users/audrey", json={})).status_code == 422
    moved = await acc.call("admin", "PATCH", "/users/audrey", json={"role": "viewer"})
    assert moved.status_code == 200 and moved.json()["role"] == "viewer", moved.text
    assert (await acc.call("audrey", "GET", "/me")).json()["role"]["name"] == "viewer"
    assert (await acc.call("admin", "DELETE", "/roles/auditor")).status_code == 204
    names = [r["name"] for r in (await acc.call("admin", "GET", "/roles")).json()["roles"]]
    assert "auditor" not in names
    assert (await acc.call("admin", "DELETE", "/roles/auditor")).status_code == 404
    gone = await acc.call("admin", "PUT", "/roles/auditor", json=widened)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "role_not_found"


async def test_built_in_roles_cannot_be_changed_or_deleted(acc: Accounts) -> None:
    everything = {"statements": [{"actions": ["*"]}]}
    changed = await acc.call("admin", "PUT", "/roles/viewer", json=everything)
    assert changed.status_code == 409 and "built-in" in changed.json()["error"]["message"]
    assert (await acc.call("admin", "DELETE", "/roles/member")).status_code == 409
    empty = await acc.call("admin", "PUT", "/roles/viewer", json={"statements": []})
    assert empty.status_code == 422
    roles = {r["name"]: r for r in (await acc.call("admin", "GET", "/roles")).json()["roles"]}
    assert roles["viewer"]["statements"][0]["actions"] != ["*"]


async def test_disabled_user_and_revoked_or_expired_tokens_get_401(acc: Accounts) -> None:
    await acc.add_user("alice", "member")
    assert (await acc.call("alice", "GET", "/me")).status_code == 200
    disabled = await acc.call("admin", "PATCH", "/users/alice", json={"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    response = await acc.call("alice", "GET", "/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    await acc.call("admin", "PATCH", "/users/alice", json={"disabled": False})
    assert (await acc.call("alice", "GET", "/me")).status_code == 200

    issued = await acc.call("admin", "POST", "/users/alice/tokens", json={"expires_in": 3600})
    assert issued.status_code == 201
    acc.tokens["second"] = issued.json()["token"]
    assert (await acc.call("second", "GET", "/me")).json()["name"] == "alice"
    listed = (await acc.call("admin", "GET", "/users/alice/tokens")).json()["tokens"]
    assert {t["token_id"] for t in listed} >= {issued.json()["token_id"]}
    assert all("token" not in t for t in listed)
    revoke = f"/users/alice/tokens/{issued.json()['token_id']}"
    assert (await acc.call("admin", "DELETE", revoke)).status_code == 204
    assert (await acc.call("second", "GET", "/me")).status_code == 401
    assert (await acc.call("admin", "DELETE", revoke)).status_code == 404

    await acc.add_expired_token("alice", "old")
    assert (await acc.call("old", "GET", "/me")).status_code == 401


async def test_tokens_are_random_and_never_stored_in_plaintext(acc: Accounts) -> None:
    tokens = [await acc.add_user(f"user_{i}", "viewer") for i in range(3)]
    assert len(set(tokens)) == 3
    assert all(len(t) >= 3 + 43 for t in tokens)  # "by_" + 32 random bytes in base64url
    dump: list[str] = []
    async with acc.services.store.begin() as conn:
        for table in metadata.sorted_tables:
            if await conn.run_sync(lambda c, t=table: sa.inspect(c).has_table(t.name)):
                for row in await conn.execute(sa.select(table)):
                    dump.extend(str(value) for value in row)
    everything = "\n".join(dump)
    for token in [*tokens, str(acc.tokens["admin"])]:
        assert token not in everything
        assert token[3:] not in everything


async def test_members_see_only_their_own_batches(acc: Accounts) -> None:
    await acc.add_user("alice", "member")
    await acc.add_user("bob", "member")
    mine = await acc.upload("alice")
    theirs = await acc.upload("bob")
    listed = (await acc.call("alice", "GET", "/batches")).json()["batches"]
    assert [b["batch"] for b in listed] == [mine["batch"]]
    everyone = (await acc.call("admin", "GET", "/batches")).json()["batches"]
    assert {b["batch"] for b in everyone} >= {mine["batch"], theirs["batch"]}


async def test_webhook_secret_is_stable_until_rotated(acc: Accounts) -> None:
    await acc.add_user("alice", "member")
    await acc.add_user("bob", "member")
    first = (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]
    assert first == (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]
    assert first != (await acc.call("bob", "GET", "/me/webhook-secret")).json()["secret"]
    rotated = (await acc.call("alice", "POST", "/me/webhook-secret")).json()["secret"]
    assert rotated != first and rotated.startswith("whsec_")
    assert rotated == (await acc.call("alice", "GET", "/me/webhook-secret")).json()["secret"]


async def test_token_check_is_constant_time(acc: Accounts, monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[object, object]] = []
    original = hmac.compare_digest

    def spy(a: str | bytes, b: str | bytes) -> bool:
        compared.append((a, b))
        return original(a, b)  # type: ignore[arg-type]

    await acc.add_user("dora", "viewer")  # a token not yet resolved (none is remembered)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await acc.call("dora", "GET", "/me")).status_code == 200
    assert compared, "the token's hash was not compared with hmac.compare_digest"


async def test_listing_follows_the_roles_dataset_scope(acc: Accounts) -> None:
    role = {
        "name": "orders_watcher",
        "statements": [
            {"actions": ["create_batch", "get_batch"]},
            {"actions": ["list_batches"], "datasets": ["order*"]},
        ],
    }
    assert (await acc.call("admin", "POST", "/roles", json=role)).status_code == 201
    await acc.add_user("watcher", "orders_watcher")
    orders = await acc.upload("watcher")
    await acc.upload("watcher", dataset="items")
    listed = (await acc.call("watcher", "GET", "/batches")).json()["batches"]
    assert [b["batch"] for b in listed] == [orders["batch"]]


async def test_a_role_can_be_limited_to_some_operations(acc: Accounts) -> None:
    role = {
        "name": "loader",
        "statements": [{"actions": ["create_batch", "get_batch"], "operations": ["insert"]}],
    }
    created = await acc.call("admin", "POST", "/roles", json=role)
    assert created.status_code == 201, created.text
    assert created.json()["statements"][0]["operations"] == ["insert"]
    await acc.add_user("lou", "loader")
    assert (await acc.upload("lou"))["operation"] == "insert"
    upsert = await acc.call(
        "lou", "POST", "/batches", params={"dataset": "orders", "operation": "upsert"}, content=b""
    )
    assert upsert.status_code == 403
    assert upsert.json()["error"]["code"] == "operation_not_allowed"

    widened = {"statements": [{"actions": ["create_batch"], "operations": ["insert", "upsert"]}]}
    assert (await acc.call("admin", "PUT", "/roles/loader", json=widened)).status_code == 200
    assert (await acc.upload("lou", operation="upsert"))["operation"] == "upsert"
    me = (await acc.call("lou", "GET", "/me")).json()
    assert me["role"]["statements"][0]["operations"] == ["insert", "upsert"]

    pointless = {"name": "odd", "statements": [{"actions": ["get_*"], "operations": ["insert"]}]}
    response = await acc.call("admin", "POST", "/roles", json=pointless)
    assert response.status_code == 422
    assert "create_batch" in response.json()["error"]["message"]
    empty = {"name": "odd", "statements": [{"actions": ["*"], "operations": []}]}
    assert (await acc.call("admin", "POST", "/roles", json=empty)).status_code == 422


async def test_the_last_admin_cannot_be_demoted_or_disabled(acc: Accounts) -> None:
    for change in ({"role": "member"}, {"disabled": True}):
        refused = await acc.call("admin", "PATCH", "/users/admin", json=change)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "last_admin"
        assert refused.json()["error"]["details"] == {"admins": ["admin"]}
    me = (await acc.call("admin", "GET", "/me")).json()
    assert me["role"]["name"] == "admin"

    boss = {"name": "boss", "statements": [{"actions": ["*"]}]}
    assert (await acc.call("admin", "POST", "/roles", json=boss)).status_code == 201
    await acc.add_user("carol", "boss")
    demoted = await acc.call("admin", "PATCH", "/users/admin", json={"role": "member"})
    assert demoted.status_code == 200, demoted.text  # carol still manages users
    narrowed = {"statements": [{"actions": ["get_*"]}]}
    refused = await acc.call("carol", "PUT", "/roles/boss", json=narrowed)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin"
    refused = await acc.call("carol", "PATCH", "/users/carol", json={"disabled": True})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_admin"
    assert (await acc.call("carol", "GET", "/users")).status_code == 200


async def test_a_revoked_admin_token_stays_revoked_across_restarts(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_accounts(settings) as first:
        await first.add_user("carol", "admin")  # who keeps the keys
        tokens = (await first.call("admin", "GET", "/users/admin/tokens")).json()["tokens"]
        token_id = tokens[0]["token_id"]
        revoked = await first.call("carol", "DELETE", f"/users/admin/tokens/{token_id}")
        assert revoked.status_code == 204
        secret = first.services.secret
    with caplog.at_level(logging.WARNING):
        async with open_accounts(settings) as again:  # BATCHYARD_ADMIN_TOKEN still set
            assert (await again.call("admin", "GET", "/me")).status_code == 401
    warning = "\n".join(r.getMessage() for r in caplog.records if r.name == "batchyard.auth")
    assert "BATCHYARD_ADMIN_TOKEN" in warning and token_id in warning
    assert hash_token(secret, str(ADMIN_TOKEN)) not in caplog.text


async def test_the_async_sdk_administers_accounts(acc: Accounts) -> None:
    transport = httpx.ASGITransport(app=acc.app)
    async with AsyncClient(str(ADMIN_TOKEN), BASE_URL, transport=transport) as client:
        loader = Statement(actions=["create_batch"], datasets=["orders"], operations=["insert"])
        role = await client.roles.create("loader", [loader])
        assert role.statements == [loader] and not role.builtin
        created = await client.users.create("lou", "loader", expires_in=3600)
        assert created.user.role == "loader" and created.token.expires_ts is not None
        assert "lou" in [u.name for u in await client.users.list()]
        tokens = await client.users.list_tokens()
        assert created.token.token_id in [t.token_id for t in tokens]
        await client.users.revoke_token(created.token.token_id)
        with pytest.raises(LastAdmin):
            await client.users.update("admin", disabled=True)
        assert (await client.users.update("lou", role="viewer")).role == "viewer"
        await client.roles.delete("loader")
        assert "loader" not in [r.name for r in await client.roles.list()]
