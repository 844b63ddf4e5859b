"""User, token and role administration, shared by the admin API and the ``batchyard`` CLI.

Callers decide who may do this (the API requires ``manage_users``; the CLI goes through the API,
or, with ``--data-dir``/``--database-url``, is the operator with the database in hand). Neither
may leave the service without an enabled admin. Tokens are returned exactly once, here, and only
their keyed hash is kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import now
from batchyard.domain.errors import InvalidRequest, LastAdmin, TokenNotFound
from batchyard.domain.permissions import NO_ROLE, Action, Role, Statement, check_role_name
from batchyard.service.auth import credentials_changed, hash_token, new_token
from batchyard.store import roles as role_rows
from batchyard.store import users as user_rows
from batchyard.store.database import MetadataStore
from batchyard.store.users import Principal, TokenInfo, UserInfo

#: Separates webhook secrets from everything else derived from the server secret.
_WEBHOOK_CONTEXT = "batchyard-webhook-v1"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a visible marker, not a secret


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token as issued: ``token`` is shown to its owner now and never again."""

    token_id: str
    user: str
    token: str
    expires_ts: float | None


def _user_name(name: str) -> str:
    # Same rule as role and dataset names: safe in logs, URLs and shells.
    try:
        return check_role_name(name)
    except InvalidRequest:
        raise InvalidRequest(
            f"user name {name!r} must be lowercase letters, digits and _", details={"user": name}
        ) from None


def _expiry(expires_in: float | None) -> float | None:
    if expires_in is None:
        return None
    if expires_in <= 0:
        raise InvalidRequest("a token's lifetime must be positive", details={"expires_in": 0})
    return now() + expires_in


async def create_user(
    store: MetadataStore, secret: bytes, name: str, role: str, *, expires_in: float | None = None
) -> tuple[UserInfo, IssuedToken]:
    """Create a user with a first token (RoleNotFound if ``role`` does not exist)."""
    token = new_token()
    expires_ts = _expiry(expires_in)
    async with store.begin() as conn:
        user = await user_rows.create_user(conn, _user_name(name), role)
        token_id = await user_rows.add_token(
            conn, user.user_id, hash_token(secret, token), expires_ts=expires_ts
        )
        info = next(u for u in await user_rows.list_users(conn) if u.user_id == user.user_id)
    return info, IssuedToken(token_id, user.name, token, expires_ts)


async def list_users(store: MetadataStore) -> list[UserInfo]:
    async with store.begin() as conn:
        return await user_rows.list_users(conn)


def _admins(accounts: Iterable[UserInfo], roles: Mapping[str, Role]) -> set[str]:
    """Enabled users whose role lets them manage users (and so everything else)."""
    return {
        u.name
        for u in accounts
        if not u.disabled and roles.get(u.role, NO_ROLE).allows(Action.MANAGE_USERS)
    }


async def _accounts(conn: AsyncConnection) -> tuple[list[UserInfo], dict[str, Role]]:
    await user_rows.lock_users(conn)
    roles = {r.name: r for r in await role_rows.list_roles(conn)}
    return await user_rows.list_users(conn), roles


def _keep_an_admin(before: set[str], after: set[str], doing: str) -> None:
    """LastAdmin when a change would leave nobody able to manage users (nobody could undo it)."""
    if before and not after:
        raise LastAdmin(
            f"{doing} would leave no enabled admin; make another user admin first",
            details={"admins": sorted(before)},
        )


@asynccontextmanager
async def _changing_credentials(store: MetadataStore) -> AsyncIterator[AsyncConnection]:
    """A write transaction on users, tokens or roles; once it ends, this process's memory of
    resolved tokens is dropped, so the change applies to the very next request."""
    try:
        async with store.begin() as conn:
            yield conn
    finally:
        credentials_changed(store)


