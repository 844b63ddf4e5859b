"""The SDK's account calls: built once in the sans-IO core, the same methods on both clients."""

from __future__ import annotations

import inspect

import httpx
import pytest

import batchyard.client as sdk
from batchyard.client import _core


def test_account_requests_are_built_once() -> None:
    created = _core.create_user("eve", "member", 3600)
    assert (created.method, created.path) == ("POST", "/users")
    assert created.json == {"name": "eve", "role": "member", "expires_in": 3600}
    assert _core.update_user("a/b", True, None).path == "/users/a%2Fb"
    assert _core.update_user("eve", None, "viewer").json == {"role": "viewer"}
    assert _core.list_tokens(None).path == "/tokens"
    assert _core.list_tokens("eve").path == "/users/eve/tokens"
    assert _core.revoke_token("t1", None).path == "/tokens/t1"
    assert _core.revoke_token("t1", "eve").path == "/users/eve/tokens/t1"
    statement = sdk.Statement(actions=["create_batch"], operations=["insert"])
    role = _core.save_role("loader", [statement], False, replace=False)
    assert role.json == {
        "name": "loader",
        "statements": [{"actions": ["create_batch"], "operations": ["insert"]}],
        "sees_all_batches": False,
    }
    replaced = _core.save_role("loader", [{"actions": ["*"]}], True, replace=True)
    assert (replaced.method, replaced.path) == ("PUT", "/roles/loader")


@pytest.mark.parametrize(
    ("sync", "asynchronous"), [(sdk.Users, sdk.AsyncUsers), (sdk.Roles, sdk.AsyncRoles)]
)
def test_both_clients_have_the_same_account_methods(sync: type, asynchronous: type) -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    assert public(sync).keys() == public(asynchronous).keys()
    for name, signature in public(sync).items():
        assert signature.parameters.keys() == public(asynchronous)[name].parameters.keys(), name
        assert inspect.iscoroutinefunction(getattr(asynchronous, name)), name


def test_account_errors_map_to_their_own_exceptions() -> None:
    request = httpx.Request("PATCH", "http://x/users/admin")
    body = {"error": {"code": "last_admin", "message": "no", "details": None}}
    with pytest.raises(sdk.LastAdmin):
        _core.update_user("admin", True, None).parse(
            httpx.Response(409, json=body, request=request)
        )
    body["error"]["code"] = "operation_not_allowed"
    with pytest.raises(sdk.OperationNotAllowed):
        _core.update_user("admin", True, None).parse(
            httpx.Response(403, json=body, request=request)
        )
