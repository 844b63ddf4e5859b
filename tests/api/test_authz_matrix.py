"""Authorization matrix generated from the app's route table.

Every API route, times {no token, bad token, revoked token, expired token, admin, member,
viewer}, times (for batch routes) {own batch, another user's batch} is called and its status
compared with what the rules below say. A route without a rule fails
``test_route_table_matches_rules``, so a new endpoint cannot ship without deciding who may call it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from benchmarks.datagen import ORDERS_SCHEMA

from batchyard.domain.permissions import BUILTIN_ROLES, Action
from batchyard.service.batches import NewBatch, create_upload_batch
from batchyard.settings import Settings
from batchyard.store.users import Principal
from support.accounts import TINY_CSV, Accounts, open_accounts

A = Action


@dataclass(frozen=True)
class Rule:
    """Who may call a route: ``action`` (None: any valid token), and what success answers.

    ``batch``: the route acts on one batch, so another user's batch must look missing.
    """

    action: Action | None
    ok: int
    batch: bool = False
    public: bool = False


RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule(None, 200, public=True),
    ("GET", "/ready"): Rule(None, 200, public=True),
    ("GET", "/metrics"): Rule(None, 200, public=True),
    ("POST", "/datasets"): Rule(A.CREATE_DATASET, 201),
    ("GET", "/datasets"): Rule(A.LIST_DATASETS, 200),
    ("GET", "/operations"): Rule(A.LIST_DATASETS, 200),
    ("GET", "/datasets/{name}"): Rule(A.GET_DATASET, 200),
    ("DELETE", "/datasets/{name}"): Rule(A.DELETE_DATASET, 200),
    ("POST", "/batches"): Rule(A.CREATE_BATCH, 202),
    ("GET", "/batches"): Rule(A.LIST_BATCHES, 200),
    ("GET", "/batches/{batch_id}"): Rule(A.GET_BATCH, 200, batch=True),
    ("GET", "/batches/{batch_id}/history"): Rule(A.GET_BATCH_STATUS, 200, batch=True),
    ("GET", "/batches/{batch_id}/log"): Rule(A.GET_BATCH_LOG, 200, batch=True),
    ("GET", "/batches/{batch_id}/events"): Rule(A.GET_BATCH, 200, batch=True),
    ("GET", "/batches/{batch_id}/results"): Rule(A.GET_BATCH, 200, batch=True),
    ("GET", "/batches/{batch_id}/failed-records"): Rule(A.GET_BATCH, 200, batch=True),
    # The standing batches are completed: an authorised cancel reaches the transition check.
    ("POST", "/batches/{batch_id}/cancel"): Rule(A.CANCEL_BATCH, 409, batch=True),
    ("DELETE", "/batches/{batch_id}"): Rule(A.DELETE_BATCH, 202, batch=True),
    # The standing batches have a failed record (TINY_CSV's second): there is one to retry.
    ("POST", "/batches/{batch_id}/retry"): Rule(A.CREATE_BATCH, 202, batch=True),
    ("GET", "/users"): Rule(A.MANAGE_USERS, 200),
    ("POST", "/users"): Rule(A.MANAGE_USERS, 201),
    ("PATCH", "/users/{name}"): Rule(A.MANAGE_USERS, 200),
    ("GET", "/users/{name}/tokens"): Rule(A.MANAGE_USERS, 200),
    ("POST", "/users/{name}/tokens"): Rule(A.MANAGE_USERS, 201),
    ("DELETE", "/users/{name}/tokens/{token_id}"): Rule(A.MANAGE_USERS, 204),
    ("GET", "/tokens"): Rule(A.MANAGE_USERS, 200),
    ("DELETE", "/tokens/{token_id}"): Rule(A.MANAGE_USERS, 204),
    ("GET", "/roles"): Rule(A.MANAGE_USERS, 200),
    ("POST", "/roles"): Rule(A.MANAGE_USERS, 201),
    ("PUT", "/roles/{name}"): Rule(A.MANAGE_USERS, 200),
    ("DELETE", "/roles/{name}"): Rule(A.MANAGE_USERS, 204),
    ("GET", "/me"): Rule(None, 200),
    ("GET", "/me/webhook-secret"): Rule(None, 200),
    ("POST", "/me/webhook-secret"): Rule(None, 200),
}

BROKEN = ("none", "bad", "revoked", "expired")
ROLES = ("admin", "member", "viewer")
#: The user whose batches play "another user's batch" for everyone else.
OTHER = "mallory"


def api_routes(accounts: Accounts) -> list[tuple[str, str]]:
    """(method, path) of every operation the app's routes publish in its OpenAPI schema."""
    paths: dict[str, dict[str, Any]] = accounts.app.openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


def expected(rule: Rule, who: str, own: bool) -> int:
    if rule.public:
        return rule.ok
    if who in BROKEN:
        return 401
    role = BUILTIN_ROLES[who]
    if rule.action is not None and not role.allows(rule.action):
        return 403
    if rule.batch and not own and not role.sees_all_batches:
        return 404
    return rule.ok


