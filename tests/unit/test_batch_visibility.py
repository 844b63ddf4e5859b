"""The one visibility rule for a batch (``service.auth.visible_batch``), on plain values.

Every route that reads, cancels, deletes or follows one batch goes through it; the API tests
(tests/api/test_authz_matrix.py, test_batch_owners.py) check the same rule over HTTP.
"""

from __future__ import annotations

import asyncio

import pytest

from batchyard.domain.batches import Batch, BatchOptions
from batchyard.domain.errors import BatchNotFound, Forbidden
from batchyard.domain.permissions import BUILTIN_ROLES, Action, Role, Statement
from batchyard.domain.statuses import BatchStatus
from batchyard.service.auth import visible_batch
from batchyard.store.users import Principal

BATCH = Batch(
    id="0b6f4c1e-0000-4000-8000-000000000001",
    owner_id="alice-id",
    dataset="orders",
    operation="insert",
    status=BatchStatus.COMPLETED,
    format=None,
    sources=(),
    options=BatchOptions(),
    created_ts=1.0,
    updated_ts=2.0,
)


def principal(user_id: str, role: Role) -> Principal:
    return Principal(user_id=user_id, name=user_id, role=role.name, grants=role)


def see(who: Principal, action: Action = Action.GET_BATCH) -> tuple[Batch, int]:
    reads = 0

    async def load() -> Batch:
        nonlocal reads
        reads += 1
        return BATCH

    return asyncio.run(visible_batch(who, action, load)), reads


def test_the_owner_and_a_role_that_sees_all_batches_get_the_batch() -> None:
    assert see(principal("alice-id", BUILTIN_ROLES["member"])) == (BATCH, 1)
    assert see(principal("admin-id", BUILTIN_ROLES["admin"])) == (BATCH, 1)


def test_another_users_batch_is_not_found_exactly_like_a_missing_one() -> None:
    with pytest.raises(BatchNotFound) as other:
        see(principal("bob-id", BUILTIN_ROLES["member"]))

    async def missing() -> Batch:
        raise BatchNotFound()

    with pytest.raises(BatchNotFound) as absent:
        asyncio.run(
            visible_batch(principal("bob-id", BUILTIN_ROLES["member"]), Action.GET_BATCH, missing)
        )
    assert (other.value.code, other.value.message) == (absent.value.code, absent.value.message)


def test_a_missing_permission_is_forbidden_before_the_batch_is_read() -> None:
    viewer = principal("alice-id", BUILTIN_ROLES["viewer"])
    reads = 0

    async def load() -> Batch:
        nonlocal reads
        reads += 1
        return BATCH

    with pytest.raises(Forbidden):
        asyncio.run(visible_batch(viewer, Action.CANCEL_BATCH, load))
    assert reads == 0


def test_a_permission_on_other_datasets_only_is_forbidden_on_this_one() -> None:
    sales = Role("sales", (Statement.of(["get_batch"], ["sales_*"]),))
    with pytest.raises(Forbidden) as refused:
        see(principal("alice-id", sales))
    assert refused.value.details == {"missing_permission": "get_batch", "dataset": "orders"}
