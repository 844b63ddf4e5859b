"""Bearer tokens: issued once, stored only as a keyed hash, resolved to a principal per request."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from batchyard.domain.batches import Batch, now
from batchyard.domain.errors import BatchNotFound, Forbidden, OperationNotAllowed, Unauthenticated
from batchyard.domain.permissions import Action
from batchyard.settings import Settings
from batchyard.storage.signing import load_or_create_secret
from batchyard.store import users
from batchyard.store.database import MetadataStore
from batchyard.store.users import Principal

logger = logging.getLogger("batchyard.auth")
TOKEN_PREFIX = "by_"  # noqa: S105 - a visible marker on every token, not a secret
ADMIN_NAME = "admin"


def load_secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    return load_or_create_secret(settings.data_dir)


def new_token() -> str:
    """A random token with 256 bits of entropy."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: bytes, token: str) -> str:
    """Keyed hash: a leaked database alone does not let anyone check guesses offline.

    Every authenticated request hashes its token: the HMAC keyed with ``secret`` is made once
    and copied per token (the same bytes as ``hmac.new(secret, token, sha256)``). Not the
    one-shot ``hmac.digest``: it lets go of the GIL for each call, and during an import the
    event loop then waits for the pipeline's threads to give it back (the most frequent
    event-loop stall measured on PostgreSQL).
    """
    mac = _keyed(secret).copy()
    mac.update(token.encode())
    return mac.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    """The HMAC-SHA256 state after the key: one per secret (a process has one, tests a few)."""
    return hmac.new(secret, digestmod=hashlib.sha256)


async def authenticate(store: MetadataStore, secret: bytes, token: str | None) -> Principal:
    """The token's principal, from the database or from the last second's answer for it.

    Only valid tokens are remembered, for at most PRINCIPAL_CACHE_SECONDS; revoking, disabling
    or changing a role through this process forgets them all at once (``credentials_changed``).
    Concurrent lookups of one token share one query.
    """
    if not token:
        raise Unauthenticated()
    token_hash = hash_token(secret, token)

    async def lookup() -> Principal | None:
        async with store.read() as conn:
            return await users.principal_for_token_hash(conn, token_hash, now=now())

    principal = await store.principals.resolve(token_hash, lookup)
    if principal is None:
        raise Unauthenticated("The bearer token is invalid, revoked or expired")
    return principal


def credentials_changed(store: MetadataStore) -> None:
    """Call after committing a change to tokens, users or roles: the next request of every
    token of this process is checked against the database again."""
    store.principals.forget_all()


def require(principal: Principal, action: Action, dataset: str | None = None) -> None:
    """Forbidden, naming the missing permission, unless the principal's role allows ``action``.

    Without ``dataset`` it is enough that some statement allows the action somewhere; callers
    check again with the dataset once they know it.
    """
    if principal.grants.allows(action, dataset):
        return
    where = f" on dataset {dataset!r}" if dataset is not None else ""
    raise Forbidden(
        f"Your role '{principal.role}' does not allow {action.value}{where}",
        details={"missing_permission": action.value, "dataset": dataset},
    )


def require_visible(principal: Principal, batch: Batch, action: Action) -> None:
    """The one visibility rule for a batch: BatchNotFound for another user's batch (unless the
    role sees everyone's), exactly as for one that does not exist, so ids cannot be probed;
    Forbidden unless the role allows ``action`` on its dataset."""
    require(principal, action)
    if not sees_all_batches(principal) and batch.owner_id != principal.user_id:
        raise BatchNotFound()
    require(principal, action, batch.dataset)


async def visible_batch(
    principal: Principal, action: Action, load: Callable[[], Awaitable[Batch]]
) -> Batch:
    """The batch ``load`` reads (whoever owns it), if ``require_visible`` lets the principal
    ``action`` it. The permission is checked before the read: a role without ``action`` gets
    Forbidden whether or not the batch exists."""
    require(principal, action)
    batch = await load()
    require_visible(principal, batch, action)
    return batch


def require_operation(principal: Principal, dataset: str, operation: str) -> None:
    """OperationNotAllowed unless a statement allowing create_batch on ``dataset`` also allows
    ``operation`` (call ``require`` first: this only narrows what it allowed)."""
    if principal.grants.allows(Action.CREATE_BATCH, dataset, operation):
        return
    raise OperationNotAllowed(
        f"Your role '{principal.role}' may create batches on dataset {dataset!r}, "
        f"but not {operation} batches",
        details={
            "missing_permission": Action.CREATE_BATCH.value,
            "dataset": dataset,
            "operation": operation,
        },
    )


def sees_all_batches(principal: Principal) -> bool:
    return principal.grants.sees_all_batches


def reads_local_files(principal: Principal) -> bool:
    """file:// sources read the server's own disk: only for who administers it (manage_users,
    which can make itself anything anyway), whatever a role says about seeing batches."""
    return principal.grants.allows(Action.MANAGE_USERS)


async def ensure_admin(store: MetadataStore, settings: Settings, secret: bytes) -> str | None:
    """Create the first admin on first start; returns a newly generated token to show once.

    BATCHYARD_ADMIN_TOKEN is added to the admin's tokens once; a revoked or expired one stays
    so (the server starts with a warning), since revoking it is how an operator shuts it out.
    """
    given = settings.admin_token
    async with store.begin() as conn:
        admin = await users.get_user_by_name(conn, ADMIN_NAME)
        if admin is None:
            admin = await users.create_user(conn, ADMIN_NAME, "admin")
            token = given or new_token()
            await users.add_token(conn, admin.user_id, hash_token(secret, token))
            if given:
                return None
            _write_token_file(settings.data_dir / "admin-token", token)
            return token
        if given:
            await _adopt_admin_token(conn, admin.user_id, hash_token(secret, given))
    return None


async def _adopt_admin_token(conn: AsyncConnection, admin_id: str, token_hash: str) -> None:
    known = await users.find_token_by_hash(conn, token_hash)
    if known is None:
        await users.add_token(conn, admin_id, token_hash)
    elif known.revoked_ts is not None or (
        known.expires_ts is not None and known.expires_ts <= now()
    ):
        # Never log the hash: with the database it would let anyone check token guesses.
        logger.warning(
            "BATCHYARD_ADMIN_TOKEN is token %s, which was revoked or has expired: it stays "
            "unusable. Unset the variable (or set a new token) to silence this warning.",
            known.token_id,
        )


def _write_token_file(path: Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)


def announce_admin_token(token: str, path: Path, url: str | None = None) -> None:
    """Print the generated admin token once, where the operator starting the server sees it,
    with where to go next: the dashboard's address and the two lines that set up the CLI and
    the SDK (``url``: the address the server listens on, when known)."""
    lines = [f"\nbatchyard: generated the first admin token (shown once, also saved to {path}):"]
    lines.append(f"    {token}\n")
    if url:
        lines.append(f"Dashboard: {url}/ (sign in with the token)")
        lines.append("For the CLI and the SDK:")
        lines.append(f"    export BATCHYARD_URL={url}")
        lines.append(f"    export BATCHYARD_TOKEN={token}\n")
    print("\n".join(lines), file=sys.stderr, flush=True)