@pytest.fixture
async def accounts(settings: Settings) -> AsyncIterator[Accounts]:
    async with open_accounts(settings) as acc:
        created = await acc.call("admin", "POST", "/datasets", json=ORDERS_SCHEMA)
        assert created.status_code == 201, created.text
        for name, role in (("member", "member"), ("viewer", "viewer"), (OTHER, "member")):
            await acc.add_user(name, role)
        acc.tokens["bad"] = "by_" + "A" * 43
        await acc.add_revoked_token("member", "revoked")
        await acc.add_expired_token("member", "expired")
        yield acc


class Matrix:
    """Builds each call's URL and body; creates what a successful call would consume."""

    def __init__(self, acc: Accounts) -> None:
        self.acc = acc
        self.standing: dict[str, str] = {}
        self.counter = itertools.count()

    async def completed_batch(self, owner: str) -> str:
        """A completed batch owned by ``owner`` (viewers cannot create one, so it is made for
        them through the service, as if their role had allowed it)."""
        if owner == "viewer":
            svc = self.acc.services
            principal = Principal(
                await self.acc.user_id("viewer"), "viewer", "viewer", BUILTIN_ROLES["member"]
            )

            async def body() -> AsyncIterator[bytes]:
                yield TINY_CSV

            created = await create_upload_batch(svc, principal, NewBatch(dataset="orders"), body())
            batch_id = created.batch.id
        else:
            batch_id = str((await self.acc.upload(owner))["batch"])
        done = await self.acc.finished("admin", batch_id)
        assert done["status"] == "completed", done
        return batch_id

    async def prepare(self) -> None:
        for owner in (*ROLES, OTHER):
            self.standing[owner] = await self.completed_batch(owner)

    async def request(
        self, method: str, path: str, who: str, own: bool, succeeds: bool
    ) -> tuple[str, dict[str, Any]]:
        n = next(self.counter)
        owner = who if own and who in ROLES else OTHER
        batch_id = self.standing[owner]
        if method == "DELETE" and path == "/batches/{batch_id}" and succeeds:
            batch_id = await self.completed_batch(owner)
        token_id = "0" * 36
        if path.endswith("{token_id}") and succeeds:
            issued = await self.acc.call("admin", "POST", f"/users/{OTHER}/tokens", json={})
            token_id = issued.json()["token_id"]
        name = "orders" if path.startswith("/datasets") else OTHER
        if path == "/roles/{name}":  # a custom role nobody holds, made for the call
            name = f"role_{n}"
            made = await self.acc.call(
                "admin", "POST", "/roles", json={"name": name, "statements": [{"actions": ["*"]}]}
            )
            assert made.status_code == 201, made.text
        if method == "DELETE" and path == "/datasets/{name}" and succeeds:
            name = f"ds_{n}"  # a dataset of its own: every other route still needs "orders"
            made = await self.acc.call(
                "admin", "POST", "/datasets", json={**ORDERS_SCHEMA, "name": name}
            )
            assert made.status_code == 201, made.text
        url = path.format(batch_id=batch_id, name=name, token_id=token_id)
        return url, self._body(method, path, n)

    @staticmethod
    def _body(method: str, path: str, n: int) -> dict[str, Any]:
        bodies: dict[tuple[str, str], dict[str, Any]] = {
            ("POST", "/datasets"): {"json": {**ORDERS_SCHEMA, "name": f"ds_{n}"}},
            ("POST", "/batches"): {
                "params": {"dataset": "orders"},
                "content": TINY_CSV,
                "headers": {"Content-Type": "application/octet-stream"},
            },
            ("POST", "/users"): {"json": {"name": f"user_{n}", "role": "viewer"}},
            ("PATCH", "/users/{name}"): {"json": {"disabled": False}},
            ("POST", "/users/{name}/tokens"): {"json": {}},
            ("POST", "/roles"): {"json": {"name": f"role_{n}", "statements": [{"actions": ["*"]}]}},
            ("PUT", "/roles/{name}"): {"json": {"statements": [{"actions": ["get_*"]}]}},
        }
        return bodies.get((method, path), {})


async def test_route_table_matches_rules(accounts: Accounts) -> None:
    routes = set(api_routes(accounts))
    missing = routes - RULES.keys()
    assert not missing, f"routes without an authorization rule: {sorted(missing)}"
    stale = RULES.keys() - routes
    assert not stale, f"rules for routes that no longer exist: {sorted(stale)}"


async def test_authorization_matrix(accounts: Accounts) -> None:
    matrix = Matrix(accounts)
    await matrix.prepare()
    wrong: list[str] = []
    cases = 0
    for method, path in api_routes(accounts):
        rule = RULES[(method, path)]
        for who in (*BROKEN, *ROLES):
            for own in (True, False) if rule.batch else (True,):
                want = expected(rule, who, own)
                url, kwargs = await matrix.request(method, path, who, own, want == rule.ok)
                response = await accounts.call(who, method, url, **kwargs)
                cases += 1
                case = f"{method} {path} as {who} ({'own' if own else 'other'})"
                if response.status_code != want:
                    wrong.append(f"{case}: {response.status_code} != {want}: {response.text}")
                elif want == 404:
                    await _check_looks_missing(accounts, who, method, path, kwargs, response, case)
                elif want == 403:
                    error = response.json()["error"]
                    assert error["code"] == "forbidden", case
                    assert error["details"]["missing_permission"] == rule.action, case
    assert not wrong, "\n".join(wrong)
    batch_routes = sum(rule.batch for rule in RULES.values())
    assert cases == 7 * (len(RULES) + batch_routes)


