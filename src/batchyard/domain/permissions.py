"""Actions, and roles made of statements that allow them (optionally only on some datasets).

A statement lists allowed actions (names or ``*`` patterns such as ``get_*``) and, optionally,
the datasets it applies to (names or patterns) and the operations (``insert``, ``upsert``,
``delete``, registered ones; patterns too) its ``create_batch`` may run; a role allows what any of
its statements allows.
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
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: An action or dataset pattern: identifier characters and ``*`` wildcards only.
_PATTERN = re.compile(r"^[a-z0-9_*]{1,63}$")


def _check_patterns(kind: str, patterns: Iterable[str]) -> tuple[str, ...]:
    if isinstance(patterns, str):
        raise InvalidRequest(f"{kind}s must be a list of patterns", details={kind: patterns})
    checked = tuple(patterns)
    for pattern in checked:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            raise InvalidRequest(
                f"{kind} pattern {pattern!r} may only hold a-z, 0-9, _ and *",
                details={kind: pattern},
            )
    return checked


def _check_actions(patterns: Iterable[str]) -> tuple[str, ...]:
    checked = _check_patterns("action", patterns)
    if not checked:
        raise InvalidRequest("a statement must allow at least one action")
    for pattern in checked:
        if not any(fnmatch.fnmatchcase(a.value, pattern) for a in Action):
            raise InvalidRequest(
                f"action {pattern!r} matches none of: {', '.join(a.value for a in Action)}",
                details={"action": pattern},
            )
    return checked


def _check_operations(
    actions: tuple[str, ...], operations: Iterable[str] | None
) -> tuple[str, ...] | None:
    """Operation patterns only mean something where the statement allows ``create_batch``."""
    if operations is None:
        return None
    checked = _check_patterns("operation", operations)
    if not checked:
        raise InvalidRequest("operations, when given, must name at least one operation")
    if not any(fnmatch.fnmatchcase(Action.CREATE_BATCH.value, p) for p in actions):
        raise InvalidRequest(
            "operations limit create_batch, which this statement does not allow",
            details={"operations": list(checked)},
        )
    return checked


def _matches(name: str, patterns: tuple[str, ...] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class Statement:
    """Allows ``actions`` on ``datasets`` (None: on every dataset); its ``create_batch`` may run
    only ``operations`` (None: every operation)."""

    actions: tuple[str, ...]
    datasets: tuple[str, ...] | None = None
    operations: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        actions: Iterable[str],
        datasets: Iterable[str] | None = None,
        operations: Iterable[str] | None = None,
    ) -> Statement:
        """A checked statement: every action pattern must match at least one known action.

        Operation patterns are not checked against known operations: packages may register
        more, and a name no operation has simply allows nothing.
        """
        checked = _check_actions(actions)
        scope = None if datasets is None else _check_patterns("dataset", datasets)
        return cls(checked, scope, _check_operations(checked, operations))

    def allows(self, action: Action, dataset: str | None, operation: str | None = None) -> bool:
        """Whether ``action`` is allowed (on ``dataset``, running ``operation``: None skips
        either check, for callers that do not know it yet)."""
        if not _matches(action.value, self.actions):
            return False
        if dataset is not None and not _matches(dataset, self.datasets):
            return False
        if operation is None or action != Action.CREATE_BATCH:
            return True
        return _matches(operation, self.operations)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "actions": list(self.actions),
            "datasets": None if self.datasets is None else list(self.datasets),
        }
        if self.operations is not None:
            data["operations"] = list(self.operations)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Statement:
        datasets, operations = data.get("datasets"), data.get("operations")
        return cls.of(
            data.get("actions") or (),
            None if datasets is None else datasets,
            None if operations is None else operations,
        )


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of statements; ``sees_all_batches`` lifts the own-batches-only rule."""

    name: str
    statements: tuple[Statement, ...]
    sees_all_batches: bool = False
    builtin: bool = False

    def allows(
        self, action: Action, dataset: str | None = None, operation: str | None = None
    ) -> bool:
        """Whether ``action`` is allowed; with ``dataset=None``, on at least some dataset; with
        ``operation`` (for create_batch), by a statement that also allows that operation."""
        return any(s.allows(action, dataset, operation) for s in self.statements)

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
    if not ROLE_NAME.fullmatch(name):
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
