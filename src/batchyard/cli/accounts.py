"""Where the account commands act: the server's HTTP API, or (named explicitly) its database.

By default ``users``, ``tokens`` and ``roles`` talk to the server at BATCHYARD_URL with
BATCHYARD_TOKEN, like every client command: the server they are pointed at is the one that sees
the change. Working on a database directly needs ``--data-dir`` or ``--database-url`` on the
command line, and never creates a data directory or database that is not there yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import msgspec
import typer

from batchyard.cli.connection import connect
from batchyard.client import IssuedToken, Role, Statement, Token, User, UserCreated

if TYPE_CHECKING:
    from batchyard.client import Client
    from batchyard.settings import Settings
    from batchyard.store.database import MetadataStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Where:
    """The command line's choice of server (URL and token) or database (data dir, URL)."""

    url: str | None = None
    token: str | None = None
    data_dir: Path | None = None
    database_url: str | None = None

    @property
    def direct(self) -> bool:
        return self.data_dir is not None or self.database_url is not None


class Accounts(Protocol):
    """What the account commands need, over HTTP or on the database alike."""

    def create_user(self, name: str, role: str, expires_in: int | None) -> UserCreated: ...
    def list_users(self) -> list[User]: ...
    def update_user(
        self, name: str, *, disabled: bool | None = None, role: str | None = None
    ) -> User: ...
    def create_token(self, name: str, expires_in: int | None) -> IssuedToken: ...
    def list_tokens(self, name: str | None) -> list[Token]: ...
    def revoke_token(self, token_id: str) -> None: ...
    def save_role(
        self, name: str, statements: Sequence[Statement], sees_all: bool, *, replace: bool
    ) -> Role: ...
    def delete_role(self, name: str) -> None: ...
    def list_roles(self) -> list[Role]: ...


class HttpAccounts:
    """Through the server's admin API (the token must allow manage_users)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create_user(self, name: str, role: str, expires_in: int | None) -> UserCreated:
        return self._client.users.create(name, role, expires_in=expires_in)

    def list_users(self) -> list[User]:
        return self._client.users.list()

    def update_user(
        self, name: str, *, disabled: bool | None = None, role: str | None = None
    ) -> User:
        return self._client.users.update(name, disabled=disabled, role=role)

    def create_token(self, name: str, expires_in: int | None) -> IssuedToken:
        return self._client.users.create_token(name, expires_in=expires_in)

    def list_tokens(self, name: str | None) -> list[Token]:
        return self._client.users.list_tokens(name)

    def revoke_token(self, token_id: str) -> None:
        self._client.users.revoke_token(token_id)

    def save_role(
        self, name: str, statements: Sequence[Statement], sees_all: bool, *, replace: bool
    ) -> Role:
        save = self._client.roles.update if replace else self._client.roles.create
        return save(name, statements, sees_all_batches=sees_all)

    def delete_role(self, name: str) -> None:
        self._client.roles.delete(name)

    def list_roles(self) -> list[Role]:
        return self._client.roles.list()


def _model(kind: type[T], body: Any) -> T:
    """The SDK's model of an API schema object, so both paths print the same things."""
    return msgspec.convert(body.model_dump(mode="json"), kind, strict=False)