async def update_user(
    store: MetadataStore, name: str, *, disabled: bool | None = None, role: str | None = None
) -> UserInfo:
    """Disable/enable a user and/or give them another existing role (RoleNotFound if it is not);
    both apply from their next request on. LastAdmin if that would leave no admin."""
    async with _changing_credentials(store) as conn:
        user = await user_rows.require_user(conn, name)
        accounts, roles = await _accounts(conn)
        new_role = (await role_rows.get_role(conn, role)).name if role is not None else None
        changed = [
            dataclasses.replace(
                u,
                role=new_role or u.role,
                disabled=u.disabled if disabled is None else disabled,
            )
            if u.user_id == user.user_id
            else u
            for u in accounts
        ]
        _keep_an_admin(_admins(accounts, roles), _admins(changed, roles), f"Changing {name!r}")
        if new_role is not None:
            await user_rows.set_user_role(conn, user.user_id, new_role)
        if disabled is not None:
            await user_rows.set_user_disabled(conn, user.user_id, disabled=disabled)
        return next(u for u in changed if u.user_id == user.user_id)


async def create_token(
    store: MetadataStore, secret: bytes, name: str, *, expires_in: float | None = None
) -> IssuedToken:
    """Issue another token for an existing user."""
    token = new_token()
    expires_ts = _expiry(expires_in)
    async with store.begin() as conn:
        user = await user_rows.require_user(conn, name)
        token_id = await user_rows.add_token(
            conn, user.user_id, hash_token(secret, token), expires_ts=expires_ts
        )
    return IssuedToken(token_id, user.name, token, expires_ts)


async def list_tokens(store: MetadataStore, name: str | None = None) -> list[TokenInfo]:
    async with store.begin() as conn:
        user_id = (await user_rows.require_user(conn, name)).user_id if name else None
        return await user_rows.list_tokens(conn, user_id)


async def revoke_token(store: MetadataStore, token_id: str, *, name: str | None = None) -> None:
    """Revoke a token (of user ``name``, when given); TokenNotFound if there is no live one."""
    async with _changing_credentials(store) as conn:
        user_id = (await user_rows.require_user(conn, name)).user_id if name else None
        if not await user_rows.revoke_token(conn, token_id, now=now(), user_id=user_id):
            raise TokenNotFound(details={"token_id": token_id})


def _role(name: str, statements: Sequence[Statement], sees_all_batches: bool) -> Role:
    if not statements:
        raise InvalidRequest("a role needs at least one statement")
    return Role(check_role_name(name), tuple(statements), sees_all_batches=sees_all_batches)


async def create_role(
    store: MetadataStore,
    name: str,
    statements: Sequence[Statement],
    *,
    sees_all_batches: bool = False,
) -> Role:
    async with store.begin() as conn:
        return await role_rows.create_role(conn, _role(name, statements, sees_all_batches))


async def update_role(
    store: MetadataStore,
    name: str,
    statements: Sequence[Statement],
    *,
    sees_all_batches: bool = False,
) -> Role:
    """Replace a custom role's statements: its users hold them from their next request on.
    LastAdmin if its holders are the only admins and the new statements drop manage_users."""
    role = _role(name, statements, sees_all_batches)
    async with _changing_credentials(store) as conn:
        accounts, roles = await _accounts(conn)
        if name in roles and not roles[name].builtin:  # built-ins: refused below
            _keep_an_admin(
                _admins(accounts, roles),
                _admins(accounts, {**roles, name: role}),
                f"Changing role {name!r}",
            )
        return await role_rows.update_role(conn, role)


async def delete_role(store: MetadataStore, name: str) -> None:
    """Delete a custom role that no user holds."""
    async with _changing_credentials(store) as conn:
        await role_rows.delete_role(conn, name)


async def list_roles(store: MetadataStore) -> list[Role]:
    async with store.begin() as conn:
        return await role_rows.list_roles(conn)


def derive_webhook_secret(secret: bytes, user_id: str, version: int) -> str:
    """The user's webhook signing secret: derived, so nothing secret is stored per user."""
    message = json.dumps([_WEBHOOK_CONTEXT, user_id, version]).encode()
    return WEBHOOK_SECRET_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


async def webhook_secret(
    store: MetadataStore, secret: bytes, principal: Principal, *, rotate: bool = False
) -> str:
    """The principal's current webhook secret; ``rotate`` replaces it for every later delivery."""
    async with store.begin() as conn:
        if rotate:
            version = await user_rows.bump_webhook_secret_version(conn, principal.user_id)
        else:
            version = await user_rows.webhook_secret_version(conn, principal.user_id)
    return derive_webhook_secret(secret, principal.user_id, version)
