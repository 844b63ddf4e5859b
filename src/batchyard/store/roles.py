"""Roles: the built-in ones from the domain, custom ones stored with their statements as JSON."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import Conflict, RoleInUse, RoleNotFound
from batchyard.domain.permissions import BUILTIN_ROLES, Role, Statement, check_role_name
from batchyard.store.tables import roles, users


def _role_from_row(name: str, statements: str, sees_all_batches: bool) -> Role:
    return Role(
        name=name,
        statements=tuple(Statement.from_json(s) for s in json.loads(statements)),
        sees_all_batches=bool(sees_all_batches),
    )


async def find_role(conn: AsyncConnection, name: str) -> Role | None:
    """The built-in or custom role called ``name``, or None."""
    if name in BUILTIN_ROLES:
        return BUILTIN_ROLES[name]
    query = sa.select(roles.c.statements, roles.c.sees_all_batches).where(roles.c.name == name)
    row = (await conn.execute(query)).first()
    return _role_from_row(name, row.statements, row.sees_all_batches) if row else None


async def get_role(conn: AsyncConnection, name: str) -> Role:
    role = await find_role(conn, name)
    if role is None:
        raise RoleNotFound(f"Role {name!r} not found", details={"role": name})
    return role


async def create_role(conn: AsyncConnection, role: Role) -> Role:
    """Store a custom role; Conflict if the name is built in or taken."""
    check_role_name(role.name)
    if role.name in BUILTIN_ROLES:
        raise Conflict(f"{role.name!r} is a built-in role", details={"role": role.name})
    row = {
        "name": role.name,
        "statements": json.dumps([s.to_json() for s in role.statements]),
        "sees_all_batches": role.sees_all_batches,
        "created_ts": now(),
    }
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(roles).values(row))
    except IntegrityError:
        raise Conflict(
            f"A role named {role.name!r} already exists", details={"role": role.name}
        ) from None
    return role


def _custom(name: str, doing: str) -> str:
    if name in BUILTIN_ROLES:
        raise Conflict(f"{name!r} is a built-in role: it cannot be {doing}", details={"role": name})
    return name


async def update_role(conn: AsyncConnection, role: Role) -> Role:
    """Replace a custom role's statements; its users hold the new ones from their next request."""
    _custom(role.name, "changed")
    changed = await conn.execute(
        sa.update(roles)
        .where(roles.c.name == role.name)
        .values(
            statements=json.dumps([s.to_json() for s in role.statements]),
            sees_all_batches=role.sees_all_batches,
        )
    )
    if not changed.rowcount:
        raise RoleNotFound(f"Role {role.name!r} not found", details={"role": role.name})
    return role


async def delete_role(conn: AsyncConnection, name: str) -> None:
    """Delete a custom role nobody holds (RoleInUse otherwise: they would be left with none)."""
    _custom(name, "deleted")
    holders = await conn.scalar(
        sa.select(sa.func.count()).select_from(users).where(users.c.role == name)
    )
    if holders:
        raise RoleInUse(
            f"{holders} user(s) hold role {name!r}; give them another role first",
            details={"role": name, "users": holders},
        )
    deleted = await conn.execute(sa.delete(roles).where(roles.c.name == name))
    if not deleted.rowcount:
        raise RoleNotFound(f"Role {name!r} not found", details={"role": name})


async def list_roles(conn: AsyncConnection) -> list[Role]:
    """Built-in roles first, then custom ones by name."""
    query = sa.select(roles.c.name, roles.c.statements, roles.c.sees_all_batches).order_by(
        roles.c.name
    )
    custom = [_role_from_row(*row) for row in await conn.execute(query)]
    return [*BUILTIN_ROLES.values(), *custom]