class DirectAccounts:
    """On the metadata database itself, with the server's secret (for the operator)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _run(self, work: Callable[[MetadataStore, bytes], Awaitable[T]]) -> T:
        from batchyard.service.auth import load_secret
        from batchyard.store.database import MetadataStore

        async def main() -> T:
            store = await MetadataStore.open(self._settings.resolved_database_url())
            try:
                return await work(store, load_secret(self._settings))
            finally:
                await store.close()

        return asyncio.run(main())

    def create_user(self, name: str, role: str, expires_in: int | None) -> UserCreated:
        from batchyard.api.schemas_users import TokenIssued, UserPublic
        from batchyard.service import users

        user, token = self._run(
            lambda store, key: users.create_user(store, key, name, role, expires_in=expires_in)
        )
        return UserCreated(
            _model(User, UserPublic.of(user)), _model(IssuedToken, TokenIssued.of(token))
        )

    def list_users(self) -> list[User]:
        from batchyard.api.schemas_users import UserPublic
        from batchyard.service import users

        found = self._run(lambda store, _key: users.list_users(store))
        return [_model(User, UserPublic.of(u)) for u in found]

    def update_user(
        self, name: str, *, disabled: bool | None = None, role: str | None = None
    ) -> User:
        from batchyard.api.schemas_users import UserPublic
        from batchyard.service import users

        updated = self._run(
            lambda store, _key: users.update_user(store, name, disabled=disabled, role=role)
        )
        return _model(User, UserPublic.of(updated))

    def create_token(self, name: str, expires_in: int | None) -> IssuedToken:
        from batchyard.api.schemas_users import TokenIssued
        from batchyard.service import users

        issued = self._run(
            lambda store, key: users.create_token(store, key, name, expires_in=expires_in)
        )
        return _model(IssuedToken, TokenIssued.of(issued))

    def list_tokens(self, name: str | None) -> list[Token]:
        from batchyard.api.schemas_users import TokenPublic
        from batchyard.service import users

        found = self._run(lambda store, _key: users.list_tokens(store, name))
        return [_model(Token, TokenPublic.of(t)) for t in found]

    def revoke_token(self, token_id: str) -> None:
        from batchyard.service import users

        self._run(lambda store, _key: users.revoke_token(store, token_id))

    def save_role(
        self, name: str, statements: Sequence[Statement], sees_all: bool, *, replace: bool
    ) -> Role:
        from batchyard.api.schemas_users import RolePublic
        from batchyard.domain.permissions import Statement as Rule
        from batchyard.service import users

        rules = [Rule.of(s.actions, s.datasets, s.operations) for s in statements]
        save = users.update_role if replace else users.create_role
        role = self._run(lambda store, _key: save(store, name, rules, sees_all_batches=sees_all))
        return _model(Role, RolePublic.of(role))

    def delete_role(self, name: str) -> None:
        from batchyard.service import users

        self._run(lambda store, _key: users.delete_role(store, name))

    def list_roles(self) -> list[Role]:
        from batchyard.api.schemas_users import RolePublic
        from batchyard.service import users

        return [
            _model(Role, RolePublic.of(r)) for r in self._run(lambda s, _k: users.list_roles(s))
        ]


def direct_settings(where: Where) -> Settings:
    """The server's settings for working on its database; refuses to create anything."""
    from batchyard.settings import Settings
    from batchyard.storage.signing import SECRET_FILE

    overrides: dict[str, Any] = {}
    if where.data_dir is not None:
        overrides["data_dir"] = where.data_dir
    if where.database_url is not None:
        overrides["database_url"] = where.database_url
    settings = Settings(**overrides)
    data_dir = settings.data_dir
    if where.data_dir is not None and not data_dir.is_dir():
        raise typer.BadParameter(
            f"there is no data directory at {data_dir}: name the one the server uses "
            "(`batchyard serve` creates it on first start)",
            param_hint="--data-dir",
        )
    if not settings.database_url and not (data_dir / "batchyard.db").is_file():
        raise typer.BadParameter(
            f"{data_dir} holds no batchyard database: is it the server's data directory?",
            param_hint="--data-dir",
        )
    if not settings.secret_key and not (data_dir / SECRET_FILE).is_file():
        raise typer.BadParameter(
            f"no secret key: set BATCHYARD_SECRET_KEY as the server has it, or name the "
            f"server's --data-dir (which holds {SECRET_FILE})",
            param_hint="--data-dir",
        )
    return settings


@contextlib.contextmanager
def open_accounts(where: Where) -> Iterator[Accounts]:
    """The HTTP API (default) or the database named on the command line; errors of either end
    the command with a one-line message and exit status 1."""
    if not where.direct:
        with connect(where.url, where.token) as client:
            yield HttpAccounts(client)
        return
    from batchyard.domain.errors import BatchyardError
    from batchyard.storage.private import use_private_umask

    settings = direct_settings(where)
    use_private_umask()
    try:
        yield DirectAccounts(settings)
    except BatchyardError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None
