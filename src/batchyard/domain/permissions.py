"""Actions a user may be allowed, and the built-in roles' statements."""

from __future__ import annotations

import enum


class Action(enum.StrEnum):
    CREATE_BATCH = "create_batch"
    GET_BATCH = "get_batch"
    GET_BATCH_STATUS = "get_batch_status"
    GET_BATCH_LOG = "get_batch_log"
    LIST_BATCHES = "list_batches"
    CANCEL_BATCH = "cancel_batch"
    DELETE_BATCH = "delete_batch"
    CREATE_DATASET = "create_dataset"
    GET_DATASET = "get_dataset"
    LIST_DATASETS = "list_datasets"
    DELETE_DATASET = "delete_dataset"
    MANAGE_USERS = "manage_users"


_READ_OWN = frozenset(
    {
        Action.GET_BATCH,
        Action.GET_BATCH_STATUS,
        Action.GET_BATCH_LOG,
        Action.LIST_BATCHES,
        Action.GET_DATASET,
        Action.LIST_DATASETS,
    }
)

#: Built-in roles. ``admin`` may do everything and sees every user's batches.
BUILTIN_ROLES: dict[str, frozenset[Action]] = {
    "admin": frozenset(Action),
    "member": _READ_OWN | {Action.CREATE_BATCH, Action.CANCEL_BATCH, Action.DELETE_BATCH},
    "viewer": _READ_OWN,
}


def is_allowed(role: str, action: Action) -> bool:
    return action in BUILTIN_ROLES.get(role, frozenset())


def sees_all_batches(role: str) -> bool:
    return role == "admin"
