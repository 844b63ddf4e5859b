"""The operations this server has: the built-in ones and those packages register.

A package registers an operation under the entry point group ``batchyard.operations``: the
entry point's name is the operation's name, its object an operation (or a class made with no
arguments) with ``description``, ``settings_schema`` (JSON Schema of ``options.operation``),
``keeps_input_order`` and ``apply(records, context)``. Entry points are read once per process,
the first time an operation is asked for, not at import.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

import jsonschema

from batchyard.apply.operations import RecordOperation, TableOperation
from batchyard.domain.batches import Operation
from batchyard.domain.errors import InvalidOperationSettings, UnknownOperation
from batchyard.pipeline.addresses import Reach
from batchyard.settings import Settings

logger = logging.getLogger("batchyard.operations")

GROUP = "batchyard.operations"
#: What an operation without settings accepts: nothing.
NO_SETTINGS: dict[str, Any] = {"type": "object", "additionalProperties": False}
#: What a secret setting (JSON Schema ``writeOnly``) shows in responses.
REDACTED = "<redacted>"

_TABLE_DESCRIPTIONS = {
    Operation.INSERT: "Insert each record into the dataset's table.",
    Operation.UPSERT: "Insert each record, or update the row with its primary key.",
    Operation.DELETE: "Delete the row with each record's primary key.",
}


@dataclass(frozen=True, slots=True)
class Registered:
    """One operation as the server lists it, and the object that applies it."""

    name: str
    description: str
    settings_schema: Mapping[str, Any]
    operation: RecordOperation
    #: True for insert, upsert and delete: they write into the dataset's table.
    writes_table: bool = False

    def check(self, settings: Mapping[str, Any] | None, reach: Reach) -> dict[str, Any]:
        """``settings`` checked against the schema (and the operation's own ``check``)."""
        given = dict(settings or {})
        validator = jsonschema.Draft202012Validator(dict(self.settings_schema))
        error = jsonschema.exceptions.best_match(validator.iter_errors(given))
        if error is not None:
            where = "options.operation" + "".join(f".{p}" for p in error.absolute_path)
            raise InvalidOperationSettings(
                f"{where}: {error.message}", details={"operation": self.name, "field": where}
            )
        check = getattr(self.operation, "check", None)
        if callable(check):
            check(given, reach)
        return given

    def bound(self, server: Settings) -> RecordOperation:
        """The operation for this server (one that needs its settings has a ``bind``)."""
        bind = getattr(self.operation, "bind", None)
        return self.operation if bind is None else cast(RecordOperation, bind(server))

    def shown(self, settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``settings`` with every secret (``writeOnly``) value replaced, for responses."""
        if settings is None:
            return None
        properties = self.settings_schema.get("properties", {})
        return {
            key: _redacted(value) if properties.get(key, {}).get("writeOnly") else value
            for key, value in settings.items()
        }


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: REDACTED for key in value}
    return REDACTED


@functools.cache
def available_operations() -> Mapping[str, Registered]:
    """Every operation, by name: built-ins first, then the entry points (read once)."""
    from batchyard.operations.http import HttpOperation

    found: dict[str, Registered] = {
        op.value: Registered(
            op.value, _TABLE_DESCRIPTIONS[op], NO_SETTINGS, TableOperation(op), True
        )
        for op in Operation
    }
    http = HttpOperation()
    found[http.name] = Registered(http.name, http.description, http.settings_schema, http)
    for point in entry_points(group=GROUP):
        if point.name in found:
            continue
        try:
            found[point.name] = _load(point.name, point.load())
        except Exception:
            logger.exception(
                "operation %s (entry point %s) could not be loaded", point.name, point.value
            )
    return found


def _load(name: str, loaded: Any) -> Registered:
    operation = loaded() if isinstance(loaded, type) else loaded
    description = str(getattr(operation, "description", "") or (operation.__doc__ or "").strip())
    schema = getattr(operation, "settings_schema", None) or {"type": "object"}
    jsonschema.Draft202012Validator.check_schema(schema)
    return Registered(name, description, schema, _Named(name, operation))


@dataclass(frozen=True, slots=True)
class _Named:
    """A plugin's operation under its entry point's name; input order only if it asks for it."""

    name: str
    inner: Any

    @property
    def keeps_input_order(self) -> bool:
        return bool(getattr(self.inner, "keeps_input_order", False))

    def apply(self, records: Any, context: Any) -> Any:
        return self.inner.apply(records, context)

    def bind(self, server: Settings) -> Any:
        bind = getattr(self.inner, "bind", None)
        return self if bind is None else _Named(self.name, bind(server))

    def check(self, settings: dict[str, Any], reach: Reach) -> None:
        check = getattr(self.inner, "check", None)
        if callable(check):
            check(settings, reach)


def operation_named(name: str) -> Registered:
    """The operation called ``name``; 422 ``unknown_operation`` when this server has none."""
    found = available_operations().get(name)
    if found is None:
        raise UnknownOperation(
            f"operation {name!r} is not one this server has (GET /operations lists them)",
            details={"operation": name, "available": sorted(available_operations())},
        )
    return found
