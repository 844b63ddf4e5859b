"""Roles as statements: wildcards, dataset scopes and the built-in roles."""

from __future__ import annotations

import pytest

from batchyard.domain.errors import InvalidRequest
from batchyard.domain.permissions import BUILTIN_ROLES, Action, Role, Statement

A = Action


def test_builtin_roles_allow_what_the_issue_says() -> None:
    admin, member, viewer = (BUILTIN_ROLES[n] for n in ("admin", "member", "viewer"))
    assert all(admin.allows(a) for a in Action) and admin.sees_all_batches
    assert member.allows(A.CREATE_BATCH) and member.allows(A.GET_DATASET)
    assert not member.allows(A.CREATE_DATASET) and not member.allows(A.MANAGE_USERS)
    assert viewer.allows(A.GET_BATCH_LOG) and not viewer.allows(A.CREATE_BATCH)
    assert not viewer.allows(A.CANCEL_BATCH) and not viewer.allows(A.GET_DATASET)
    assert not member.sees_all_batches and not viewer.sees_all_batches


def test_wildcards_and_dataset_patterns() -> None:
    role = Role(
        "sales",
        (
            Statement.of(["get_*", "create_batch"], ["sales_*", "orders"]),
            Statement.of(["list_*"]),
        ),
    )
    assert role.allows(A.GET_BATCH_LOG, "sales_eu")
    assert role.allows(A.CREATE_BATCH, "orders")
    assert not role.allows(A.CREATE_BATCH, "order")
    assert not role.allows(A.CREATE_BATCH, "hr_salaries")
    assert role.allows(A.CREATE_BATCH)  # allowed somewhere: callers then check the dataset
    assert role.allows(A.LIST_DATASETS, "anything")
    assert not role.allows(A.DELETE_BATCH)


def test_statements_round_trip_through_json() -> None:
    statement = Statement.of(["*_batch"], ["a*"])
    assert Statement.from_json(statement.to_json()) == statement
    assert Statement.from_json({"actions": ["*"]}).datasets is None


@pytest.mark.parametrize(
    ("actions", "datasets"),
    [([], None), (["creat_batch"], None), (["get batch"], None), (["*"], ["Orders"])],
)
def test_bad_statements_are_refused_clearly(actions: list[str], datasets: list[str] | None) -> None:
    with pytest.raises(InvalidRequest):
        Statement.of(actions, datasets)


def test_statements_can_limit_the_operations_of_create_batch() -> None:
    role = Role(
        "appender",
        (
            Statement.of(["create_batch", "get_batch"], ["orders"], ["insert", "up*"]),
            Statement.of(["create_batch"], ["staging_*"], ["delete"]),
        ),
    )
    assert role.allows(A.CREATE_BATCH, "orders", "insert")
    assert role.allows(A.CREATE_BATCH, "orders", "upsert")
    assert not role.allows(A.CREATE_BATCH, "orders", "delete")  # delete is allowed elsewhere only
    assert role.allows(A.CREATE_BATCH, "staging_a", "delete")
    assert not role.allows(A.CREATE_BATCH, "staging_a", "insert")
    assert role.allows(A.GET_BATCH, "orders", "delete")  # operations only limit create_batch
    assert all(BUILTIN_ROLES["member"].allows(A.CREATE_BATCH, "x", op) for op in ("delete", "http"))
    statement = role.statements[0]
    assert Statement.from_json(statement.to_json()) == statement
    assert "operations" not in Statement.of(["*"]).to_json()  # stored roles stay as they were


@pytest.mark.parametrize(
    ("actions", "operations"),
    [(["get_*"], ["insert"]), (["create_batch"], []), (["create_batch"], ["Insert"])],
)
def test_bad_operation_limits_are_refused(actions: list[str], operations: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        Statement.of(actions, None, operations)
    with pytest.raises(InvalidRequest):
        Statement.from_json({"actions": ["create_batch"], "operations": "insert"})