async def _check_looks_missing(
    acc: Accounts,
    who: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    response: Any,
    case: str,
) -> None:
    """Another user's batch answers byte for byte like a batch that does not exist."""
    missing_url = path.format(batch_id=uuid.uuid4())
    missing = await acc.call(who, method, missing_url, **kwargs)
    assert response.json()["error"]["code"] == "batch_not_found", case
    assert missing.status_code == 404, case
    assert response.content == missing.content, case
    assert _headers(response) == _headers(missing), case


def _headers(response: Any) -> dict[str, str]:
    """The headers but the request's own id, which differs for any two requests."""
    return {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}


#: Custom roles beside the built-in ones: what each may create batches with, on "orders".
OPERATION_ROLES: dict[str, list[dict[str, Any]]] = {
    "inserter": [{"actions": ["create_batch", "get_*"], "operations": ["insert"]}],
    "upserter": [
        {"actions": ["create_batch"], "datasets": ["orders"], "operations": ["insert", "upsert"]},
        # A statement allowing delete elsewhere does not allow it on orders.
        {"actions": ["create_batch"], "datasets": ["items"], "operations": ["delete"]},
    ],
    "any_op": [{"actions": ["create_batch"], "operations": ["*"]}],
}
OPERATIONS_ALLOWED = {
    "admin": {"insert", "upsert", "delete"},
    "member": {"insert", "upsert", "delete"},
    "inserter": {"insert"},
    "upserter": {"insert", "upsert"},
    "any_op": {"insert", "upsert", "delete"},
}


async def test_operations_per_role(accounts: Accounts) -> None:
    for name, statements in OPERATION_ROLES.items():
        body = {"name": name, "statements": statements}
        assert (await accounts.call("admin", "POST", "/roles", json=body)).status_code == 201
        await accounts.add_user(name, name)
    wrong: list[str] = []
    for who, allowed in OPERATIONS_ALLOWED.items():
        for operation in ("insert", "upsert", "delete"):
            for form in ("upload", "urls"):
                response = await _create(accounts, who, operation, form)
                want = 202 if operation in allowed else 403
                case = f"{operation} ({form}) as {who}: {response.status_code} != {want}"
                if response.status_code != want:
                    wrong.append(f"{case}: {response.text}")
                elif want == 403:
                    error = response.json()["error"]
                    assert error["code"] == "operation_not_allowed", case
                    assert error["details"]["operation"] == operation, case
                    assert error["details"]["missing_permission"] == "create_batch", case
                    assert operation in error["message"] and "orders" in error["message"]
    assert not wrong, "\n".join(wrong)


async def _create(acc: Accounts, who: str, operation: str, form: str) -> Any:
    if form == "upload":
        return await acc.call(
            who,
            "POST",
            "/batches",
            params={"dataset": "orders", "operation": operation},
            content=TINY_CSV,
            headers={"Content-Type": "application/octet-stream"},
        )
    # Nothing listens there: the batch fails later, the permission is checked at create time.
    body = {"dataset": "orders", "operation": operation, "sources": ["http://127.0.0.1:9/a.csv"]}
    return await acc.call(who, "POST", "/batches", json=body)


async def test_file_sources_are_for_admins_only(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "sales.csv").write_bytes(TINY_CSV)
    url = (root / "sales.csv").as_uri()
    with_root = settings.model_copy(update={"file_sources_root": root})
    async with open_accounts(with_root) as acc:
        dataset = {**ORDERS_SCHEMA, "name": "sales_eu"}
        assert (await acc.call("admin", "POST", "/datasets", json=dataset)).status_code == 201
        # Sees every batch and may load sales_*: still no admin, so no reading the server's disk.
        role = {
            "name": "sales_lead",
            "statements": [{"actions": ["create_batch", "get_*"], "datasets": ["sales_*"]}],
            "sees_all_batches": True,
        }
        assert (await acc.call("admin", "POST", "/roles", json=role)).status_code == 201
        await acc.add_user("lead", "sales_lead")
        await acc.add_user("member", "member")
        body = {"dataset": "sales_eu", "sources": [url]}
        for who in ("lead", "member"):
            refused = await acc.call(who, "POST", "/batches", json=body)
            assert refused.status_code == 422, (who, refused.text)
            assert refused.json()["error"]["code"] == "invalid_source", who
            assert "admins only" in refused.json()["error"]["message"]
        accepted = await acc.call("admin", "POST", "/batches", json=body)
        assert accepted.status_code == 202, accepted.text
        done = await acc.finished("admin", accepted.json()["batch"])
        assert done["status"] == "completed" and done["successful_operations"] == 1, done
