"""Users and their API tokens. Only token hashes are stored; hashing is the caller's job."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

# Aliased: the token functions take the current time as a parameter named ``now``.
from batchyard.domain.batches import now as current_ts
from batchyard.domain.errors import Conflict
from batchyard.store.tables import tokens, users


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the user a valid token belongs to."""

    user_id: str
    name: str
    role: str


async def create_user(conn: AsyncConnection, name: str, role: str) -> Principal:
    """Store a new, enabled user; Conflict if the name is taken (the transaction stays usable)."""
    principal = Principal(user_id=str(uuid.uuid4()), name=name, role=role)
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
    return Principal(user_id=row.id, name=row.name, role=row.role) if row is not None else None


async def set_user_disabled(conn: AsyncConnection, user_id: str, *, disabled: bool) -> None:
    """Disable (or re-enable) a user: a disabled user's tokens stop authenticating at once."""
    await conn.execute(sa.update(users).where(users.c.id == user_id).values(disabled=disabled))


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


async def revoke_token(conn: AsyncConnection, token_id: str, *, now: float) -> bool:
    """Stop a token from authenticating; False if there is no such (unrevoked) token."""
    update = (
        sa.update(tokens)
        .where(tokens.c.id == token_id, tokens.c.revoked_ts.is_(None))
        .values(revoked_ts=now)
    )
    return (await conn.execute(update)).rowcount > 0


async def principal_for_token_hash(
    conn: AsyncConnection, token_hash: str, *, now: float
) -> Principal | None:
    """The user a token authenticates at ``now``: None if unknown, revoked, expired or disabled."""
    query = (
        sa.select(users.c.id, users.c.name, users.c.role)
        .join(tokens, tokens.c.user_id == users.c.id)
        .where(
            tokens.c.token_hash == token_hash,
            tokens.c.revoked_ts.is_(None),
            sa.or_(tokens.c.expires_ts.is_(None), tokens.c.expires_ts > now),
            users.c.disabled == sa.false(),
        )
    )
    row = (await conn.execute(query)).first()
    return Principal(user_id=row.id, name=row.name, role=row.role) if row is not None else None
