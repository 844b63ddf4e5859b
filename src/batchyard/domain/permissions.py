"""Actions, and roles made of statements that allow them (optionally only on some datasets).

A statement lists allowed actions (names or ``*`` patterns such as ``get_*``) and, optionally,
the datasets it applies to (names or patterns); a role allows what any of its statements allows.
Pure: the store keeps custom roles, the service asks ``Role.allows`` before acting.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from batchyard.domain.errors import InvalidRequest


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


#: Role names are identifiers, like dataset names.
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: An action or dataset pattern: identifier characters and ``*`` wildcards only.
_PATTERN = re.compile(r"^[a-z0-9_*]{1,63}$")


def _check_patterns(kind: str, patterns: Iterable[str]) -> tuple[str, ...]:
    checked = tuple(patterns)
    for pattern in checked:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise InvalidRequest(
                f"{kind} pattern {pattern!r} may only hold a-z, 0-9, _ and *",
                details={kind: pattern},
            )
    return checked


@dataclass(frozen=True, slots=True)
class Statement:
    """Allows ``actions`` on ``datasets`` (None: on every dataset)."""

    actions: tuple[str, ...]
    datasets: tuple[str, ...] | None = None

    @classmethod
    def of(cls, actions: Iterable[str], datasets: Iterable[str] | None = None) -> Statement:
        """A checked statement: every action pattern must match at least one known action."""
        checked = _check_patterns("action", actions)
        if not checked:
            raise InvalidRequest("a statement must allow at least one action")
        for pattern in checked:
            if not any(fnmatch.fnmatchcase(a.value, pattern) for a in Action):
                raise InvalidRequest(
                    f"action {pattern!r} matches none of: {', '.join(a.value for a in Action)}",
                    details={"action": pattern},
                )
        scope = None if datasets is None else _check_patterns("dataset", datasets)
        return cls(actions=checked, datasets=scope)

    def allows(self, action: Action, dataset: str | None) -> bool:
        if not any(fnmatch.fnmatchcase(action.value, p) for p in self.actions):
            return False
        if dataset is None or self.datasets is None:
            return True
        return any(fnmatch.fnmatchcase(dataset, p) for p in self.datasets)

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": list(self.actions),
            "datasets": None if self.datasets is None else list(self.datasets),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Statement:
        datasets = data.get("datasets")
        return cls.of(data.get("actions") or (), None if datasets is None else datasets)


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of statements; ``sees_all_batches`` lifts the own-batches-only rule."""

    name: str
    statements: tuple[Statement, ...]
    sees_all_batches: bool = False
    builtin: bool = False

    def allows(self, action: Action, dataset: str | None = None) -> bool:
        """Whether ``action`` is allowed; with ``dataset=None``, on at least some dataset."""
        return any(s.allows(action, dataset) for s in self.statements)

    def dataset_scope(self, action: Action) -> tuple[str, ...] | None:
        """The dataset patterns ``action`` is allowed on; None when it is allowed on every one."""
        patterns: list[str] = []
        for statement in self.statements:
            if statement.allows(action, None):
                if statement.datasets is None:
                    return None
                patterns.extend(statement.datasets)
        return tuple(patterns)


def check_role_name(name: str) -> str:
    if not ROLE_NAME.match(name):
        raise InvalidRequest(
            f"role name {name!r} must match {ROLE_NAME.pattern}", details={"role": name}
        )
    return name


_READ_OWN = ("get_batch", "get_batch_status", "get_batch_log", "list_batches")

#: Built-in roles, defined here and not editable; custom roles live in the metadata database.
BUILTIN_ROLES: dict[str, Role] = {
    "admin": Role("admin", (Statement(("*",)),), sees_all_batches=True, builtin=True),
    "member": Role(
        "member",
        (
            Statement((*_READ_OWN, "create_batch", "cancel_batch", "delete_batch")),
            Statement(("get_dataset", "list_datasets")),
        ),
        builtin=True,
    ),
    "viewer": Role("viewer", (Statement(_READ_OWN),), builtin=True),
}

#: A role whose definition is missing (a user row naming a role that no longer exists).
NO_ROLE = Role("none", ())
