"""Users and their API tokens. Only token hashes are stored; hashing is the caller's job."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

# Aliased: the token functions take the current time as a parameter named ``now``.
from batchyard.domain.batches import now as current_ts
from batchyard.domain.errors import Conflict, UserNotFound
from batchyard.domain.permissions import NO_ROLE, Role
from batchyard.store.roles import find_role, get_role
from batchyard.store.tables import tokens, users


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the user a valid token belongs to, with their role's statements."""

    user_id: str
    name: str
    role: str
    grants: Role = field(default=NO_ROLE, compare=False)


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user as administrators see them."""

    user_id: str
    name: str
    role: str
    disabled: bool
    created_ts: float


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's metadata (never the token, never its hash)."""

    token_id: str
    user: str
    created_ts: float
    expires_ts: float | None
    revoked_ts: float | None


async def _principal(conn: AsyncConnection, user_id: str, name: str, role: str) -> Principal:
    grants = await find_role(conn, role) or NO_ROLE
    return Principal(user_id=user_id, name=name, role=role, grants=grants)


async def create_user(conn: AsyncConnection, name: str, role: str) -> Principal:
    """Store a new, enabled user of an existing role; Conflict if the name is taken.

    The insert runs in a savepoint, so the caller's transaction stays usable after a conflict.
    """
    grants = await get_role(conn, role)
    principal = Principal(user_id=str(uuid.uuid4()), name=name, role=role, grants=grants)
    row = {"id": principal.user_id, "name": name, "role": role, "created_ts": current_ts()}
    try:
        async with conn.begin_nested():
            await conn.execute(sa.insert(users).values(row))
    except IntegrityError:
        raise Conflict(f"A user named {name!r} already exists", details={"user": name}) from None
    return principal


async def get_user_by_name(conn: AsyncConnection, name: str) -> Principal | None:
    query = sa.select(users.c.id, users.c.name, users.c.role).where(users.c.name == name)
    row = (await conn.execute(query)).first()
    return await _principal(conn, row.id, row.name, row.role) if row is not None else None


async def require_user(conn: AsyncConnection, name: str) -> Principal:
    user = await get_user_by_name(conn, name)
    if user is None:
        raise UserNotFound(f"User {name!r} not found", details={"user": name})
    return user


async def list_users(conn: AsyncConnection) -> list[UserInfo]:
    query = sa.select(
        users.c.id, users.c.name, users.c.role, users.c.disabled, users.c.created_ts
    ).order_by(users.c.name)
    return [UserInfo(*row) for row in await conn.execute(query)]


async def lock_users(conn: AsyncConnection) -> None:
    """Hold every user row until the transaction ends (PostgreSQL; SQLite writes one at a time
    anyway): two concurrent demotions cannot both see the other admin still there."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(users.c.id).with_for_update())


async def set_user_disabled(conn: AsyncConnection, user_id: str, *, disabled: bool) -> None:
    """Disable (or re-enable) a user: a disabled user's tokens stop authenticating at once."""
    await conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled))


async def set_user_role(conn: AsyncConnection, user_id: str, role: str) -> None:
    """Give the user another role (checked to exist by the caller): it applies at once."""
    await conn.execute(sa.update(users).where(users.c.id == user_id).values(role=role))


async def add_token(
    conn: AsyncConnection, user_id: str, token_hash: str, *, expires_ts: float | None = None
) -> str:
    """Store a token's hash for ``user_id`` and return the token's id (for revoking it later)."""
    token_id = str(uuid.uuid4())
    await conn.execute(
        sa.insert(tokens).values(
            id=token_id,
            user_id=user_id,
            token_hash=token_hash,
            created_ts=current_ts(),
            expires_ts=expires_ts,
        )
    )
    return token_id


def _token_infos() -> sa.Select[Any]:
    return sa.select(
        tokens.c.id, users.c.name, tokens.c.created_ts, tokens.c.expires_ts, tokens.c.revoked_ts
    ).join(users, tokens.c.user_id == users.c.id)


async def list_tokens(conn: AsyncConnection, user_id: str | None = None) -> list[TokenInfo]:
    """Tokens' metadata, newest first (of one user, or of everyone)."""
    query = _token_infos().order_by(tokens.c.created_ts.desc(), tokens.c.id)
    if user_id is not None:
        query = query.where(tokens.c.user_id == user_id)
    return [TokenInfo(*row) for row in await conn.execute(query)]


async def find_token_by_hash(conn: AsyncConnection, token_hash: str) -> TokenInfo | None:
    """A token's metadata by its hash, live or not (None if no token has it)."""
    row = (await conn.execute(_token_infos().where(tokens.c.token_hash == token_hash))).first()
    return TokenInfo(*row) if row is not None else None


async def revoke_token(
    conn: AsyncConnection, token_id: str, *, now: float, user_id: str | None = None
) -> bool:
    """Stop a token (of ``user_id``, if given) from authenticating; False if no such live token."""
    update = (
        sa.update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_ts.is_(None))
        .values(revoked_ts=now)
    )
    if user_id is not None:
        update = update.where(tokens.c.user_id == user_id)
    return (await conn.execute(update)).rowcount > 0


async def principal_for_token_hash(
    conn: AsyncConnection, token_hash: str, *, now: float
) -> Principal | None:
    """The user a token authenticates at ``now``: None if unknown, revoked, expired or disabled.

    The lookup is by keyed hash, so its timing tells an attacker nothing about any real token;
    the final comparison is constant-time all the same.
    """
    query = (
        sa.select(users.c.id, users.c.name, users.c.role, tokens.c.token_hash)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(
            tokens.c.token_hash == token_hash,
            tokens.c.revoked_ts.is_(None),
            sa.or_(tokens.c.expires_ts.is_(None), tokens.c.expires_ts > now),
            users.c.disabled == sa.false(),
        )
    )
    row = (await conn.execute(query)).first()
    if row is None or not hmac.compare_digest(row.token_hash, token_hash):
        return None
    return await _principal(conn, row.id, row.name, row.role)


async def webhook_secret_version(conn: AsyncConnection, user_id: str) -> int:
    version = await conn.scalar(
        sa.select(users.c.webhook_secret_version).where(users.c.id == user_id)
    )
    if version is None:
        raise UserNotFound()
    return int(version)


async def bump_webhook_secret_version(conn: AsyncConnection, user_id: str) -> int:
    """Rotate the user's webhook secret (it is derived from this number) and return the new one."""
    await conn.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(webhook_secret_version=users.c.webhook_secret_version + 1)
    )
    return await webhook_secret_version(conn, user_id)
