"""Bearer tokens: issued once, stored only as a keyed hash, resolved to a principal per request."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path

from batchyard.domain.batches import now
from batchyard.domain.errors import Forbidden, Unauthenticated
from batchyard.domain.permissions import Action
from batchyard.settings import Settings
from batchyard.storage.signing import load_or_create_secret
from batchyard.store import users
from batchyard.store.database import MetadataStore
from batchyard.store.users import Principal

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
    """Keyed hash: a leaked database alone does not let anyone check guesses offline."""
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


async def authenticate(store: MetadataStore, secret: bytes, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated()
    async with store.begin() as conn:
        principal = await users.principal_for_token_hash(conn, hash_token(secret, token), now=now())
    if principal is None:
        raise Unauthenticated("The bearer token is invalid, revoked or expired")
    return principal


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


def sees_all_batches(principal: Principal) -> bool:
    return principal.grants.sees_all_batches


async def ensure_admin(store: MetadataStore, settings: Settings, secret: bytes) -> str | None:
    """Create the first admin on first start; returns a newly generated token to show once."""
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
        if (
            given
            and await users.principal_for_token_hash(conn, hash_token(secret, given), now=now())
            is None
        ):
            await users.add_token(conn, admin.user_id, hash_token(secret, given))
    return None


def _write_token_file(path: Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)


def announce_admin_token(token: str, path: Path) -> None:
    """Print the generated admin token once, where the operator starting the server sees it."""
    print(
        f"\nbatchyard: generated the first admin token (shown once, also saved to {path}):\n"
        f"    {token}\n",
        file=sys.stderr,
        flush=True,
    )
